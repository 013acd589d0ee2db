/**
 * Issue 11's overload and slow-client figures, against `npm start`'s entry as a separate process
 * (the bundle, DATA_DIR in a temp folder, pinned to CPU 0 when taskset and 2 CPUs are there; the
 * load runs in this process, on CPU 1):
 *
 * (a) overload: the sustained SUBSCRIBE rate (closed loop, SUBSCRIBE → 200 → NOTIFY → 200 over
 *     UDP, fresh user per flow), then 6× that rate offered for HARDEN_SECONDS; flows sent, answered
 *     2xx, answered 503 (+ Retry-After), other, unanswered (Timer F, 32 s, fired at the client)
 *     and the service's peak resident memory (VmHWM).
 * (b) slow clients: the SUBSCRIBE rate a normal client holds over UDP and TCP, alone and while
 *     HARDEN_ATTACKERS connections from 127.0.0.2-127.0.0.5 trickle half-sent headers (TCP) or
 *     hold idle WebSockets.
 *
 * Run: npm run bench -- hardening   (env: HARDEN_SECONDS=10 HARDEN_FACTOR=6 HARDEN_ATTACKERS=1000)
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBenchService, twoCpus, type BenchService } from './bench-service.ts';
import { SubscribeLoad, closedLoop, openLoop } from '../support/subscribe-load.ts';

const START_RATE = Number(process.env.HARDEN_START_RATE ?? 100);
const SECONDS = Number(process.env.HARDEN_SECONDS ?? 10);
const FACTOR = Number(process.env.HARDEN_FACTOR ?? 6);
const ATTACKERS = Number(process.env.HARDEN_ATTACKERS ?? 1000);

/** The bundle pinned to CPU 0; HARDEN_CPU_PROF=1 profiles it. */
function startService(dir: string, env: Record<string, string> = {}): Promise<BenchService> {
  return startBenchService(dir, env, process.env.HARDEN_CPU_PROF === '1');
}

/** The service's shed counters by reason, from /metrics. */
async function shedCounts(adminPort: number): Promise<string> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const counts = [...text.matchAll(/^sip_shed_total\{reason="([^"]+)"\} (\d+)/gm)].map((m) => `${m[1]} ${m[2]}`);
  return counts.join(', ') || 'none';
}

/** Peak and current resident memory of a process, MiB (/proc/<pid>/status VmHWM, VmRSS). */
function memoryOf(pid: number): { peak: number; now: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { peak: kib('VmHWM') / 1024, now: kib('VmRSS') / 1024 };
}

/**
 * The highest rate, in steps of √2 from 100/s, at which a 3 s open-loop run got 2xx for at least
 * 99 % of its flows, none unanswered, with retransmissions under 1 % of the flows; the first step
 * when even that one fails (a machine shared with other work).
 */
async function sustainedUdpRate(port: number): Promise<number> {
  let best = 0;
  for (let rate = START_RATE; rate <= 12_800; rate = Math.round(rate * Math.SQRT2)) {
    const load = await SubscribeLoad.open({ transport: 'udp', host: '127.0.0.1', port });
    await openLoop(load, rate, 3);
    load.close();
    const t = load.totals;
    const clean = t.ok >= 0.99 * t.sent && t.unanswered === 0 && t.retransmissions <= 0.01 * t.sent;
    console.log(
      `  ${String(rate).padStart(5)}/s: ${t.ok}/${t.sent} 2xx, ${t.shed} 503, ${t.unanswered} unanswered, ` +
        `${t.retransmissions} retransmissions${clean ? '' : ' (not clean)'}`,
    );
    if (!clean) break;
    best = rate;
  }
  return best || START_RATE;
}

/** `concurrency` flows at a time for `seconds`: the 2xx per second a normal client gets. */
async function heldRate(port: number, transport: 'udp' | 'tcp', seconds: number): Promise<number> {
  const load = await SubscribeLoad.open({ transport, host: '127.0.0.1', port });
  try {
    return await closedLoop(load, 8, seconds);
  } finally {
    load.close();
  }
}

