/**
 * Issue 8 item 6: the service against the field's own tools. SIPp (Debian sip-tester) drives the
 * scenarios in ./sipp at stepped rates: SUBSCRIBE → 200 → NOTIFY → 200 with a fresh user per flow
 * (the subscription stays active) over UDP and over TCP (one connection, `-t t1`), and MESSAGE
 * deposits over UDP. The service runs as `npm start` runs it (the bundle, a separate process,
 * DATA_DIR in a temp folder) pinned to CPU 0; SIPp runs on CPU 1. When Kamailio is installed the
 * same scenarios run against it in the same run (./kamailio-bench.cfg: presence + presence_mwi
 * with subs_db_mode 2 and msilo, both on sqlite, one worker, CPU 0) and the ratio service/Kamailio
 * of the best clean rates is printed. Last, a fresh service is subscribed to by 10k then 100k
 * fresh users and its VmRSS per active subscription printed.
 *
 * Per step: offered rate, calls, failed calls, retransmissions, p50/p99 response time (SUBSCRIBE
 * to NOTIFY; MESSAGE to 202; SIPp counts whole milliseconds, so 0 means under 1 ms), the target's
 * CPU µs per flow (utime+stime from /proc over its process group, all threads) and its resident
 * memory (PSS). A scenario stops stepping at its first step with a failure. On a shared machine
 * the rates are noisy; the CPU µs per flow is the steadier figure.
 *
 * Run: npm run bench -- sipp   (env: SIPP_RATES=250,500,1000,2000,4000 SIPP_SECONDS=5 SIPP_WARMUP_SECONDS=3
 * SIPP_SCENARIOS=subscribe/u1,subscribe/t1,message/u1 SIPP_MEMORY=10000,100000 (0: skip)
 * SIPP_MEMORY_RATE=500 SIPP_SETTLE_S=65 SIPP_NODE_OPTIONS= (node flags for the service, on its command line) SIPP_HEAPSNAPSHOT=1 (read with test/bench/heap-summary.ts) SIPP_KAMAILIO=0 to skip Kamailio SIPP_CPU_PROF=1 for a service CPU profile)
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADMIN_AUTH } from '../e2e/support.ts';
import { freePort } from '../support/free-port.ts';
import { collect, pin, startBenchService, stopGroup, twoCpus } from './bench-service.ts';
import { residentParts, v8Parts } from './resident.ts';

const RATES = (process.env.SIPP_RATES ?? '250,500,1000,2000,4000').split(',').map(Number);
const SECONDS = Number(process.env.SIPP_SECONDS ?? 5);
const WARMUP_SECONDS = Number(process.env.SIPP_WARMUP_SECONDS ?? 3);
const PROFILE = process.env.SIPP_CPU_PROF === '1';
const SCENARIOS: Scenario[] = (process.env.SIPP_SCENARIOS ?? 'subscribe/u1,subscribe/t1,message/u1')
  .split(',')
  .filter((s) => s !== '')
  .map((s) => {
    const [file, transport] = s.split('/') as [Scenario['file'], Scenario['transport']];
    return { file, transport };
  });
/** Active subscriptions at which resident memory is read (SIPP_MEMORY=0 skips it). */
const MEMORY_COUNTS = (process.env.SIPP_MEMORY ?? '10000,100000')
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
const MEMORY_RATE = Number(process.env.SIPP_MEMORY_RATE ?? 500);
const SETTLE_S = Number(process.env.SIPP_SETTLE_S ?? 65);
/**
 * Node flags for the service (rate and memory runs), after those of `npm start` (a later one wins), e.g.
 * --max-semi-space-size=16 (README, resident memory). On the command line: NODE_OPTIONS refuses most V8 flags.
 */
const SERVICE_FLAGS = (process.env.SIPP_NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean);
const HEAPSNAPSHOT = process.env.SIPP_HEAPSNAPSHOT === '1';
const here = fileURLToPath(new URL('.', import.meta.url));
const KAMAILIO = '/usr/sbin/kamailio';
const SQL = '/usr/share/kamailio/db_sqlite';

interface Target {
  name: string;
  port: number;
  tcpPort: number;
  /** The process whose resident memory (VmRSS) is read for the per-subscription figure. */
  pid: number;
  /** The service's admin API (its count of active subscriptions). */
  adminPort?: number;
  /** The process group whose CPU and memory are measured. */
  pgid: number;
  event: string;
  stop(): Promise<void>;
}

