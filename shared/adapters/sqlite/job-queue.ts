/**
 * The local default's job queues (deliveries, outbound IMDN reports) as rows of the SQLite
 * database, with SQS's semantics (shared/adapters/sqs/queues.ts holds the settings both use):
 * a received job is hidden for the visibility timeout; one the handler does not finish comes
 * back after it; a job received `maxReceiveCount` times and still not done is moved to the
 * dead-letter side (kept `dlqRetentionSeconds`) at its next receive. A job is a row committed
 * before `send` resolves, so a restart loses none; at start-up the jobs the dead process held
 * become visible again at once (only one process opens the database).
 *
 * A job sent while this process's consumer runs is received in the write that queues it (its
 * receive count, first receive and visibility set in the INSERT) and handed to the consumer in
 * memory: no receive write of its own, and no poll (a write that mostly found nothing) after each
 * job. What SQS does stays: a handler that fails it or outlives the visibility timeout leaves it
 * to come back then (received again, from the table); a process that dies with it leaves it
 * received once more at start-up, so a job that crashes the process each time is dead-lettered
 * after `maxReceiveCount` start-ups as after as many failed receives.
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
import { LIMIT_PARAM, ONE_STATEMENT, type SqliteDatabase, type WriteOptions } from './database.ts';

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

/**
 * Job ids, one sequence per database shared by its queues, never reused while this process runs:
 * a receipt (id and receive count) of a job deleted since can name no newer job, as with
 * AUTOINCREMENT, whose sqlite_sequence row was one more page written at every send. Receipts
 * live in this process's memory only, so a restart, which starts after the highest id left,
 * leaves none that could name a job it makes.
 */
const lastJobIds = new WeakMap<SqliteDatabase, { last: number }>();

function jobIdsOf(store: SqliteDatabase): { last: number } {
  let ids = lastJobIds.get(store);
  if (!ids) {
    const last = store.db.prepare('SELECT max(id) FROM jobs').pluck().get() as number | null;
    lastJobIds.set(store, (ids = { last: last ?? 0 }));
  }
  return ids;
}

export class SqliteJobQueue {
  private readonly s;
  private readonly waiters = new Set<() => void>();
  /** The last look at the table saw every visible job (none left behind for the next). */
  drained = false;
  /** Jobs received at their send, waiting for a consumer loop (oldest first). */
  private readonly handed: ReceivedJob[] = [];
  /** Consumers running on this queue (SqliteJobConsumer.start): sends are received as written. */
  private consumers = 0;
  /** Deletes waiting for the next commit, in one write. */
  private deleting: { jobs: Pick<ReceivedJob, 'id' | 'receiveCount'>[]; done: Promise<void> } | undefined;
  private readonly ids: { last: number };

