/**
 * Issue 8 item 6, full pulls at stepped rates: users holding 10 deferred messages (PULL_MESSAGES) each pull them
 * (SUBSCRIBE → 200 → NOTIFY listing 10 → INVITE retrieving the 10 → 10 MSRP SEND/200 → the
 * service's BYE), a new pull started every 1/rate s for PULL_SECONDS, over UDP and MSRP with the
 * project's own load generator (./pull-load.ts: one UDP socket for all pulls, as a proxy in front
 * of the service would send them). Each rate runs each flow of PULL_FLOWS (PullFlow) not yet
 * failed, in turn, the order swapped at every rate: `fetch`, a one-time fetch (RFC 6665 §4.4.3,
 * `Expires: 0`: the issue's steps and no more), and `lasting`, a subscription that also hears the
 * NOTIFY of the emptied mailbox and then ends with an unsubscribe and its terminating NOTIFY (six
 * SIP messages, three subscription writes and a keyed read more per pull; its two more lists come
 * from memory). PULL_MESSAGES is at most the policy's notifyMaxEntries (15): a pull retrieves
 * what its first NOTIFY lists. The service runs
 * as `npm start` runs it (the bundle, DATA_DIR in a temp folder) pinned to CPU 0; this process on
 * CPU 1. The users' messages are deposited before the first step, by a service process of their own
 * (not measured, not profiled); PULL_SOAK pulls (2,000) warm the service up before the first step, and each step
 * is preceded by PULL_WARMUP_SECONDS of pulls at its rate (not measured: the first seconds at a
 * rate measured the JIT and the heap growing, not the steady cost).
 *
 * Per step: offered rate, pulls, failed (an error or not done within 10 s), SIP retransmissions
 * the client received from the service (it sends none of its own; MSRP runs over TCP, which has
 * none to count), p50/p99 from SUBSCRIBE to the first NOTIFY and to the last, the share of pulls
 * done by PULL_MAX_P50_MS after the step's last pull started, the service's CPU µs per pull
 * (utime+stime, /proc; the stime part, the kernel's share: sockets, fdatasync, shown apart), the
 * client's (this process, process.cpuUsage; its kernel share apart too), the
 * bytes it sent to storage per pull (/proc/<pid>/io write_bytes: WAL frames and checkpoints) and
 * its VmRSS. A rate is sustained when no pull failed, none was retransmitted, the pull p50 is
 * within PULL_MAX_P50_MS (default 200) and 95 % of the pulls were done on time: pulls that
 * queue fail it, however few time out. Failures are printed by reason (a pull that timed out
 * names what it waited for), with the datagrams the kernel dropped for a full UDP receive buffer
 * during the step (/proc/net/snmp RcvbufErrors: this bench's client sends each request once, so
 * one dropped datagram leaves a pull waiting). Stepping stops at the first step not sustained; the
 * highest sustained rate is printed with the criterion. The client shares one core with nothing
 * else, but it is TypeScript: at high rates it can be the bound (its own CPU is printed too).
 *
 * Run: npm run bench -- pull-rate   (env: PULL_RATES=50,100,250,500,1000 PULL_SECONDS=3
 * PULL_WARMUP_SECONDS=2 PULL_SOAK=2000 PULL_MAX_P50_MS=200 PULL_FLOWS=fetch,lasting PULL_MESSAGES=10 PULL_NODE_OPTIONS= (node flags for the service); PULL_CPU_PROF=1 prints the service's top self and
 * inclusive time from a `node --cpu-prof` profile of the whole run, warm-ups included, at the end,
 * and the same for this process, the client, from its first pull on)
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBenchService, twoCpus } from './bench-service.ts';
import { summarizeProfile } from './profile.ts';
import { depositMany, pct } from './cpm-load.ts';
import { PullLoad, type PullFlow } from './pull-load.ts';
import { defaultPolicy } from '#shared/deferred/policy.ts';

const RATES = (process.env.PULL_RATES ?? '50,100,250,500,1000').split(',').map(Number);
const SECONDS = Number(process.env.PULL_SECONDS ?? 3);
/**
 * Messages per pull (the issue's 10). Fewer shows what a pull costs whatever it carries: at
 * 300/s a fetch of 1 message cost 2,528-2,594 µs of service CPU, of 10 2,783-3,022.
 */
