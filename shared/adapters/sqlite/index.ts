/**
 * The local default's backend in one call: the SQLite database in the data folder and every
 * store port and job queue over it. Loaded only in local mode (a dynamic import): the AWS
 * container installs without the native module and must never load it.
 */
import type {
  DeferredMessageStore,
  DeliveryQueue,
  DeliverySessionStore,
  ImdnOutbox,
  SubscriptionStore,
} from '#shared/ports.ts';
import { DELIVERY_QUEUE, OUTBOUND_QUEUE, type QueueSpec } from '#shared/adapters/sqs/queues.ts';
import { SqliteDatabase, type SynchronousMode } from './database.ts';
import { SqliteDeferredMessageStore } from './deferred-messages.ts';
import { SqliteDeliverySessionStore } from './delivery-sessions.ts';
import { SqliteDeliveryQueue, SqliteImdnOutbox, SqliteJobQueue } from './job-queue.ts';
import { SqliteSubscriptionStore } from './subscriptions.ts';

export {
  DataDirInUseError,
  SqliteDatabase,
  DATABASE_FILE,
  ONE_STATEMENT,
  PID_FILE,
  type SynchronousMode,
} from './database.ts';
export { SqliteDeferredMessageStore } from './deferred-messages.ts';
export { SqliteSubscriptionStore } from './subscriptions.ts';
export { SqliteDeliverySessionStore } from './delivery-sessions.ts';
export {
  SqliteDeliveryQueue,
  SqliteImdnOutbox,
  SqliteJobConsumer,
  SqliteJobQueue,
  type JobConsumerOptions,
  type ReceivedJob,
} from './job-queue.ts';

export interface SqliteBackendOptions {
  dataDir: string;
  synchronous?: SynchronousMode;
  /** The page cache's size (SqliteOptions.cacheBytes). */
  cacheBytes?: number;
  /** Commit pacing on a busy loop (SqliteOptions.commitDelayMs). */
  commitDelayMs?: number;
  /** Epoch milliseconds (tests move it by hand). */
  now?: () => number;
  queue?: Partial<QueueSpec>;
  outboundQueue?: Partial<QueueSpec>;
}

export interface SqliteBackend {
  database: SqliteDatabase;
  ports: {
    messages: DeferredMessageStore;
    subscriptions: SubscriptionStore;
    sessions: DeliverySessionStore;
    queue: DeliveryQueue;
    outbox: ImdnOutbox;
  };
  queues: { delivery: SqliteJobQueue; outbound: SqliteJobQueue };
  /**
   * What TTL and the DLQ retention do in AWS, plus the summary repair: remove expired sessions
   * and dedupe claims, drop old dead letters, recount a batch of per-user summaries, forget
   * delivery leases that lapsed.
   */
  housekeeping(): Promise<{ summariesFixed: number; sessionsPurged: number }>;
  close(): void;
}

export async function openSqliteBackend(options: SqliteBackendOptions): Promise<SqliteBackend> {
  const now = options.now ?? Date.now;
  const database = await SqliteDatabase.open({
    dataDir: options.dataDir,
    ...(options.synchronous ? { synchronous: options.synchronous } : {}),
    ...(options.cacheBytes ? { cacheBytes: options.cacheBytes } : {}),
    ...(options.commitDelayMs ? { commitDelayMs: options.commitDelayMs } : {}),
  });
  const messages = new SqliteDeferredMessageStore(database);
  const sessions = new SqliteDeliverySessionStore(database, { now });
  const delivery = new SqliteJobQueue(database, { ...DELIVERY_QUEUE, ...options.queue }, now);
  const outbound = new SqliteJobQueue(database, { ...OUTBOUND_QUEUE, ...options.outboundQueue }, now);
  // Only this process has the database open: what a dead one was working on is due again now
  // (the messages' delivery leases were in its memory: none is held here).
  await delivery.releaseAll();
  await outbound.releaseAll();
  return {
    database,
    ports: {
      messages,
      subscriptions: new SqliteSubscriptionStore(database),
      sessions,
      queue: new SqliteDeliveryQueue(delivery),
      outbox: new SqliteImdnOutbox(outbound),
    },
    queues: { delivery, outbound },
    async housekeeping() {
      const nowSec = Math.floor(now() / 1000);
      const sessionsPurged = await sessions.purgeExpired(nowSec);
      await delivery.purgeDead();
      await outbound.purgeDead();
      const summariesFixed = await messages.repairSummaries(nowSec);
      messages.dropLapsedClaims(nowSec);
      return { summariesFixed, sessionsPurged };
    },
    close: () => database.close(),
  };
}
