/**
 * The service as a process, where users hit rough edges: `npm start` stopped by killing npm,
 * SIGTERM after pulls, a port already taken.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { runDemo } from '#functions/edge/demo-flow.ts';
import { FREE_PORTS, TEST_ADMIN_TOKEN, spawnEdge } from './support.ts';

let dataDir: string;
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'deferred-process-'));
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

/** Whether something accepts TCP connections on the port. */
function listening(port: number): Promise<boolean> {
  return fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) }).then(
    () => true,
    () => false,
  );
}

describe('stopping', { timeout: 90_000 }, () => {
  it('killing the `npm start` process stops the service (the signal reaches it)', async () => {
    const npm = spawn('npm', ['start', '--silent'], {
      env: { ...process.env, ...FREE_PORTS, DATA_DIR: dataDir, ADMIN_TOKEN: TEST_ADMIN_TOKEN },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const admin = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no start:\n${out}`)), 60_000);
      const onData = (chunk: Buffer) => {
        out += chunk.toString();
        const m = /admin http:\/\/[^:]+:(\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      };
      npm.stdout.on('data', onData);
      npm.stderr.on('data', onData);
    });
    expect(await listening(admin)).toBe(true);
    const exited = new Promise((resolve) => npm.once('exit', resolve));
    npm.kill('SIGTERM');
    await exited;
    // The service itself is gone, not only npm: its ports are free.
    await expect.poll(() => listening(admin), { timeout: 10_000, interval: 250 }).toBe(false);
  });

  it('SIGTERM after pulls with dialogs and MSRP sessions exits within seconds, not minutes', async () => {
    const edge = await spawnEdge({ DATA_DIR: dataDir });
    // A failure below must not leave the edge holding the data folder the next tests use.
    onTestFinished(() => void edge.child.kill('SIGKILL'));
    await runDemo({ transport: 'tcp', sipPort: edge.ports.tcp! });
    await runDemo({ transport: 'udp', sipPort: edge.ports.udp! });
    const started = Date.now();
    const code = new Promise<number | null>((resolve) => edge.child.once('exit', resolve));
    edge.child.kill('SIGTERM');
    expect(await code, edge.output()).toBe(0);
    // ECS sends SIGKILL 30 s after SIGTERM; the edge must be done well before.
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe('a port already in use', { timeout: 60_000 }, () => {
  let blocker: Server;
  let taken: number;
  beforeAll(async () => {
    blocker = createServer();
    taken = await new Promise<number>((resolve) =>
      blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as { port: number }).port)),
    );
  });
  afterAll(() => new Promise<void>((resolve) => blocker.close(() => resolve())));

  it.each(['ADMIN_PORT', 'MSRP_PORT', 'SIP_WS_PORT'])('names %s and exits 2', async (variable) => {
    const error = await spawnEdge({ DATA_DIR: dataDir, [variable]: String(taken) }).then(
      () => new Error('started on a taken port'),
      (err: unknown) => err as Error,
    );
    expect(error.message).toMatch(/exited with 2/);
    expect(error.message).toContain(`${variable}: port ${taken} on 127.0.0.1 is in use by another process`);
  });
});
