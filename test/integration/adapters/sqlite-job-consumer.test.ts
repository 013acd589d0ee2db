/**
 * The local job consumer looks for jobs when there may be some: a job sent while a batch is
 * handled is taken as soon as that batch is done (not at the next idle poll), and a consumer that
 * took every visible job does not run another receive (a write) until a job is sent.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SqliteDatabase, SqliteJobConsumer, SqliteJobQueue } from '#shared/adapters/sqlite/index.ts';
import type { SqsBatchHandler } from '#shared/adapters/sqs/poller.ts';
import { tempDir } from './fixtures.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function openQueue() {
  const { dir, remove } = await tempDir();
  cleanups.push(remove);
  const db = await SqliteDatabase.open({ dataDir: dir });
  cleanups.push(() => db.close());
  return new SqliteJobQueue(db, {
    name: 'jobs',
    dlqName: 'jobs-dlq',
    visibilityTimeoutSeconds: 30,
    maxReceiveCount: 3,
    dlqRetentionSeconds: 3600,
  });
}

function consume(queue: SqliteJobQueue, handler: SqsBatchHandler): SqliteJobConsumer {
  // An idle poll far past the test: only a send or the consumer's own looking finds a job.
  const consumer = new SqliteJobConsumer({ queue, handler, concurrency: 1, idlePollMs: 60_000 });
  consumer.start();
  cleanups.push(() => consumer.stop());
  return consumer;
}

const until = async (cond: () => boolean, ms = 5_000) => {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
};

describe('SQLite job consumer', () => {
  it('takes a job sent while its batch is handled right after that batch', async () => {
    const queue = await openQueue();
    const handled: string[] = [];
    consume(queue, async (event) => {
      for (const r of event.Records) {
        handled.push(r.body);
        // Sent while this (only) loop is busy: no idle loop to wake.
        if (r.body === 'first') await queue.send('second');
      }
      return { batchItemFailures: [] };
    });
    await queue.send('first');
    await until(() => handled.length === 2, 2_000);
    expect(handled).toEqual(['first', 'second']);
  });

  it('runs no receive after taking every visible job, until a job is sent', async () => {
    const queue = await openQueue();
    const receive = vi.spyOn(queue, 'receive');
    const handled: string[] = [];
    consume(queue, async (event) => {
      handled.push(...event.Records.map((r) => r.body));
      return { batchItemFailures: [] };
    });
    await until(() => receive.mock.calls.length === 1);
    await queue.send('a');
    await until(() => handled.length === 1);
    await new Promise((r) => setTimeout(r, 100));
    // The empty look at start, the one that took 'a': none after it.
    expect(receive.mock.calls.length).toBe(2);
    await queue.send('b');
    await until(() => handled.length === 2);
    expect(handled).toEqual(['a', 'b']);
  });
});
