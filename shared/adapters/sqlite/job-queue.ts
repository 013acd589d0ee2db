/**
 * The local default's job queues (deliveries, outbound IMDN reports) as rows of the SQLite
 * database, with SQS's semantics (shared/adapters/sqs/queues.ts holds the settings both use):
 * a received job is hidden for the visibility timeout; one the handler does not finish comes
 * back after it; a job received `maxReceiveCount` times and still not done is moved to the
 * dead-letter side (kept `dlqRetentionSeconds`) at its next receive. A job is a row committed
 * before `send` resolves, so a restart loses none; at start-up the jobs the dead process held
 * become visible again at once (only one process opens the database).
 *
 * The consumer hands batches to the same `SqsBatchHandler` Lambda's event source mapping calls
 * in AWS, so the handlers cannot tell the two apart.
 */
import { setMaxListeners } from 'node:events';
import type { SQSRecord } from 'aws-lambda';
import type { DeliveryJob, DeliveryReport, DeferredMessage } from '#shared/deferred/model.ts';
import type { DeliveryQueue, ImdnOutbox } from '#shared/ports.ts';
import { failureImdnJob } from '#shared/adapters/imdn-job.ts';
import type { QueueSpec } from '#shared/adapters/sqs/queues.ts';
import type { SqsBatchHandler } from '#shared/adapters/sqs/poller.ts';
import { LIMIT_PARAM, type SqliteDatabase, type WriteOptions } from './database.ts';

interface JobRow {
  id: number;
  body: string;
  sent_at: number;
  receive_count: number;
  first_received_at: number | null;
}

/** A received job: its row and the receive it belongs to. */
export interface ReceivedJob {
  id: number;
  body: string;
  receiveCount: number;
  sentAt: number;
  firstReceivedAt: number;
}

export class SqliteJobQueue {
  private readonly s;
  private readonly waiters = new Set<() => void>();
  /** Jobs sent by this process so far: a consumer that saw none since its receive need not look again. */
  sent = 0;
  /** The last receive saw every visible job (none left behind for the next). */
  drained = false;

  constructor(
    private readonly store: SqliteDatabase,
    readonly spec: QueueSpec,
    private readonly now: () => number = Date.now,
  ) {
    const db = store.db;
    this.s = {
      send: db.prepare('INSERT INTO jobs (queue, body, sent_at, visible_at) VALUES (?, ?, ?, ?)'),
      ready: db.prepare<[string, number, number], JobRow>(
        'SELECT id, body, sent_at, receive_count, first_received_at FROM jobs ' +
          `WHERE queue = ? AND dead_at IS NULL AND visible_at <= ? ORDER BY visible_at, id ${LIMIT_PARAM}`,
      ),
      take: db.prepare(
        'UPDATE jobs SET receive_count = receive_count + 1, visible_at = ?, first_received_at = coalesce(first_received_at, ?) WHERE id = ?',
      ),
      bury: db.prepare('UPDATE jobs SET dead_at = ? WHERE id = ?'),
      delete: db.prepare('DELETE FROM jobs WHERE id = ? AND receive_count = ? AND dead_at IS NULL'),
      reset: db.prepare('UPDATE jobs SET visible_at = ? WHERE queue = ? AND dead_at IS NULL AND visible_at > ?'),
      purgeDead: db.prepare('DELETE FROM jobs WHERE queue = ? AND dead_at IS NOT NULL AND dead_at <= ?'),
      depth: db.prepare<[string], { ready: number; dead: number }>(
        'SELECT count(*) FILTER (WHERE dead_at IS NULL) AS ready, count(*) FILTER (WHERE dead_at IS NOT NULL) AS dead FROM jobs WHERE queue = ?',
      ),
      dead: db.prepare<[string], { body: string; receive_count: number }>(
        'SELECT body, receive_count FROM jobs WHERE queue = ? AND dead_at IS NOT NULL ORDER BY id',
      ),
    };
  }

  /**
   * Queue a job; resolves once it is committed and, unless `sync` is false
   * (SqliteDatabase's WriteOptions), on disk.
   */
  async send(body: string, options: WriteOptions = {}): Promise<void> {
    const now = this.now();
    await this.store.write(() => this.s.send.run(this.spec.name, body, now, now), options);
    this.sent++;
    this.wake();
  }