interface Step {
  rate: number;
  calls: number;
  failed: number;
  retrans: number;
  p50: number;
  p99: number;
  cpuUsPerFlow: number;
  rssMiB: number;
  why: string;
}

/**
 * utime+stime (µs) and resident memory (MiB) summed over the processes of a group, from /proc;
 * memory as PSS, so the shared memory Kamailio's processes all map is counted once.
 */
function groupUsage(pgid: number): { cpuUs: number; rssMiB: number } {
  let ticks = 0;
  let pssKiB = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue;
    }
    const f = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
    if (Number(f[2]) !== pgid) continue; // field 5: pgrp
    ticks += Number(f[11]) + Number(f[12]); // fields 14, 15: utime, stime in 10 ms ticks
    try {
      pssKiB += Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
    } catch {
      // gone meanwhile
    }
  }
  return { cpuUs: ticks * 10_000, rssMiB: pssKiB / 1024 };
}

async function startService(dir: string, env: Record<string, string> = {}, flags: string[] = []): Promise<Target> {
  const service = await startBenchService(
    dir,
    {
      MAX_IN_FLIGHT: '20000',
      MAX_TRANSACTIONS: '1000000',
      // The highest clean rate is the figure: no shedding on a loop made late by the machine's other load.
      MAX_LOOP_LAG_MS: '60000',
      ...env,
    },
    PROFILE,
    [...SERVICE_FLAGS, ...flags],
  );
  return {
    name: 'service',
    port: service.ports.udp,
    tcpPort: service.ports.tcp,
    adminPort: service.ports.admin,
    pid: service.child.pid!,
    pgid: service.child.pid!,
    event: 'deferred-messages',
    stop: service.stop,
  };
}

async function startKamailio(dir: string): Promise<Target> {
  // Two files: presence's write-back timer holds a file's lock long enough to fail msilo's inserts.
  const db = (name: string) => {
    const file = join(dir, `${name}.sqlite`);
    const schema = ['standard', name].map((t) => readFileSync(`${SQL}/${t}-create.sql`, 'utf8')).join('\n');
    execFileSync('sqlite3', [file], { input: schema });
    return `"sqlite:///${file}"`;
  };
  const port = await freePort();
  const [cmd, args] = pin(0, KAMAILIO, [
    '-f',
    join(here, 'kamailio-bench.cfg'),
    '-DD',
    '-E',
    '-Y',
    dir,
    '-w',
    dir,
    '-m',
    '256',
    '-M',
    '16',
    '-l',
    `udp:127.0.0.1:${port}`,
    '-l',
    `tcp:127.0.0.1:${port}`,
    '-A',
    `PRESENCE_DB=${db('presence')}`,
    '-A',
    `MSILO_DB=${db('msilo')}`,
  ]);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const out = collect(child);
  // Its workers are forked and listening well within this; a failed start exits before it.
  await new Promise((r) => setTimeout(r, 1500));
  if (child.exitCode !== null) throw new Error(`kamailio exited with ${child.exitCode}:\n${out()}`);
  return {
    name: 'kamailio',
    port,
    tcpPort: port,
    pid: child.pid!,
    pgid: child.pid!,
    event: 'message-summary',
    stop: () => stopGroup(child),
  };
}

const pct = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};

/** A SIPp scenario file over one transport: u1 (UDP, one socket) or t1 (TCP, one connection). */
interface Scenario {
  file: 'subscribe' | 'message';
  transport: 'u1' | 't1';
}

const label = (s: Scenario) => `${s.file} ${s.transport === 'u1' ? 'UDP' : 'TCP'}`;

/** What the bench runs, as a command line (the figures below it are from this). */
const describe = (target: Target, s: Scenario) =>
  `taskset -c 1 sipp 127.0.0.1:${s.transport === 'u1' ? target.port : target.tcpPort} -sf test/bench/sipp/${s.file}.xml ` +
  `-key event ${target.event} -t ${s.transport} -r <rate> -m <rate*${SECONDS}>   (${target.name} on CPU 0)`;