async function overload(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-harden-'));
  const service = await startService(
    dir,
    Object.fromEntries(
      Object.entries(process.env)
        .filter(([k]) => k.startsWith('HARDEN_ENV_'))
        .map(([k, v]) => [k.slice(11), v!]),
    ),
  );
  try {
    console.log('sustained SUBSCRIBE rate over UDP (3 s open-loop steps):');
    const capacity = await sustainedUdpRate(service.ports.udp);
    const rate = Math.round(capacity * FACTOR);
    console.log(`sustained: ${capacity}/s (shed so far: ${await shedCounts(service.ports.admin)})`);
    console.log(`offering ${FACTOR}x = ${rate}/s for ${SECONDS} s over UDP (Timer F 32 s at the client)`);
    const load = await SubscribeLoad.open({ transport: 'udp', host: '127.0.0.1', port: service.ports.udp });
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, memoryOf(service.child.pid!).now)), 200);
    await openLoop(load, rate, SECONDS);
    clearInterval(sampler);
    load.close();
    const t = load.totals;
    const mem = memoryOf(service.child.pid!);
    console.log('| offered | sent | 2xx | 503 (no Retry-After) | other | unanswered | retransmissions | peak RSS |');
    console.log('|---|---|---|---|---|---|---|---|');
    console.log(
      `| ${rate}/s | ${t.sent} | ${t.ok} | ${t.shed} (${t.shedWithoutRetryAfter}) | ${t.other} | ` +
        `${t.unanswered} (${((100 * t.unanswered) / t.sent).toFixed(2)} %) | ${t.retransmissions} | ` +
        `${mem.peak.toFixed(0)} MiB |`,
    );
  } finally {
    await service.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

interface Attack {
  /** Connections the service accepted and still holds open. */
  open(): number;
  stop(): void;
}

/**
 * `n` connections from 127.0.0.2-127.0.0.5, half TCP sending a request head one byte a second
 * (never finished), half WebSockets (RFC 7118 handshake, then nothing).
 */
async function slowClients(ports: BenchService['ports'], n: number): Promise<Attack> {
  const sockets: { socket: net.Socket; closed: boolean }[] = [];
  const head =
    'SUBSCRIBE sip:victim@example.com SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.2:5060;branch=z9hG4bKslow\r\nX-Slow: ';
  const upgrade =
    'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n';
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const ws = i % 2 === 1;
      const socket = net.connect({
        host: '127.0.0.1',
        port: ws ? ports.ws : ports.tcp,
        localAddress: `127.0.0.${2 + (i % 4)}`,
      });
      const entry = { socket, closed: false };
      socket.on('error', () => undefined);
      // Read what the service says (a refusal, a 101), so its closing is seen.
      socket.resume();
      socket.on('close', () => (entry.closed = true));
      await new Promise<void>((resolve) => {
        socket.once('connect', () => {
          socket.write(ws ? upgrade : head);
          resolve();
        });
        socket.once('close', () => resolve());
      });
      sockets.push(entry);
    }),
  );
  let k = 0;
  const trickle = setInterval(() => {
    for (const [i, s] of sockets.entries()) if (i % 2 === 0 && !s.closed) s.socket.write('abcdefghij'[k % 10]!);
    k++;
  }, 1000);
  // Let the service refuse what it refuses before counting.
  await new Promise((r) => setTimeout(r, 1000));
  return {
    open: () => sockets.filter((s) => !s.closed).length,
    stop: () => {
      clearInterval(trickle);
      for (const s of sockets) s.socket.destroy();
    },
  };
}

async function slowClientAttack(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-harden-'));
  // The normal client is the SIP/IP Core (127.0.0.1); the attackers are other loopback hosts.
  const service = await startService(dir, { TRUSTED_PEERS: '127.0.0.1/32' });
  try {
    const seconds = 5;
    const before = {
      udp: await heldRate(service.ports.udp, 'udp', seconds),
      tcp: await heldRate(service.ports.tcp, 'tcp', seconds),
    };
    const attack = await slowClients(service.ports, ATTACKERS);
    const held = attack.open();
    const during = {
      udp: await heldRate(service.ports.udp, 'udp', seconds),
      tcp: await heldRate(service.ports.tcp, 'tcp', seconds),
    };
    const heldAfter = attack.open();
    attack.stop();
    console.log(
      `slow clients: ${ATTACKERS} connections from 127.0.0.2-5 (half TCP heads trickled 1 byte/s, half idle WebSockets); ` +
        `${held} held open by the service after 1 s, ${heldAfter} after the measurement`,
    );
    console.log('| normal client, 8 flows at a time, 5 s | without the attack | during the attack |');
    console.log('|---|---|---|');
    console.log(`| SUBSCRIBE 2xx/s over UDP | ${before.udp.toFixed(0)} | ${during.udp.toFixed(0)} |`);
    console.log(`| SUBSCRIBE 2xx/s over TCP | ${before.tcp.toFixed(0)} | ${during.tcp.toFixed(0)} |`);
  } finally {
    await service.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

execFileSync(process.execPath, ['scripts/build.mjs', '--if-stale'], { stdio: 'inherit' });
console.log(
  `machine: ${cpus().length} x ${cpus()[0]?.model}; node ${process.version}; ${new Date().toISOString()}` +
    (twoCpus ? '; service on CPU 0, load on CPU 1' : '; not pinned'),
);
if (twoCpus) execFileSync('taskset', ['-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
await overload();
await slowClientAttack();
