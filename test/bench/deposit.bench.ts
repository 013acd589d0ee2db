/**
 * Deposits durably acknowledged per second, on the local default's SQLite store with
 * `synchronous=FULL` (every commit fsynced before its 202) and NORMAL. The service runs as
 * `npm start` runs it (the bundle, a separate process, pinned to CPU 0 with taskset when there
 * are two CPUs); this process sends SIP MESSAGEs over UDP from CPU 1, `concurrency` in flight,
 * each one a new message (its own imdn.Message-ID), 202 counted only once it arrives.
 *
 * Run: npx tsx test/bench/deposit.bench.ts [seconds=5] [concurrency=64] [--cpu-prof]
 * With --cpu-prof the service writes a V8 CPU profile per mode and the top self-time is printed.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CpmClient } from '#functions/edge/cpm-client.ts';
import { wrapAsCpim } from '#shared/cpim/cpim.ts';
import { CPIM_CONTENT_TYPE } from '#shared/deferred/names.ts';
import { FREE_PORTS } from '../e2e/support.ts';
import { summarizeProfile } from './profile.ts';
import { START_FLAGS } from './bench-service.ts';

const args = process.argv.slice(2);
const profile = args.includes('--cpu-prof');
const [seconds = 5, concurrency = 64] = args.filter((a) => !a.startsWith('--')).map(Number);
const BOB = 'sip:bob@example.net';
const twoCpus = cpus().length >= 2 && spawnSync('taskset', ['-V']).status === 0;

const pct = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};

async function startService(dataDir: string, synchronous: string, profDir: string) {
  const node = [...START_FLAGS, ...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []), 'dist/edge/main.js'];
  const [cmd, cmdArgs] = twoCpus ? ['taskset', ['-c', '0', process.execPath, ...node]] : [process.execPath, node];
  const child = spawn(cmd, cmdArgs as string[], {
    env: {
      ...process.env,
      ...FREE_PORTS,
      DATA_DIR: dataDir,
      SQLITE_SYNCHRONOUS: synchronous,
      MAX_LOOP_LAG_MS: '60000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const udp = await new Promise<number>((resolve, reject) => {
    const timer = setInterval(() => {
      const m = /SIP UDP (\d+)[\s\S]*admin http/.exec(out);
      if (m) {
        clearInterval(timer);
        resolve(Number(m[1]));
      }
    }, 10);
    child.once('exit', (code) => reject(new Error(`service exited with ${code}:\n${out}`)));
  });
  const rss = async () =>
    Number(/VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${child.pid}/status`, 'utf8'))?.[1]) / 1024;
  const cpuMs = async () => {
    const stat = (await readFile(`/proc/${child.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
    return ((Number(stat[11]) + Number(stat[12])) * 1000) / 100; // utime + stime, in clock ticks of 10 ms
  };
  const stop = async () => {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  };
  return { udp, rss, cpuMs, stop };
}

async function run(synchronous: 'FULL' | 'NORMAL'): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), `bench-deposit-${synchronous}-`));
  const profDir = join(dataDir, 'prof');
  const service = await startService(dataDir, synchronous, profDir);
  const clients = await Promise.all(
    Array.from({ length: concurrency }, () =>
      CpmClient.connect({ transport: 'udp', server: { host: '127.0.0.1', port: service.udp }, user: BOB }),
    ),
  );
  const latencies: number[] = [];
  let seq = 0;
  let failed = 0;
  const statuses = new Set<number>();
  const deadline = performance.now() + seconds * 1000;
  const cpuBefore = await service.cpuMs();
  const started = performance.now();
  await Promise.all(
    clients.map(async (client) => {
      while (performance.now() < deadline) {
        const i = seq++;
        const to = `sip:dep${i % 1000}@example.com`;
        const body = wrapAsCpim({
          from: BOB,
          to,
          dateTime: new Date().toISOString(),
          messageId: `bench-${i}`,
          contentType: 'text/plain;charset=UTF-8',
          body: Buffer.alloc(500, 'x'),
        });
        const t = performance.now();
        const res = await client.request(
          client.buildRequest('MESSAGE', { uri: to, body, contentType: CPIM_CONTENT_TYPE }),
        );
        if (res.status === 202) latencies.push(performance.now() - t);
        else {
          failed++;
          statuses.add(res.status);
        }
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpu = (await service.cpuMs()) - cpuBefore;
  const rss = await service.rss();
  for (const c of clients) c.close();
  await service.stop();
  console.log(
    `synchronous=${synchronous}: ${latencies.length} deposits acknowledged (202) in ${elapsed.toFixed(1)} s = ` +
      `${(latencies.length / elapsed).toFixed(0)}/s, ${failed} not 202${failed ? ` (${[...statuses].join(', ')})` : ''}; p50 ${pct(latencies, 0.5).toFixed(1)} ms, ` +
      `p99 ${pct(latencies, 0.99).toFixed(1)} ms; service CPU ${((cpu * 1000) / Math.max(1, latencies.length)).toFixed(0)} µs/deposit; ` +
      `RSS ${rss.toFixed(0)} MiB`,
  );
  if (profile) await summarizeProfile(profDir);
  await rm(dataDir, { recursive: true, force: true });
}

execFileSync(process.execPath, ['scripts/build.mjs', '--if-stale'], { stdio: 'inherit' });
if (twoCpus) execFileSync('taskset', ['-pc', '1', String(process.pid)], { stdio: 'ignore' });
console.log(
  `deposits: SIP MESSAGE over UDP, 500-byte body, ${concurrency} in flight, ${seconds} s per mode` +
    (twoCpus ? '; service on CPU 0, load on CPU 1' : ''),
);
await run('FULL');
await run('NORMAL');