/** One SIPp run at a fixed rate; its figures from -trace_stat (counters) and -trace_rtt. */
async function step(
  target: Target,
  scenario: Scenario,
  rate: number,
  run: string,
  dir: string,
  calls = rate * SECONDS,
): Promise<Step> {
  const stf = join(dir, `${run}.csv`);
  const before = groupUsage(target.pgid);
  const [cmd, args] = pin(1, '/usr/bin/sipp', [
    `127.0.0.1:${scenario.transport === 'u1' ? target.port : target.tcpPort}`,
    '-sf',
    join(here, 'sipp', `${scenario.file}.xml`),
    '-key',
    'run',
    run,
    '-key',
    'event',
    target.event,
    '-t',
    scenario.transport,
    '-i',
    '127.0.0.1',
    '-p',
    String(await freePort()),
    '-r',
    String(rate),
    '-m',
    String(calls),
    '-l',
    String(Math.max(1000, rate * 4)),
    '-nostdin',
    '-recv_timeout',
    '5000',
    // SIPp's global timeout ends the whole run: long enough for every call asked for.
    '-timeout',
    `${Math.ceil(calls / rate) + 30}s`,
    '-trace_stat',
    '-stf',
    stf,
    '-fd',
    '1',
    '-trace_err',
    '-trace_rtt',
    '-rtt_freq',
    '1',
  ]);
  const child = spawn(cmd, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = collect(child);
  await new Promise((r) => child.once('exit', r));
  // Let the target finish what it still holds (write-back, NOTIFY 200s) before reading its CPU.
  await new Promise((r) => setTimeout(r, 300));
  const after = groupUsage(target.pgid);
  const lines = readFileSync(stf, 'latin1').trim().split('\n');
  const head = lines[0]!.split(';');
  const last = lines.at(-1)!.split(';');
  const col = (name: string) => Number(last[head.indexOf(name)]);
  const rttFile = readdirSync(dir).find((f) => f.startsWith(`${scenario.file}_`) && f.endsWith('_rtt.csv'));
  if (!rttFile) throw new Error(`no response times from sipp:\n${out()}`);
  const rtts = readFileSync(join(dir, rttFile), 'latin1')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => Number(l.split(';')[1]))
    .filter((x) => Number.isFinite(x));
  await rm(join(dir, rttFile));
  const errFile = readdirSync(dir).find((f) => f.startsWith(`${scenario.file}_`) && f.endsWith('_errors.log'));
  const errors = errFile ? readFileSync(join(dir, errFile), 'latin1') : '';
  if (errFile) await rm(join(dir, errFile));
  // SIPp's first reason, e.g. an unexpected message or a timeout, for the steps that fail.
  const why = /^\d{4}-\d\d-\d\d[^\n]*?\s(\S[^\n]*)/m.exec(errors)?.[1] ?? '';
  const ok = col('SuccessfulCall(C)');
  return {
    rate,
    calls: col('OutgoingCall(C)'),
    failed: col('FailedCall(C)') + (calls - ok - col('FailedCall(C)')),
    retrans: col('Retransmissions(C)'),
    p50: pct(rtts, 0.5),
    p99: pct(rtts, 0.99),
    cpuUsPerFlow: (after.cpuUs - before.cpuUs) / Math.max(1, ok),
    rssMiB: after.rssMiB,
    why,
  };
}

const HEAD = '   rate    calls failed retrans  p50 ms  p99 ms  CPU µs/flow  PSS MiB';
const fmt = (s: Step) =>
  `${String(s.rate).padStart(7)} ${String(s.calls).padStart(8)} ${String(s.failed).padStart(6)} ` +
  `${String(s.retrans).padStart(7)} ${String(s.p50).padStart(7)} ${String(s.p99).padStart(7)} ` +
  `${s.cpuUsPerFlow.toFixed(0).padStart(12)} ${s.rssMiB.toFixed(0).padStart(8)}`;

/** Every step of one scenario; the best rate with 0 failed calls and 0 retransmissions. */
async function scenarioRun(target: Target, scenario: Scenario, dir: string): Promise<number> {
  let best = 0;
  console.log(`${target.name} ${label(scenario)}: ${describe(target, scenario)}`);
  // Unmeasured: the service's JIT compiles its hot paths in the first seconds (the first step
  // cost 2-3x the CPU per flow of the next); both targets get the same warm-up.
  const warm = await step(
    target,
    scenario,
    RATES[0]!,
    `${target.name[0]}${scenario.file[0]}${scenario.transport[0]}w`,
    dir,
    RATES[0]! * WARMUP_SECONDS,
  );
  console.log(`  (warm-up, not counted: ${warm.calls} calls at ${warm.rate}/s, ${warm.failed} failed)`);
  console.log(`  ${HEAD}`);
  for (const rate of RATES) {
    const run = `${target.name[0]}${scenario.file[0]}${scenario.transport[0]}${rate}`;
    const s = await step(target, scenario, rate, run, dir);
    console.log(`  ${fmt(s)}`);
    if (s.failed > 0 && s.why) console.log(`    first SIPp error: ${s.why.slice(0, 160)}`);
    if (s.failed > 0) break;
    if (s.retrans === 0) best = rate;
  }
  console.log(`  ${target.name} ${label(scenario)}: highest clean rate ${best}/s`);
  return best;
}