  /**
   * Take up to `max` visible jobs, hiding each for the visibility timeout; jobs past their
   * receive limit go to the dead-letter side instead.
   */
  receive(max: number): Promise<ReceivedJob[]> {
    // A receive mark lost in a crash is harmless: start-up makes every job visible again.
    return this.store.write(
      () => {
        const now = this.now();
        const out: ReceivedJob[] = [];
        // A few dead-lettered rows may come first: look a little further than `max`.
        const rows = this.s.ready.all(this.spec.name, now, max * 2);
        this.drained = rows.length < max * 2;
        for (const row of rows) {
          if (out.length >= max) break;
          if (row.receive_count >= this.spec.maxReceiveCount) {
            this.s.bury.run(now, row.id);
            continue;
          }
          this.s.take.run(now + this.spec.visibilityTimeoutSeconds * 1000, now, row.id);
          out.push({
            id: row.id,
            body: row.body,
            receiveCount: row.receive_count + 1,
            sentAt: row.sent_at,
            firstReceivedAt: row.first_received_at ?? now,
          });
        }
        return out;
      },
      { sync: false },
    );
  }

  /** Done with a job: removed, unless its visibility ran out and it was received again since. */
  async delete(jobs: readonly Pick<ReceivedJob, 'id' | 'receiveCount'>[]): Promise<void> {
    if (jobs.length === 0) return;
    // Lost in a crash, a handled job runs once more after the restart, as when the crash comes
    // between the handler and this delete; the handlers are idempotent. No wait for the fdatasync.
    await this.store.write(
      () => {
        for (const job of jobs) this.s.delete.run(job.id, job.receiveCount);
      },
      { sync: false },
    );
  }

  /** Start-up: the jobs a dead process held are visible again now. */
  async releaseAll(): Promise<number> {
    const now = this.now();
    return this.store.write(() => this.s.reset.run(now, this.spec.name, now).changes);
  }

  /** Drop dead-lettered jobs older than the DLQ retention. */
  async purgeDead(): Promise<number> {
    const cutoff = this.now() - this.spec.dlqRetentionSeconds * 1000;
    return this.store.write(() => this.s.purgeDead.run(this.spec.name, cutoff).changes);
  }

  depth(): { ready: number; dead: number } {
    return this.s.depth.get(this.spec.name) ?? { ready: 0, dead: 0 };
  }

  /** The dead-lettered jobs' bodies, oldest first (operators, tests). */
  deadLetters(): { body: string; receiveCount: number }[] {
    return this.s.dead.all(this.spec.name).map((r) => ({ body: r.body, receiveCount: r.receive_count }));
  }

  /** Resolves at a `send` (one waiter per job) or after `ms`, whichever comes first. */
  waitForJob(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /**
   * One job, one idle loop woken: waking them all had every idle loop run a receive (a write)
   * per job, all but one finding nothing. Loops busy now look again when their batch is done.
   */
  private wake(): void {
    const next = this.waiters.values().next();
    if (!next.done) next.value();
  }
}

export class SqliteDeliveryQueue implements DeliveryQueue {
  constructor(private readonly queue: SqliteJobQueue) {}

  async enqueue(job: DeliveryJob): Promise<void> {
    // The job carries the session (the delivery stores it as it takes it): keep it, or nothing delivers.
    const body: DeliveryJob = {
      user: job.user,
      sessionId: job.sessionId,
      edgeId: job.edgeId,
      ...(job.session ? { session: job.session } : {}),
    };
    await this.queue.send(JSON.stringify(body));
  }

  async report(report: DeliveryReport): Promise<void> {
    // No wait for the fdatasync: a report lost in a crash leaves its messages stored, to be
    // delivered again, as a crash just before it was queued does; a 200 counts as processed
    // once the deletes the report leads to are on disk (they are durable only after it: one
    // WAL, synced in order), and nothing the client sees (BYE, the NOTIFY) comes before them.
    await this.queue.send(JSON.stringify(report), { sync: false });
  }
}

export class SqliteImdnOutbox implements ImdnOutbox {
  constructor(private readonly queue: SqliteJobQueue) {}