const MESSAGES = Number(process.env.PULL_MESSAGES ?? 10);
// The first NOTIFY lists at most the policy's notifyMaxEntries, and a pull retrieves what it lists.
const MAX_MESSAGES = defaultPolicy().notifyMaxEntries;
if (!Number.isInteger(MESSAGES) || MESSAGES < 1 || MESSAGES > MAX_MESSAGES) {
  throw new Error(`PULL_MESSAGES: a whole number from 1 to ${MAX_MESSAGES} (a NOTIFY's list), not ${MESSAGES}`);
}
const FLOWS = (process.env.PULL_FLOWS ?? 'fetch,lasting').split(',') as PullFlow[];
for (const flow of FLOWS) {
  if (flow !== 'fetch' && flow !== 'lasting') throw new Error(`PULL_FLOWS: unknown flow ${flow} (fetch, lasting)`);
}
// A flow or rate named twice would deposit twice for the same users: each pull would find 20.
if (new Set(FLOWS).size !== FLOWS.length) throw new Error(`PULL_FLOWS: a flow named twice (${FLOWS.join(',')})`);
if (new Set(RATES).size !== RATES.length) throw new Error(`PULL_RATES: a rate named twice (${RATES.join(',')})`);
const WARMUP_SECONDS = Number(process.env.PULL_WARMUP_SECONDS ?? 2);
const PULL_TIMEOUT_MS = 10_000;
/** A pull slower than this at the median means pulls queue: the rate is not sustained. */
const MAX_P50_MS = Number(process.env.PULL_MAX_P50_MS ?? 200);
/** The share of a step's pulls done by ON_TIME_MS after its last one started. */
const ON_TIME_SHARE = 0.95;
const ON_TIME_MS = MAX_P50_MS;
const CRITERION =
  `0 failed, 0 SIP retransmissions received by the client, pull p50 <= ${MAX_P50_MS} ms and ` +
  `>= ${100 * ON_TIME_SHARE} % of the step's pulls done by ${ON_TIME_MS} ms after its last one started`;
const PROFILE = process.env.PULL_CPU_PROF === '1';
/** Node flags for the measured service, on its command line (e.g. --perf-basic-prof for `perf record`). */
const SERVICE_FLAGS = (process.env.PULL_NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean);
/**
 * Pulls before the first step, 8 at a time, not measured: V8 keeps compiling the service's pull
 * path (TurboFan, on the pinned core) for a couple of thousand pulls. After 2 s at 50/s a pull
 * cost 8,700-9,400 µs of service CPU, after 40 s 4,700-6,100: a short warm-up measured the JIT.
 */
const SOAK = Number(process.env.PULL_SOAK ?? 2000);
const SOAK_IN_FLIGHT = 8;

/** utime and stime (10 ms ticks) in µs. */
async function cpuUs(pid: number): Promise<{ user: number; sys: number }> {
  const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return { user: Number(f[11]) * 10_000, sys: Number(f[12]) * 10_000 };
}

/** Bytes the process sent to storage (its WAL, its database file): /proc/<pid>/io write_bytes. */
async function writeBytes(pid: number): Promise<number> {
  return Number(/write_bytes:\s+(\d+)/.exec(await readFile(`/proc/${pid}/io`, 'utf8'))?.[1] ?? NaN);
}

/** UDP datagrams dropped for a full receive buffer, machine-wide (/proc/net/snmp RcvbufErrors). */
async function udpDrops(): Promise<number> {
  const [names, values] = (await readFile('/proc/net/snmp', 'utf8')).split('\n').filter((l) => l.startsWith('Udp:'));
  return Number(values!.split(/\s+/)[names!.split(/\s+/).indexOf('RcvbufErrors')]);
}