function vmRssKiB(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
}

/** The service's own view of its memory, from its Prometheus metrics (prom-client's defaults), in KiB. */
async function heapKiB(adminPort: number): Promise<{ heapUsed: number; external: number; text: string }> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`, { headers: ADMIN_AUTH })).text();
  const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN) / 1024;
  return { heapUsed: metric('nodejs_heap_size_used_bytes'), external: metric('nodejs_external_memory_bytes'), text };
}

/** One line: where the resident memory is (smaps by kind, V8's committed spaces, the rest native). */
function whereResident(pid: number, metrics: string): string {
  const r = residentParts(pid);
  const v8 = v8Parts(metrics);
  const spaces = Object.entries(v8.spaces)
    .filter(([, kib]) => kib >= 512)
    .map(([space, kib]) => `${space} ${mib(kib)}`)
    .join(', ');
  return (
    `    where (MiB): files ${mib(r.files)}, brk heap ${mib(r.brk)}, anonymous ${mib(r.anon)} ` +
    `(of which thread arenas ${mib(r.arenas)}); V8 committed ${mib(v8.committed)} (${spaces}); ` +
    `native = brk + anonymous - V8 ${mib(r.brk + r.anon - v8.committed)}; GCs so far: ` +
    Object.entries(v8.gcs)
      .map(([kind, gc]) => `${kind} ${gc.count} (${gc.seconds.toFixed(2)} s)`)
      .join(', ')
  );
}

/**
 * Resident memory per active subscription: a fresh service, VmRSS at rest, then SIPp subscribes
 * fresh users (Expires 3600, so all stay active) until each count in MEMORY_COUNTS is reached.
 * Read twice per count: right after the last SUBSCRIBE, while the last 32 s of completed server
 * transactions still wait out Timer J (64*T1 over UDP, RFC 3261 §17.2.2) and the NOTIFY client
 * transactions Timer K (T4), then SETTLE_S later, once they have drained (only the subscriptions
 * are left) and V8 has had an idle while to collect what they left (its memory reducer runs a
 * major GC some tens of seconds after the allocation rate drops). SIPP_HEAPSNAPSHOT=1 writes a heap snapshot of the service at each drained point.
 */
async function memoryRun(dir: string): Promise<void> {
  const target = await startService(
    dir,
    {},
    HEAPSNAPSHOT ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`] : [],
  );
  try {
    const scenario: Scenario = { file: 'subscribe', transport: 'u1' };
    console.log(
      `service resident memory: ${describe(target, scenario)
        .replace('<rate>', String(MEMORY_RATE))
        .replace(/<rate\*\d+>/, '<count - previous>')}, ` +
        `VmRSS from /proc/<pid>/status; heap and external from its /metrics (not forced to collect)` +
        `; service flags: ${SERVICE_FLAGS.join(' ') || 'none'}`,
    );
    await new Promise((r) => setTimeout(r, 2000));
    const base = vmRssKiB(target.pid);
    const rest = await heapKiB(target.adminPort!);
    console.log(
      `  at rest: VmRSS ${mib(base)} MiB, heap used ${mib(rest.heapUsed)} MiB, external ${mib(rest.external)} MiB`,
    );
    console.log(whereResident(target.pid, rest.text));
    console.log(
      '  active subs  failed  when                        VmRSS MiB  heap MiB  external MiB  KiB/sub (VmRSS over rest)',
    );
    const activeNow = async () => {
      const stats = await fetch(`http://127.0.0.1:${target.adminPort}/api/stats`, { headers: ADMIN_AUTH });
      return ((await stats.json()) as { subscriptions: number }).subscriptions;
    };
    for (const count of MEMORY_COUNTS) {
      // The service's own count: a flow SIPp failed late (a NOTIFY retransmitted) left one too.
      // SUBSCRIBEs it refused (503, overload) are made up for by further runs, up to three.
      let active = await activeNow();
      let failed = 0;
      for (let round = 0; round < 3 && active < count; round++) {
        failed += (await step(target, scenario, MEMORY_RATE, `mem${count}r${round}`, dir, count - active)).failed;
        active = await activeNow();
      }
      const row = async (when: string) => {
        const rss = vmRssKiB(target.pid);
        const heap = await heapKiB(target.adminPort!);
        console.log(
          `  ${String(active).padStart(11)} ${String(failed).padStart(7)}  ${when.padEnd(26)} ${mib(rss).padStart(9)} ` +
            `${mib(heap.heapUsed).padStart(9)} ${mib(heap.external).padStart(13)} ${((rss - base) / active).toFixed(2).padStart(8)}`,
        );
        console.log(whereResident(target.pid, heap.text));
      };
      await row('in Timer J (just after)');
      await new Promise((r) => setTimeout(r, SETTLE_S * 1000));
      await row(`drained (${SETTLE_S} s later)`);
      if (HEAPSNAPSHOT) await heapSnapshot(target, dir, count);
    }
  } finally {
    await target.stop();
  }
}

