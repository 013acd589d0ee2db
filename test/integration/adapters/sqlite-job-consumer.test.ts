/**
 * The local job consumer: a job sent while a batch is handled is taken as soon as that batch is
 * done (not at the next idle poll); a job sent while it runs is received in the write that queues
 * it (no receive write, no look that finds nothing), yet counted as SQS counts receives, so a job
 * that takes the process down with it each time is dead-lettered; a consumer that stops gives
 * back what it was handed and did not take. A loop does not wait for its batch's delete (SQS's
 * event source mapping deletes outside the function's concurrency); stopping waits for it, and
 * does not wait out an idle poll.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SqliteDatabase, SqliteJobConsumer, SqliteJobQueue } from '#shared/adapters/sqlite/index.ts';
import type { SqsBatchHandler } from '#shared/adapters/sqs/poller.ts';
import { tempDir } from './fixtures.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SPEC = {
  name: 'jobs',
  dlqName: 'jobs-dlq',
  visibilityTimeoutSeconds: 30,
  maxReceiveCount: 3,
  dlqRetentionSeconds: 3600,
};

async function folder() {
  const temp = await tempDir();
  cleanups.push(temp.remove);
  return temp;
}

async function openQueue() {
  const { dir } = await folder();
  const db = await SqliteDatabase.open({ dataDir: dir });
  cleanups.push(() => db.close());
  return { queue: new SqliteJobQueue(db, SPEC), db };
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
    const { queue } = await openQueue();
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

  it("takes the next batch while the last one's delete waits for its commit, and stops only once it committed", async () => {
    const { queue } = await openQueue();
    const rowsAt: Record<string, number> = {};
    let stopCalled!: (stopped: Promise<void>) => void;
    const stopping = new Promise<Promise<void>>((resolve) => (stopCalled = resolve));
    const consumer = consume(queue, async (event) => {
      for (const r of event.Records) {
        rowsAt[r.body] = queue.depth().ready;
        if (r.body === 'first') await queue.send('second');
        // Stopped as its last batch ends, before that batch's delete is written.
        else stopCalled(consumer.stop());
      }
      return { batchItemFailures: [] };
    });
    await queue.send('first');
    const stopped = await stopping;
    await stopped;
    // The first job's row was still there (its delete not committed) when the second was handled.
    expect(rowsAt).toEqual({ first: 1, second: 2 });
    expect(queue.depth()).toEqual({ ready: 0, dead: 0 });
  });

  it('stops at once, not after its idle poll, and twice at the same time is one stop', async () => {
    const { queue, db } = await openQueue();
    const handled: string[] = [];
    const handler: SqsBatchHandler = async (event) => {
      handled.push(...event.Records.map((r) => r.body));
      return { batchItemFailures: [] };
    };
    // Stopped before its first look at the table is done: no idle poll (60 s) to wait out.
    const first = new SqliteJobConsumer({ queue, handler, concurrency: 4, idlePollMs: 60_000 });
    first.start();
    const outcome = await Promise.race([
      Promise.all([first.stop(), first.stop()]).then(() => 'stopped'),
      new Promise((r) => setTimeout(() => r('still waiting'), 2_000)),
    ]);
    expect(outcome).toBe('stopped');
    // Detached once: the next consumer is handed a job at its send (no receive write of its own).
    consume(queue, handler);
    const write = vi.spyOn(db, 'write');
    await queue.send('after');
    await until(() => handled.length === 1 && queue.depth().ready === 0);
    expect(handled).toEqual(['after']);
    expect(write).toHaveBeenCalledTimes(2);
  });

  it('runs more loops as work comes, up to its concurrency, and ends the extra ones once idle', async () => {
    const { queue } = await openQueue();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let handling = 0;
    let most = 0;
    const handled: string[] = [];
    const consumer = new SqliteJobConsumer({
      queue,
      handler: async (event) => {
        most = Math.max(most, ++handling);
        await gate;
        handling--;
        handled.push(...event.Records.map((r) => r.body));
        return { batchItemFailures: [] };
      },
      batchSize: 1,
      concurrency: 3,
      idleLoops: 1,
      idlePollMs: 50,
    });
    consumer.start();
    cleanups.push(() => consumer.stop());
    expect(consumer.loopCount).toBe(1);
    for (const body of ['a', 'b', 'c', 'd']) await queue.send(body);
    await until(() => handling === 3);
    expect(consumer.loopCount).toBe(3);
    // The fourth waits for a batch to end: no more than `concurrency` handlers at once.
    await new Promise((r) => setTimeout(r, 100));
    expect(most).toBe(3);
    release();
    await until(() => handled.length === 4 && consumer.loopCount === 1);
    expect(handled.sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(consumer.loopCount).toBe(1);
  });

  it('a job sent while the consumer runs costs two writes: queued (and received) in one, deleted in the other', async () => {
    const { queue, db } = await openQueue();
    const handled: string[] = [];
    consume(queue, async (event) => {
      handled.push(...event.Records.map((r) => `${r.body}:${r.attributes.ApproximateReceiveCount}`));
      return { batchItemFailures: [] };
    });
    await new Promise((r) => setTimeout(r, 50));
    const write = vi.spyOn(db, 'write');
    for (const body of ['a', 'b']) {
      await queue.send(body);
      await until(() => handled.length === ['a', 'b'].indexOf(body) + 1);
    }
    await until(() => queue.depth().ready === 0);
    await new Promise((r) => setTimeout(r, 100));
    // No receive write, and no look at the table (a write when it found nothing) after each job.
    expect(handled).toEqual(['a:1', 'b:1']);
    expect(write).toHaveBeenCalledTimes(4);
  });

  it('a job received at its send is dead-lettered after maxReceiveCount start-ups that died with it', async () => {
    const { dir } = await folder();
    const spec = { ...SPEC, maxReceiveCount: 3 };
    // A consumer takes it at its send, and the process dies before the handler is done.
    let db = await SqliteDatabase.open({ dataDir: dir });
    let queue = new SqliteJobQueue(db, spec);
    queue.attach();
    await queue.send('poison');
    expect((await queue.receive(1, false)).map((j) => j.receiveCount)).toEqual([1]);
    db.close();
    // Each start-up receives it once more, until the limit.
    for (const count of [2, 3]) {
      db = await SqliteDatabase.open({ dataDir: dir });
      queue = new SqliteJobQueue(db, spec);
      await queue.releaseAll();
      expect((await queue.receive(1)).map((j) => j.receiveCount)).toEqual([count]);
      db.close();
    }
    db = await SqliteDatabase.open({ dataDir: dir });
    cleanups.push(() => db.close());
    queue = new SqliteJobQueue(db, spec);
    await queue.releaseAll();
    expect(await queue.receive(1)).toEqual([]);
    expect(queue.deadLetters()).toEqual([{ body: 'poison', receiveCount: 3 }]);
  });

  it('the deletes of jobs handled side by side share one write', async () => {
    const { queue, db } = await openQueue();
    for (const body of ['a', 'b', 'c']) await queue.send(body);
    const jobs = await queue.receive(3);
    const write = vi.spyOn(db, 'write');
    await Promise.all(jobs.map((job) => queue.delete([job])));
    expect(write).toHaveBeenCalledTimes(1);
    expect(queue.depth().ready).toBe(0);
    // The next one is a write of its own.
    await queue.send('d');
    await queue.delete(await queue.receive(1));
    expect(queue.depth().ready).toBe(0);
  });

  it('a consumer that stops gives the jobs handed to none back, due at once for the next', async () => {
    const { queue } = await openQueue();
    queue.attach();
    await queue.send('left');
    await queue.detach();
    const [job] = await queue.receive(1);
    expect(job).toMatchObject({ body: 'left', receiveCount: 1 });
  });

  it('a receipt of a deleted job names no later job: the highest id is not given again', async () => {
    const { queue } = await openQueue();
    await queue.send('first');
    const [first] = await queue.receive(1);
    await queue.delete([first!]);
    // The next job, received once as the first was: a stale receipt of the first must miss it.
    await queue.send('second');
    const [second] = await queue.receive(1);
    expect(second!.id).not.toBe(first!.id);
    await queue.delete([first!]);
    expect(queue.depth().ready).toBe(1);
    // Two queues on one database draw from one sequence.
    const other = new SqliteJobQueue((queue as unknown as { store: SqliteDatabase }).store, { ...SPEC, name: 'other' });
    await other.send('third');
    const [third] = await other.receive(1);
    expect(third!.id).toBeGreaterThan(second!.id);
  });
});