async function rssMiB(pid: number): Promise<number> {
  return Number(/VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
}

execFileSync(process.execPath, ['scripts/build.mjs', '--if-stale'], { stdio: 'inherit' });
const dir = await mkdtemp(join(tmpdir(), 'bench-pull-rate-'));
if (twoCpus) execFileSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
const user = (step: string, u: number) => `sip:pr${step}-${u}@example.com`;
// Every step's messages are deposited first, by a service of their own: the measured service
// (and its profile) then holds the pulls only. The data folder carries them across.
const depositor = await startBenchService(dir, {
  MAX_IN_FLIGHT: '20000',
  MAX_LOOP_LAG_MS: '60000',
  MAX_TRANSACTIONS: '1000000',
});
try {
  await depositMany(depositor.ports.udp, (i) => user('0', Math.floor(i / MESSAGES)), SOAK * MESSAGES, 64, 'pr0');
  for (const flow of FLOWS) {
    for (const rate of RATES) {
      for (const [step, seconds] of [
        [`${flow}${rate}w`, WARMUP_SECONDS],
        [`${flow}${rate}`, SECONDS],
      ] as const) {
        const n = rate * seconds * MESSAGES;
        await depositMany(depositor.ports.udp, (i) => user(step, Math.floor(i / MESSAGES)), n, 64, `pr${step}`);
      }
    }
  }
} finally {
  await depositor.stop();
}
const edge = await startBenchService(
  dir,
  { MAX_IN_FLIGHT: '20000', MAX_LOOP_LAG_MS: '60000', MAX_TRANSACTIONS: '1000000' },
  PROFILE,
  SERVICE_FLAGS,
);
const pid = edge.child.pid!;
const load = await PullLoad.open({ host: '127.0.0.1', port: edge.ports.udp });
console.log(
  `machine: ${cpus().length} x ${cpus()[0]?.model}; node ${process.version}; ${new Date().toISOString()}\n` +
    `full pulls of ${MESSAGES} messages: SUBSCRIBE, NOTIFY, INVITE retrieving ${MESSAGES}, ${MESSAGES} MSRP SEND/200, BYE; ` +
    `flows ${FLOWS.join(', ')} (fetch: Expires: 0, one NOTIFY; lasting: then the NOTIFY of the emptied mailbox and an unsubscribe); ` +
    `project client over UDP + MSRP/TCP, ${SECONDS} s per step` +
    (twoCpus ? '; service on CPU 0, client on CPU 1' : '; not pinned (needs 2 CPUs and taskset)'),
);
console.log(`sustained: ${CRITERION}`);
console.log(
  '     rate    flow  pulls failed retrans  first NOTIFY p50/p99 ms  pull p50/p99 ms  on time  CPU µs/pull  of it sys  client µs/pull  of it sys  disk KiB/pull  VmRSS MiB',
);

interface Step {
  n: number;
  failed: number;
  /** Failures by reason (the user's name left out), e.g. what a pull that timed out waited for. */
  why: Map<string, number>;
  retrans: number;
  first: number[];
  whole: number[];
  /** Pulls done by ON_TIME_MS after the step's last pull started. */
  onTime: number;
  cpu: number;
  sys: number;
  client: number;
  clientSys: number;
  disk: number;
  /** Datagrams the kernel dropped for a full receive buffer meanwhile (any socket: the service's, ours). */
  udpDrops: number;
}

/** `n` pulls in `flow`, one started every 1/rate s, of `userOf(u)`'s messages; measured from /proc. */
async function runStep(flow: PullFlow, rate: number, n: number, userOf: (u: number) => string): Promise<Step> {
  const before = await cpuUs(pid);
  const dropsBefore = await udpDrops();
  const diskBefore = await writeBytes(pid);
  const clientBefore = process.cpuUsage();
  const retransBefore = load.retransmissionsReceived;
  const step: Step = {
    n,
    failed: 0,
    why: new Map(),
    retrans: 0,
    first: [],
    whole: [],
    onTime: 0,
    cpu: 0,
    sys: 0,
    client: 0,
    clientSys: 0,
    disk: 0,
    udpDrops: 0,
  };
  const pulls: Promise<void>[] = [];
  const t0 = performance.now();
  const lastStart = t0 + ((n - 1) * 1000) / rate;
  for (let u = 0; u < n; u++) {
    const due = t0 + (u * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    pulls.push(
      load.pull(userOf(u), MESSAGES, PULL_TIMEOUT_MS, flow).then(
        (t) => {
          step.first.push(t.toFirstNotify);
          step.whole.push(t.total);
          if (performance.now() <= lastStart + ON_TIME_MS) step.onTime++;
        },
        (err: unknown) => {
          step.failed++;
          const reason = String(err).replace(/sip:\S+: /, '');
          step.why.set(reason, (step.why.get(reason) ?? 0) + 1);
        },
      ),
    );
  }
  await Promise.all(pulls);
  await new Promise((r) => setTimeout(r, 300));
  const after = await cpuUs(pid);
  const client = process.cpuUsage(clientBefore);
  // Counted by the generator, not per pull: a retransmission may come after its pull ended.
  step.retrans = load.retransmissionsReceived - retransBefore;
  step.cpu = after.user + after.sys - before.user - before.sys;
  step.sys = after.sys - before.sys;
  step.client = client.user + client.system;
  step.clientSys = client.system;
  step.disk = (await writeBytes(pid)) - diskBefore;
  step.udpDrops = (await udpDrops()) - dropsBefore;
  return step;
}

/** A step's failures by reason, most frequent first. */
const failures = (s: Step): string =>
  [...s.why]
    .sort((a, b) => b[1] - a[1])
    .map(([reason, n]) => `${n} × ${reason}`)
    .join('; ');

/** The step's rate is sustained: nothing failed or retransmitted, and the pulls did not queue. */
const sustained = (s: Step) =>
  s.failed === 0 && s.retrans === 0 && pct(s.whole, 0.5) <= MAX_P50_MS && s.onTime >= ON_TIME_SHARE * s.n;

/** With PULL_CPU_PROF=1 this process profiles itself too, from the first pull on (deposits left out). */
const clientProfiler = PROFILE ? new Session() : undefined;
if (clientProfiler) {
  clientProfiler.connect();
  await clientProfiler.post('Profiler.enable');
  await clientProfiler.post('Profiler.start');
}

try {
  // Unmeasured: the first pulls compile the service's code (JIT, modules loaded on first use).
  // A failure here (a 503 on a busy machine) is not measured either.
  const soakStart = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: SOAK_IN_FLIGHT }, async () => {
      // The flows in turn, pull by pull: each compiles its own steps (the fetch, the unsubscribe).
      for (let u = next++; u < SOAK; u = next++) {
        await load.pull(user('0', u), MESSAGES, PULL_TIMEOUT_MS, FLOWS[u % FLOWS.length]).catch(() => undefined);
      }
    }),
  );
  console.log(
    `  (soak, not counted: ${SOAK} pulls, ${SOAK_IN_FLIGHT} at a time, in ${((performance.now() - soakStart) / 1000).toFixed(1)} s)`,
  );
  // Each rate runs every flow still sustained, in turn, the order swapped at each rate: a flow does
  // not always run on the store the other has just emptied, or with the JIT warmer.
  const best = new Map<PullFlow, number>(FLOWS.map((flow) => [flow, 0]));
  const stepping = new Set(FLOWS);
  for (const [r, rate] of RATES.entries()) {
    for (const flow of r % 2 === 0 ? FLOWS : [...FLOWS].reverse()) {
      if (!stepping.has(flow)) continue;
      // Unmeasured, at the step's rate: the first seconds at a new rate cost more CPU per pull
      // (code paths compiled anew, the heap and batches growing), as the SIPp bench's warm-up found.
      const warm = await runStep(flow, rate, rate * WARMUP_SECONDS, (u) => user(`${flow}${rate}w`, u));
      console.log(
        `  (warm-up, not counted: ${warm.n} ${flow} pulls at ${rate}/s, ${warm.failed} failed, ${(warm.cpu / Math.max(1, warm.n - warm.failed)).toFixed(0)} µs/pull)`,
      );
      if (warm.failed > 0) console.log(`    warm-up failures: ${failures(warm)}`);
      if (warm.udpDrops > 0) console.log(`    warm-up UDP datagrams dropped by the kernel: ${warm.udpDrops}`);
      const s = await runStep(flow, rate, rate * SECONDS, (u) => user(`${flow}${rate}`, u));
      const done = Math.max(1, s.n - s.failed);
      console.log(
        `${String(rate).padStart(9)} ${flow.padStart(7)} ${String(s.n).padStart(6)} ${String(s.failed).padStart(6)} ${String(s.retrans).padStart(7)} ` +
          `${`${pct(s.first, 0.5).toFixed(0)} / ${pct(s.first, 0.99).toFixed(0)}`.padStart(24)} ` +
          `${`${pct(s.whole, 0.5).toFixed(0)} / ${pct(s.whole, 0.99).toFixed(0)}`.padStart(16)} ` +
          `${`${((100 * s.onTime) / s.n).toFixed(0)} %`.padStart(8)} ` +
          `${(s.cpu / done).toFixed(0).padStart(12)} ${(s.sys / done).toFixed(0).padStart(10)} ` +
          `${(s.client / done).toFixed(0).padStart(15)} ${(s.clientSys / done).toFixed(0).padStart(10)} ` +
          `${(s.disk / 1024 / done).toFixed(0).padStart(14)} ` +
          `${(await rssMiB(pid)).toFixed(0).padStart(10)}`,
      );
      if (s.failed > 0) console.log(`    failures: ${failures(s)}`);
      if (s.udpDrops > 0) console.log(`    UDP datagrams dropped by the kernel (receive buffer full): ${s.udpDrops}`);
      if (sustained(s)) best.set(flow, rate);
      else stepping.delete(flow);
    }
    if (stepping.size === 0) break;
  }
  const bests = [...best].map(([flow, rate]) => `${flow} ${rate}/s`);
  console.log(`full pulls: highest sustained rate ${bests.join(', ')} (${CRITERION})`);
} finally {
  load.close();
  await edge.stop();
  if (clientProfiler) {
    const { profile } = await clientProfiler.post('Profiler.stop');
    await mkdir(join(dir, 'client-prof'));
    await writeFile(join(dir, 'client-prof', 'client.cpuprofile'), JSON.stringify(profile));
    console.log('  the client (this process):');
    await summarizeProfile(join(dir, 'client-prof'));
  }
  if (PROFILE) {
    await rm(join(dir, 'data'), { recursive: true, force: true });
    console.log(`  the profiles stay in ${join(dir, 'prof')} (service) and ${join(dir, 'client-prof')} (client)`);
  } else {
    await rm(dir, { recursive: true, force: true });
  }
}