  async failed(message: DeferredMessage): Promise<void> {
    await this.queue.send(JSON.stringify(failureImdnJob(message)));
  }
}

export interface JobConsumerOptions {
  queue: SqliteJobQueue;
  handler: SqsBatchHandler;
  /** Most jobs per handler call. Default 10. */
  batchSize?: number;
  /** Batches in flight side by side. Default 4. */
  concurrency?: number;
  /** How often an idle loop looks for jobs whose visibility ran out. Default 1000 ms. */
  idlePollMs?: number;
  onError?: (err: unknown) => void;
}

/** What Lambda's SQS event source mapping does, over the SQLite queue. */
export class SqliteJobConsumer {
  private abort: AbortController | undefined;
  private loops: Promise<void> | undefined;
  private readonly batchSize: number;
  private readonly concurrency: number;
  private readonly idlePollMs: number;
  private readonly onError: (err: unknown) => void;

  constructor(private readonly options: JobConsumerOptions) {
    this.batchSize = Math.max(1, Math.floor(options.batchSize ?? 10));
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 4));
    this.idlePollMs = options.idlePollMs ?? 1000;
    this.onError = options.onError ?? ((err) => console.warn(`job queue ${options.queue.spec.name}: ${String(err)}`));
  }

  start(): void {
    if (this.loops) return;
    const abort = new AbortController();
    // Every idle loop waits on this one signal: more than Node's default 10 is by design.
    setMaxListeners(0, abort.signal);
    this.abort = abort;
    this.loops = Promise.all(Array.from({ length: this.concurrency }, () => this.run(abort.signal))).then(
      () => undefined,
    );
  }

  /** Stop receiving; resolves once the batches in flight are handled. */
  async stop(): Promise<void> {
    const loops = this.loops;
    if (!loops) return;
    this.abort?.abort();
    await loops;
    this.loops = undefined;
  }

  private async run(signal: AbortSignal): Promise<void> {
    const { queue } = this.options;
    while (!signal.aborted) {
      let jobs: ReceivedJob[];
      const sentBefore = queue.sent;
      try {
        jobs = await queue.receive(this.batchSize);
      } catch (err) {
        this.onError(new Error(`receive failed: ${String(err)}`, { cause: err }));
        await queue.waitForJob(this.idlePollMs, signal);
        continue;
      }
      if (jobs.length === 0) {
        await queue.waitForJob(this.idlePollMs, signal);
        continue;
      }
      await this.handle(jobs);
      // A short batch took every visible job: unless one was sent since, looking again at once
      // would find none (a write for nothing, twice per pull); a send wakes an idle loop, and
      // the idle poll finds jobs whose visibility ran out, as before.
      if (jobs.length < this.batchSize && queue.drained && queue.sent === sentBefore) {
        await queue.waitForJob(this.idlePollMs, signal);
      }
    }
  }

  private async handle(jobs: ReceivedJob[]): Promise<void> {
    const { queue } = this.options;
    const records = jobs.map((job) => recordOf(queue.spec.name, job));
    let failed: Set<string>;
    try {
      const result = await this.options.handler({ Records: records });
      failed = new Set((result?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    } catch (err) {
      this.onError(new Error(`batch handler failed: ${String(err)}`, { cause: err }));
      failed = new Set(records.map((r) => r.messageId));
    }
    try {
      await queue.delete(jobs.filter((j) => !failed.has(String(j.id))));
    } catch (err) {
      // Not deleted: the job comes back after the visibility timeout; handlers are idempotent.
      this.onError(new Error(`delete failed: ${String(err)}`, { cause: err }));
    }
  }
}

/** An SQS record as Lambda's event source mapping builds it. */
function recordOf(queueName: string, job: ReceivedJob): SQSRecord {
  return {
    messageId: String(job.id),
    receiptHandle: `${job.id}:${job.receiveCount}`,
    body: job.body,
    attributes: {
      ApproximateReceiveCount: String(job.receiveCount),
      SentTimestamp: String(job.sentAt),
      SenderId: 'local',
      ApproximateFirstReceiveTimestamp: String(job.firstReceivedAt),
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'local:sqlite',
    eventSourceARN: `local:sqlite:${queueName}`,
    awsRegion: 'local',
  };
}