  constructor(
    private readonly store: SqliteDatabase,
    readonly spec: QueueSpec,
    private readonly now: () => number = Date.now,
  ) {
    const db = store.db;
    this.ids = jobIdsOf(store);
    this.s = {
      send: db.prepare('INSERT INTO jobs (id, queue, body, sent_at, visible_at) VALUES (?, ?, ?, ?, ?)'),
      // Sent and received in one write: hidden for the visibility timeout, received once.
      sendReceived: db.prepare(
        'INSERT INTO jobs (id, queue, body, sent_at, visible_at, receive_count, first_received_at) VALUES (?, ?, ?, ?, ?, 1, ?)',
      ),
      // A job received at its send that no handler took (its consumer stopped): due again now.
      unhand: db.prepare(
        'UPDATE jobs SET visible_at = ?, receive_count = receive_count - 1 WHERE id = ? AND receive_count = ? AND dead_at IS NULL',
      ),
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
   * (SqliteDatabase's WriteOptions), on disk. While a consumer runs, the job is received in the
   * same write and handed to it.
   */
  async send(body: string, options: WriteOptions = {}): Promise<void> {
    const now = this.now();
    const received = this.consumers > 0;
    const hiddenUntil = now + this.spec.visibilityTimeoutSeconds * 1000;
    const id = await this.store.write(
      () => {
        const id = ++this.ids.last;
        if (received) this.s.sendReceived.run(id, this.spec.name, body, now, hiddenUntil, now);
        else this.s.send.run(id, this.spec.name, body, now, now);
        return id;
      },
      { ...options, ...ONE_STATEMENT },
    );
    if (received) {
      const job: ReceivedJob = { id, body, receiveCount: 1, sentAt: now, firstReceivedAt: now };
      if (this.consumers > 0) this.handed.push(job);
      // The consumer stopped meanwhile: the job is due now, for the next one.
      else await this.unhand([job]);
    } else {
      this.drained = false;
    }
    this.wake();
  }

  /** A consumer starts taking this queue's jobs: sends from now on are received as they are written. */
  attach(): void {
    this.consumers++;
  }

  /** A consumer stopped: the last one gives the jobs handed to none back (due at once). */
  async detach(): Promise<void> {
    if (--this.consumers > 0) return;
    await this.unhand(this.handed.splice(0));
  }

  private async unhand(jobs: readonly ReceivedJob[]): Promise<void> {
    if (jobs.length === 0) return;
    const now = this.now();
    await this.store.write(() => {
      for (const job of jobs) this.s.unhand.run(now, job.id, job.receiveCount);
    });
    this.drained = false;
  }

  /**
   * Take up to `max` jobs: those received at their send first (no write); else, when `look`
   * or the last look left some behind, the visible ones in the table, each hidden for the
   * visibility timeout; jobs past their receive limit go to the dead-letter side instead. A
   * look that finds none is a read, not a write.
   */
  receive(max: number, look = true): Promise<ReceivedJob[]> {
    const now = this.now();
    const handed = this.takeHanded(max, now);
    if (handed.length > 0 || (!look && this.drained)) return Promise.resolve(handed);
    if (this.s.ready.all(this.spec.name, now, 1).length === 0) {
      this.drained = true;
      return Promise.resolve([]);
    }
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

  /**
   * Up to `max` jobs received at their send. One that waited past its visibility timeout (every
   * loop busy that long) is visible in the table again: left to a look, which receives it anew.
   */
  private takeHanded(max: number, now: number): ReceivedJob[] {
    const out: ReceivedJob[] = [];
    while (out.length < max && this.handed.length > 0) {
      const job = this.handed.shift()!;
      if (job.firstReceivedAt + this.spec.visibilityTimeoutSeconds * 1000 > now) out.push(job);
      else this.drained = false;
    }
    return out;
  }

  /**
   * Done with a job: removed, unless its visibility ran out and it was received again since. The
   * deletes asked for before the next commit share one write.
   */
  delete(jobs: readonly Pick<ReceivedJob, 'id' | 'receiveCount'>[]): Promise<void> {
    if (jobs.length === 0) return Promise.resolve();
    if (this.deleting) {
      this.deleting.jobs.push(...jobs);
      return this.deleting.done;
    }
    const batch = [...jobs];
    // Lost in a crash, a handled job runs once more after the restart, as when the crash comes
    // between the handler and this delete; the handlers are idempotent. No wait for the fdatasync.
    const done = this.store.write(
      () => {
        // Deletes asked for from here on make a write of their own.
        this.deleting = undefined;
        for (const job of batch) this.s.delete.run(job.id, job.receiveCount);
      },
      // Each delete may stand without the others (a job not deleted comes back): no savepoint.
      { sync: false, noSavepoint: true },
    );
    this.deleting = { jobs: batch, done };
    // Not run (the store closed or broke): the next delete tries a write of its own.
    done.catch(() => {
      if (this.deleting?.done === done) this.deleting = undefined;
    });
    return done;
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

  /**
   * Resolves at a `send` (one waiter per job; true) or after `ms` or at `signal` (false),
   * whichever comes first.
   */
  waitForJob(ms: number, signal: AbortSignal): Promise<boolean> {
    // Aborted already (a stop between a loop's receive and this wait): no idle poll to sit out.
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (sent: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(woken);
        signal.removeEventListener('abort', idle);
        resolve(sent);
      };
      const woken = () => done(true);
      const idle = () => done(false);
      const timer = setTimeout(idle, ms);
      this.waiters.add(woken);
      signal.addEventListener('abort', idle, { once: true });
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
  /** Handler calls in flight side by side at most (a function's concurrency; a batch's delete is not counted). Default 4. */
  concurrency?: number;
  /**
   * Loops kept while there is no work (default 4, or `concurrency` if lower). More start as work
   * comes, one whenever every loop is handling a batch, up to `concurrency`; one past these that
   * waits a whole idle poll for nothing ends.
   */
  idleLoops?: number;
  /** How often an idle loop looks for jobs whose visibility ran out. Default 1000 ms. */
  idlePollMs?: number;
  onError?: (err: unknown) => void;
}

/** What Lambda's SQS event source mapping does, over the SQLite queue. */
export class SqliteJobConsumer {
  private abort: AbortController | undefined;
  private readonly loops = new Set<Promise<void>>();
  /** Loops running (counted at once: a loop leaves `loops` a tick after it ends), and of them those handling a batch. */
  private count = 0;
  private handling = 0;
  /** Deletes of handled batches still waiting for their commit (`stop` waits for them). */
  private readonly deletes = new Set<Promise<void>>();
  private stopping: Promise<void> | undefined;
  private readonly batchSize: number;
  private readonly concurrency: number;
  private readonly idleLoops: number;
  private readonly idlePollMs: number;
  private readonly onError: (err: unknown) => void;

  constructor(private readonly options: JobConsumerOptions) {
    this.batchSize = Math.max(1, Math.floor(options.batchSize ?? 10));
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 4));
    this.idleLoops = Math.min(this.concurrency, Math.max(1, Math.floor(options.idleLoops ?? 4)));
    this.idlePollMs = options.idlePollMs ?? 1000;
    this.onError = options.onError ?? ((err) => console.warn(`job queue ${options.queue.spec.name}: ${String(err)}`));
  }

  start(): void {
    if (this.abort) return;
    const abort = new AbortController();
    // Every idle loop waits on this one signal: more than Node's default 10 is by design.
    setMaxListeners(0, abort.signal);
    this.abort = abort;
    this.options.queue.attach();
    for (let i = 0; i < this.idleLoops; i++) this.spawn(abort.signal, true);
  }

  /** Loops running now (the idle ones, and those work added). */
  get loopCount(): number {
    return this.count;
  }

  private spawn(signal: AbortSignal, look: boolean): void {
    this.count++;
    const loop: Promise<void> = this.run(signal, look).finally(() => this.loops.delete(loop));
    this.loops.add(loop);
  }

  /** Stop receiving; resolves once the batches in flight are handled and their deletes committed. */
  stop(): Promise<void> {
    // Called again before it is done: the same stop (the queue is detached once).
    this.stopping ??= this.stopLoops().finally(() => (this.stopping = undefined));
    return this.stopping;
  }

  private async stopLoops(): Promise<void> {
    const abort = this.abort;
    if (!abort) return;
    abort.abort();
    while (this.loops.size > 0) await Promise.all(this.loops);
    await Promise.allSettled(this.deletes);
    this.abort = undefined;
    // Not given back (the store closed first): start-up makes them due again.
    await this.options.queue
      .detach()
      .catch((err: unknown) => this.onError(new Error(`give-back failed: ${String(err)}`)));
  }

  /**
   * `look`: look at the table first (the loops of start-up, for jobs from before). Otherwise take
   * what sends hand over, and look again after an idle poll (jobs whose visibility ran out) or
   * when the last look left jobs behind.
   */
  private async run(signal: AbortSignal, look: boolean): Promise<void> {
    const { queue } = this.options;
    try {
      while (!signal.aborted) {
        let jobs: ReceivedJob[] = [];
        try {
          jobs = await queue.receive(this.batchSize, look);
        } catch (err) {
          this.onError(new Error(`receive failed: ${String(err)}`, { cause: err }));
        }
        if (jobs.length === 0) {
          const woken = await queue.waitForJob(this.idlePollMs, signal);
          // A loop past the idle ones that waited a whole poll for nothing ends.
          if (!woken && this.count > this.idleLoops) return;
          look = !woken;
          continue;
        }
        look = false;
        // Every loop handling a batch: one more waits for the next job (a job that finds no
        // waiting loop waits for a batch to end), up to `concurrency`.
        if (++this.handling === this.count && this.count < this.concurrency && !signal.aborted) {
          this.spawn(signal, false);
        }
        try {
          await this.handle(jobs);
        } finally {
          this.handling--;
        }
      }
    } finally {
      this.count--;
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
    // As SQS's event source mapping deletes a batch after its function returned, outside the
    // function's concurrency, the loop goes on to its next batch while the delete waits for its
    // commit (the next group commit, 10-20 ms under load). Waiting for it held each loop for two
    // commits a job, which capped a queue at `concurrency` jobs per two commits (16 loops: about
    // 450 deliveries a second, whatever the CPU could do).
    const deleted = queue.delete(jobs.filter((j) => !failed.has(String(j.id)))).catch((err: unknown) => {
      // Not deleted: the job comes back after the visibility timeout; handlers are idempotent.
      this.onError(new Error(`delete failed: ${String(err)}`, { cause: err }));
    });
    this.deletes.add(deleted);
    const settled = () => this.deletes.delete(deleted);
    deleted.then(settled, settled);
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
