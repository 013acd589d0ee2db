/**
 * Issue 8 item 6, full pulls at stepped rates: users holding 10 deferred messages each pull them
 * (SUBSCRIBE → 200 → NOTIFY listing 10 → INVITE retrieving the 10 → 10 MSRP SEND/200 → the
 * service's BYE → the NOTIFY of the empty mailbox), a new pull started every 1/rate s for
 * PULL_SECONDS, over UDP and MSRP with the project's own client (./cpm-load.ts). The service runs
 * as `npm start` runs it (the bundle, DATA_DIR in a temp folder) pinned to CPU 0; this process on
 * CPU 1. The users' messages are deposited before the first step, by a service process of their own
 * (not measured, not profiled); 20 pulls warm the service up before the first step (not measured).
 *
 * Per step: offered rate, pulls, failed (an error or not done within 10 s), p50/p99 from SUBSCRIBE
 * to the first NOTIFY and to the last, the service's CPU µs per pull (utime+stime, /proc; the stime
 * part, the kernel's share: sockets, fdatasync, shown apart) and its
 * VmRSS. Stepping stops at the first step with a failure; the highest rate with 0 failures is
 * printed. The client shares one core with nothing else, but it is TypeScript: at high rates it
 * can be the bound (its own CPU is printed too).
 *
 * Run: npm run bench -- pull-rate   (env: PULL_RATES=50,100,250,500,1000 PULL_SECONDS=3; PULL_CPU_PROF=1
 * prints the service's top self time from a `node --cpu-prof` profile at the end)
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBenchService, twoCpus } from './bench-service.ts';
import { depositMany, fullPull, pct } from './cpm-load.ts';

const RATES = (process.env.PULL_RATES ?? '50,100,250,500,1000').split(',').map(Number);
const SECONDS = Number(process.env.PULL_SECONDS ?? 3);
const PULL_TIMEOUT_MS = 10_000;
const PROFILE = process.env.PULL_CPU_PROF === '1';
const WARM_UP = 20;

/** utime and stime (10 ms ticks) in µs. */
async function cpuUs(pid: number): Promise<{ user: number; sys: number }> {
  const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return { user: Number(f[11]) * 10_000, sys: Number(f[12]) * 10_000 };
}

async function rssMiB(pid: number): Promise<number> {
  return Number(/VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
}

const timeout = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`not done in ${ms} ms`)), ms))]);

execFileSync(process.execPath, ['scripts/build.mjs', '--if-stale'], { stdio: 'inherit' });
const dir = await mkdtemp(join(tmpdir(), 'bench-pull-rate-'));
if (twoCpus) execFileSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
const user = (rate: number, u: number) => `sip:pr${rate}-${u}@example.com`;
// Every step's messages are deposited first, by a service of their own: the measured service
// (and its profile) then holds the pulls only. The data folder carries them across.
const depositor = await startBenchService(dir, { MAX_IN_FLIGHT: '20000', MAX_LOOP_LAG_MS: '60000' });
try {
  await depositMany(depositor.ports.udp, (i) => user(0, Math.floor(i / 10)), WARM_UP * 10, 64, 'pr0');
  for (const rate of RATES) {
    const n = rate * SECONDS;
    await depositMany(depositor.ports.udp, (i) => user(rate, Math.floor(i / 10)), n * 10, 64, `pr${rate}`);
  }
} finally {
  await depositor.stop();
}
const edge = await startBenchService(dir, { MAX_IN_FLIGHT: '20000', MAX_LOOP_LAG_MS: '60000' }, PROFILE);
const pid = edge.child.pid!;
const port = edge.ports.udp;
console.log(
  `machine: ${cpus().length} x ${cpus()[0]?.model}; node ${process.version}; ${new Date().toISOString()}\n` +
    `full pulls of 10 messages: SUBSCRIBE, NOTIFY, INVITE retrieving 10, 10 MSRP SEND/200, BYE, NOTIFY (empty); ` +
    `project client over UDP + MSRP/TCP, ${SECONDS} s per step` +
    (twoCpus ? '; service on CPU 0, client on CPU 1' : '; not pinned (needs 2 CPUs and taskset)'),
);
console.log(
  '     rate  pulls failed  first NOTIFY p50/p99 ms  pull p50/p99 ms  CPU µs/pull  of it sys  client µs/pull  VmRSS MiB',
);
let best = 0;
try {
  // Unmeasured: the first pulls compile the service's code (JIT, modules loaded on first use).
  await Promise.all(Array.from({ length: WARM_UP }, (_, u) => fullPull(port, user(0, u))));
  for (const rate of RATES) {
    const n = rate * SECONDS;
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
        timeout(fullPull(port, user(rate, u)), PULL_TIMEOUT_MS).then(
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
    const after = await cpuUs(pid);
    const cpu = after.user + after.sys - before.user - before.sys;
    const sys = after.sys - before.sys;
    const client = process.cpuUsage(clientBefore);
    const done = Math.max(1, n - failed);
    console.log(
      `${String(rate).padStart(9)} ${String(n).padStart(6)} ${String(failed).padStart(6)} ` +
        `${`${pct(first, 0.5).toFixed(0)} / ${pct(first, 0.99).toFixed(0)}`.padStart(24)} ` +
        `${`${pct(whole, 0.5).toFixed(0)} / ${pct(whole, 0.99).toFixed(0)}`.padStart(16)} ` +
        `${(cpu / done).toFixed(0).padStart(12)} ${(sys / done).toFixed(0).padStart(10)} ` +
        `${((client.user + client.system) / done).toFixed(0).padStart(15)} ` +
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
  await edge.stop();
  if (PROFILE) {
    await rm(join(dir, 'data'), { recursive: true, force: true });
    console.log(`  the profile stays in ${join(dir, 'prof')}`);
  } else {
    await rm(dir, { recursive: true, force: true });
  }
}
