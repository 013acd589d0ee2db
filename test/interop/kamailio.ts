/**
 * Kamailio as the SIP/IP Core in front of the service (test/interop/kamailio.cfg), started by the
 * tests in the foreground with its own runtime folder on free loopback ports, and killed after.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../support/free-port.ts';

const CONFIG = fileURLToPath(new URL('./kamailio.cfg', import.meta.url));

export interface KamailioPorts {
  /** UDP and TCP (and WebSocket over TCP) for clients; UDP clients reach the service over UDP. */
  main: number;
  /** UDP for clients whose requests reach the service over TCP. */
  tcpLeg: number;
}

export interface KamailioOptions {
  service: { udp: number; tcp: number };
  /** Seconds after which the proxy closes an idle TCP connection (default 120). */
  idleSeconds?: number;
}

/** Resolves once a TCP connection to the port is accepted (the listeners are bound before). */
async function untilListening(port: number, child: ChildProcess, output: () => string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`kamailio exited with ${child.exitCode}:\n${output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`kamailio did not listen on ${port}:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export class Kamailio {
  private child: ChildProcess | undefined;
  private out = '';

  private constructor(
    private readonly opts: KamailioOptions,
    readonly ports: KamailioPorts,
    private readonly runDir: string,
  ) {}

  static async start(opts: KamailioOptions): Promise<Kamailio> {
    const runDir = await mkdtemp(join(tmpdir(), 'kamailio-'));
    const k = new Kamailio(opts, { main: await freePort(), tcpLeg: await freePort() }, runDir);
    await k.run();
    return k;
  }

  /** What Kamailio printed (for failure messages). */
  get output(): string {
    return this.out.slice(-8000);
  }

  private async run(): Promise<void> {
    const { service, idleSeconds = 120 } = this.opts;
    const { main, tcpLeg } = this.ports;
    const args = [
      '-f',
      CONFIG,
      '-DD',
      '-E',
      '-Y',
      this.runDir,
      '-w',
      this.runDir,
      // Shared memory for transactions: at about 100 pulls/s through it (the interop bench), each
      // kept for tm's wait timer after it ends, 32 MB ran out ("new_t(): out of mem", a 500).
      '-m',
      '256',
      '-M',
      '4',
      '-l',
      `udp:127.0.0.1:${main}`,
      '-l',
      `tcp:127.0.0.1:${main}`,
      '-l',
      `udp:127.0.0.1:${tcpLeg}`,
      '-A',
      `SVC_UDP="sip:127.0.0.1:${service.udp}"`,
      '-A',
      `SVC_TCP="sip:127.0.0.1:${service.tcp};transport=tcp"`,
      '-A',
      `TCPLEG_PORT=${tcpLeg}`,
      '-A',
      `IDLE_S=${idleSeconds}`,
    ];
    this.out = '';
    // Its own process group: stopping it stops its worker processes too, by the group's id.
    const child = spawn('/usr/sbin/kamailio', args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.child = child;
    const collect = (b: Buffer) => {
      this.out = (this.out + b.toString()).slice(-64_000);
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    await untilListening(main, child, () => this.out, 20_000);
  }

  /**
   * Stop its process group (SIGTERM, then SIGKILL; SIGKILL at once when `crash`, as a proxy that
   * dies without closing anything) and wait until every process of it is gone, so nothing of the
   * old proxy still holds its ports when a new one binds them.
   */
  async kill(crash = false): Promise<void> {
    const child = this.child;
    this.child = undefined;
    const pid = child?.pid;
    if (!child || pid === undefined) return;
    const signal = (sig: NodeJS.Signals | 0) => {
      try {
        process.kill(-pid, sig);
        return true;
      } catch {
        return false;
      }
    };
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      signal(crash ? 'SIGKILL' : 'SIGTERM');
      const timer = setTimeout(() => signal('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    const deadline = Date.now() + 10_000;
    while (signal(0)) {
      if (Date.now() > deadline) signal('SIGKILL');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Stop every process of it at once (SIGSTOP): what reaches it now is neither read nor answered. */
  freeze(): void {
    const pid = this.child?.pid;
    if (pid !== undefined) process.kill(-pid, 'SIGSTOP');
  }

  /**
   * The same proxy again on the same ports (its transactions and connections are gone); `crash`
   * kills it with SIGKILL first.
   */
  async restart(opts: { crash?: boolean } = {}): Promise<void> {
    await this.kill(opts.crash);
    await this.run();
  }

  async stop(): Promise<void> {
    await this.kill();
    await rm(this.runDir, { recursive: true, force: true });
  }
}