const mib = (kib: number) => (kib / 1024).toFixed(1);

/**
 * SIGUSR2 makes the service (started with --heapsnapshot-signal) write one into `dir`; kept as
 * test/bench/heap/service-<count>.heapsnapshot. The service writes it on its main thread, so its
 * admin API answering again means the file is complete.
 */
async function heapSnapshot(target: Target, dir: string, count: number): Promise<void> {
  const before = new Set(readdirSync(dir));
  process.kill(target.pid, 'SIGUSR2');
  await new Promise((r) => setTimeout(r, 500));
  // A kept-alive connection may have timed out on the server while it wrote: a fresh one answers.
  for (let tries = 0; ; tries++) {
    try {
      await fetch(`http://127.0.0.1:${target.adminPort}/health`);
      break;
    } catch (err) {
      if (tries >= 3) throw err;
    }
  }
  const file = readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
  if (!file) return console.log('  heap snapshot: none written');
  const out = join(here, 'heap', `service-${count}.heapsnapshot`);
  await mkdir(join(here, 'heap'), { recursive: true });
  await rename(join(dir, file), out);
  console.log(`  heap snapshot: ${out}`);
}

execFileSync(process.execPath, ['scripts/build.mjs', '--if-stale'], { stdio: 'inherit' });
const withKamailio =
  process.env.SIPP_KAMAILIO !== '0' && existsSync(KAMAILIO) && existsSync(`${SQL}/presence-create.sql`);
console.log(
  `machine: ${cpus().length} x ${cpus()[0]?.model}; node ${process.version}; ${new Date().toISOString()}\n` +
    `SIPp on loopback, ${SECONDS} s per step, rates ${RATES.join(', ')}/s` +
    (twoCpus ? '; target on CPU 0, SIPp on CPU 1' : '; not pinned (needs 2 CPUs and taskset)') +
    (withKamailio ? '' : '; Kamailio not installed, service only'),
);
const best: Record<string, Record<string, number>> = {};
for (const [name, start] of [
  ['service', startService],
  ...(withKamailio ? [['kamailio', startKamailio] as const] : []),
] as const) {
  const dir = await mkdtemp(join(tmpdir(), `bench-sipp-${name}-`));
  const target = await start(dir).catch(async (err: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw err;
  });
  best[name] = {};
  try {
    for (const scenario of SCENARIOS) best[name][label(scenario)] = await scenarioRun(target, scenario, dir);
  } finally {
    await target.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
if (best.kamailio) {
  console.log('scenario          service  kamailio  ratio');
  for (const scenario of SCENARIOS) {
    const s = best.service![label(scenario)]!;
    const k = best.kamailio[label(scenario)]!;
    console.log(
      `${label(scenario).padEnd(16)} ${String(s).padStart(6)}/s ${String(k).padStart(7)}/s  ${k ? (s / k).toFixed(2) : 'n/a'}`,
    );
  }
}
if (MEMORY_COUNTS.length > 0) {
  const dir = await mkdtemp(join(tmpdir(), 'bench-sipp-memory-'));
  try {
    await memoryRun(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
