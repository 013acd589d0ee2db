/**
 * The edge as the container runs it: the bundle dist/edge (built by the globalSetup) with no
 * node_modules beside it. In AWS mode it starts and serves without the native SQLite module
 * and opens no database; the local default's chunk is the only one that imports better-sqlite3.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DATABASE_FILE } from '#shared/adapters/sqlite/database.ts';
import { FREE_PORTS } from '../../e2e/support.ts';

const image = mkdtempSync(path.join(tmpdir(), 'edge-image-'));
afterAll(() => rmSync(image, { recursive: true, force: true }));

describe('the edge bundle', () => {
  it('imports better-sqlite3 only from the local default’s chunk, and the AWS SDK only from the AWS side', () => {
    const chunks = readdirSync('dist/edge').filter((f) => f.endsWith('.js'));
    const importing = (what: RegExp) =>
      chunks.filter((f) => what.test(readFileSync(path.join('dist/edge', f), 'utf8'))).map((f) => f.split('-')[0]);
    expect(importing(/from\s*"better-sqlite3"/)).toEqual(['local']);
    const main = readFileSync('dist/edge/main.js', 'utf8');
    expect(main).not.toMatch(/@aws-sdk|better-sqlite3/);
  });

  it('runs in AWS mode from a folder without node_modules and opens no SQLite database', async () => {
    cpSync('dist', path.join(image, 'dist'), { recursive: true });
    cpSync('package.json', path.join(image, 'package.json'));
    const dataDir = path.join(image, 'data');
    const child = spawn(process.execPath, ['dist/edge/main.js'], {
      cwd: image,
      env: {
        PATH: process.env.PATH,
        ...FREE_PORTS,
        DATA_DIR: dataDir,
        HANDLER_MODE: 'lambda',
        SUBSCRIBE_FUNCTION_NAME: 'subscribe',
        INVITE_FUNCTION_NAME: 'invite',
        DEPOSIT_FUNCTION_NAME: 'deposit',
        // Nothing listens there: the edge starts anyway and keeps polling.
        OUTBOUND_QUEUE_URL: 'http://127.0.0.1:9/000000000000/outbound',
        DELIVERY_QUEUE_URL: 'http://127.0.0.1:9/000000000000/delivery',
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'unused',
        AWS_SECRET_ACCESS_KEY: 'unused',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const up = await new Promise<boolean>((resolve) => {
      const check = setInterval(() => {
        if (/edge up[\s\S]*admin http/.test(out)) {
          clearInterval(check);
          resolve(true);
        }
      }, 20);
      void exited.then(() => {
        clearInterval(check);
        resolve(false);
      });
    });
    child.kill('SIGTERM');
    expect(await exited, out).toBe(0);
    expect(up, out).toBe(true);
    expect(existsSync(path.join(dataDir, DATABASE_FILE))).toBe(false);
  });
});
