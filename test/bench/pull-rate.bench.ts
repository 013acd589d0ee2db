/**
 * Issue 8 item 6, full pulls at stepped rates: users holding 10 deferred messages each pull them
 * (SUBSCRIBE → 200 → NOTIFY listing 10 → INVITE retrieving the 10 → 10 MSRP SEND/200 → the
 * service's BYE → the NOTIFY of the empty mailbox), a new pull started every 1/rate s for
 * PULL_SECONDS, over UDP and MSRP with the project's own client (./cpm-load.ts). The service runs
 * as `npm start` runs it (the bundle, DATA_DIR in a temp folder) pinned to CPU 0; this process on
 * CPU 1. The users' messages are deposited before each step (not measured).
 *
 * Per step: offered rate, pulls, failed (an error or not done within 10 s), p50/p99 from SUBSCRIBE
 * to the first NOTIFY and to the last, the service's CPU µs per pull (utime+stime, /proc) and its
 * VmRSS. Stepping stops at the first step with a failure; the highest rate with 0 failures is
 * printed. The client shares one core with nothing else, but it is TypeScript: at high rates it
 * can be the bound (its own CPU is printed too).
 *
 * Run: npm run bench -- pull-rate   (env: PULL_RATES=50,100,250,500,1000 PULL_SECONDS=3)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnEdge } from '../e2e/support.ts';
import { depositMany, fullPull, pct } from './cpm-load.ts';

const RATES = (process.env.PULL_RATES ?? '50,100,250,500,1000').split(',').map(Number);
const SECONDS = Number(process.env.PULL_SECONDS ?? 3);
const PULL_TIMEOUT_MS = 10_000;
const twoCpus = cpus().length >= 2 && spawnSync('taskset', ['-V']).status === 0;

async function cpuUs(pid: number): Promise<number> {
  const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10_000; // utime + stime, 10 ms ticks
}

async function rssMiB(pid: number): Promise<number> {
  return Number(/VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
}

const timeout = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`not done in ${ms} ms`)), ms))]);

execFileSync(process.execPath, ['scripts/build.mjs', '--if-stale'], { stdio: 'inherit' });
const dataDir = await mkdtemp(join(tmpdir(), 'bench-pull-rate-'));
const edge = await spawnEdge({ DATA_DIR: dataDir, MAX_IN_FLIGHT: '20000', MAX_LOOP_LAG_MS: '60000' });
const pid = edge.child.pid!;
if (twoCpus) {
  execFileSync('taskset', ['-a', '-p', '-c', '0', String(pid)], { stdio: 'ignore' });
  execFileSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
}
const port = edge.ports.udp!;
console.log(
  `machine: ${cpus().length} x ${cpus()[0]?.model}; node ${process.version}; ${new Date().toISOString()}\n` +
    `full pulls of 10 messages: SUBSCRIBE, NOTIFY, INVITE retrieving 10, 10 MSRP SEND/200, BYE, NOTIFY (empty); ` +
    `project client over UDP + MSRP/TCP, ${SECONDS} s per step` +
    (twoCpus ? '; service on CPU 0, client on CPU 1' : '; not pinned (needs 2 CPUs and taskset)'),
);
console.log(
  '     rate  pulls failed  first NOTIFY p50/p99 ms  pull p50/p99 ms  CPU µs/pull  client µs/pull  VmRSS MiB',
);
let best = 0;
try {
  for (const rate of RATES) {
    const n = rate * SECONDS;
    const user = (u: number) => `sip:pr${rate}-${u}@example.com`;
    await depositMany(port, (i) => user(Math.floor(i / 10)), n * 10, 64, `pr${rate}`);
    const before = await cpuUs(pid);
    const clientBefore = process.cpuUsage();
    const first: number[] = [];
    const whole: number[] = [];
    let failed = 0;
    let why = '';
    const pulls: Promise<void>[] = [];
    const t0 = performance.now();
    for (let u = 0; u < n; u++) {
      const due = t0 + (u * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      pulls.push(
        timeout(fullPull(port, user(u)), PULL_TIMEOUT_MS).then(
          (t) => {
            first.push(t.toFirstNotify);
            whole.push(t.total);
          },
          (err: unknown) => {
            failed++;
            why ||= String(err);
          },
        ),
      );
    }
    await Promise.all(pulls);
    await new Promise((r) => setTimeout(r, 300));
    const cpu = (await cpuUs(pid)) - before;
    const client = process.cpuUsage(clientBefore);
    const done = Math.max(1, n - failed);
    console.log(
      `${String(rate).padStart(9)} ${String(n).padStart(6)} ${String(failed).padStart(6)} ` +
        `${`${pct(first, 0.5).toFixed(0)} / ${pct(first, 0.99).toFixed(0)}`.padStart(24)} ` +
        `${`${pct(whole, 0.5).toFixed(0)} / ${pct(whole, 0.99).toFixed(0)}`.padStart(16)} ` +
        `${(cpu / done).toFixed(0).padStart(12)} ${((client.user + client.system) / done).toFixed(0).padStart(15)} ` +
        `${(await rssMiB(pid)).toFixed(0).padStart(10)}`,
    );
    if (failed > 0) {
      console.log(`    first failure: ${why.slice(0, 160)}`);
      break;
    }
    best = rate;
  }
  console.log(`full pulls: highest rate with 0 failures ${best}/s`);
} finally {
  edge.child.kill('SIGTERM');
  await new Promise((resolve) => edge.child.once('exit', resolve));
  await rm(dataDir, { recursive: true, force: true });
}
