/**
 * The service as the process benchmarks run it: the bundle `npm start` runs, in its own process
 * group (measured and stopped by the group's id), pinned to CPU 0 when taskset and two CPUs are
 * there, the load on CPU 1.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { FREE_PORTS, TEST_ADMIN_TOKEN } from '../e2e/support.ts';
import { summarizeProfile } from './profile.ts';

/**
 * What `npm start` adds (package.json "config"): node's flags and glibc's MALLOC_ARENA_MAX. The
 * bench runs the service with them, so it measures what users run.
 */
const startConfig = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    config: { nodeFlags: string; mallocArenaMax: string };
  }
).config;
export const START_FLAGS = startConfig.nodeFlags.split(/\s+/).filter(Boolean);

export const twoCpus = cpus().length >= 2 && spawnSync('taskset', ['-V']).status === 0;

/** `cmd args` pinned to `cpu` when the machine allows it. */
export const pin = (cpu: number, cmd: string, args: string[]): [string, string[]] =>
  twoCpus ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args];

export interface BenchService {
  child: ChildProcess;
  ports: { udp: number; tcp: number; ws: number; admin: number };
  output: () => string;
  stop(): Promise<void>;
}

/** The last 32 KB a child wrote to stdout and stderr. */
export function collect(child: ChildProcess): () => string {
  let out = '';
  const add = (b: Buffer) => (out = (out + b.toString()).slice(-32_000));
  child.stdout!.on('data', add);
  child.stderr!.on('data', add);
  return () => out;
}

/** SIGTERM to the group, SIGKILL after 10 s. */
export async function stopGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  process.kill(-child.pid!, 'SIGTERM');
  const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/**
 * Start dist/edge/main.js as `npm start` does (its flags, then the node `flags` given: a later one wins) on a data folder under
 * `dir`; `profile` writes a CPU profile under `dir/prof`.
 */
export async function startBenchService(
  dir: string,
  env: Record<string, string> = {},
  profile = false,
  flags: string[] = [],
): Promise<BenchService> {
  const node = [
    ...START_FLAGS,
    ...flags,
    ...(profile ? ['--cpu-prof', `--cpu-prof-dir=${join(dir, 'prof')}`] : []),
    'dist/edge/main.js',
  ];
  const [cmd, args] = pin(0, process.execPath, node);
  const child = spawn(cmd, args, {
    env: {
      MALLOC_ARENA_MAX: startConfig.mallocArenaMax,
      ...process.env,
      ...FREE_PORTS,
      ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      DATA_DIR: join(dir, 'data'),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const out = collect(child);
  const ports = await new Promise<BenchService['ports']>((resolve, reject) => {
    const timer = setInterval(() => {
      const m = /SIP UDP (\d+)\s+TCP (\d+)\s+TLS (\d+)\s+WS (\d+)[\s\S]*admin http:\/\/[^:]+:(\d+)/.exec(out());
      if (m) {
        clearInterval(timer);
        resolve({ udp: Number(m[1]), tcp: Number(m[2]), ws: Number(m[4]), admin: Number(m[5]) });
      }
    }, 10);
    child.once('exit', (code) => {
      clearInterval(timer);
      reject(new Error(`service exited with ${code}:\n${out()}`));
    });
  });
  return {
    child,
    ports,
    output: out,
    stop: async () => {
      await stopGroup(child);
      if (profile) await summarizeProfile(join(dir, 'prof'));
    },
  };
}
