/**
 * The store contract (shared/ports.ts) as one set of cases, and the three implementations it
 * holds to it: the in-memory fakes the handler tests use, the SQLite adapters of the local
 * default and the DynamoDB adapters (on dynalite). A case that passes on one and fails on
 * another is drift.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openSqliteBackend } from '#shared/adapters/sqlite/index.ts';
import type { DeferredMessageStore, DeliverySessionStore, SubscriptionStore } from '#shared/ports.ts';
import { MemoryMessageStore, MemorySessionStore, MemorySubscriptionStore } from '../support/memory-ports.ts';
import { startLocalBackend } from '../support/aws-local/index.ts';
import { NOW } from '../integration/adapters/fixtures.ts';

export interface Stores {
  messages: DeferredMessageStore;
  subscriptions: SubscriptionStore;
  sessions: DeliverySessionStore;
}

/** How to get stores for one case, and to give everything back after the file. */
export interface StoreImplementation {
  name: string;
  /**
   * How expired messages leave: 'sweep' lists them for the sweep (`listExpired`) to delete;
   * 'ttl' lists none, the database removes them itself (DynamoDB TTL, whose stream feeds
   * `expire`), and a delete leaves a tombstone until then.
   */
  expiry: 'sweep' | 'ttl';
  /** Stores whose clock (for reads without a `now` argument) reads NOW. */
  open(): Promise<Stores>;
  closeAll(): Promise<void>;
}

export const memoryStores: StoreImplementation = {
  name: 'in-memory fakes',
  expiry: 'sweep',
  open: async () => ({
    messages: new MemoryMessageStore(),
    subscriptions: new MemorySubscriptionStore(),
    sessions: new MemorySessionStore(() => NOW * 1000),
  }),
  closeAll: async () => undefined,
};

/** A fresh database per case, each in its own temporary data folder. */
export function sqliteStores(): StoreImplementation {
  const opened: { close(): void; dir: string }[] = [];
  return {
    name: 'SQLite',
    expiry: 'sweep',
    async open() {
      const dir = await mkdtemp(path.join(tmpdir(), 'contract-sqlite-'));
      const backend = await openSqliteBackend({ dataDir: dir, now: () => NOW * 1000 });
      opened.push({ close: () => backend.close(), dir });
      return backend.ports;
    },
    async closeAll() {
      for (const { close, dir } of opened.splice(0)) {
        close();
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

/** One dynalite for the file: cases keep apart by their own users and session ids. */
export function dynamoStores(): StoreImplementation {
  let backend: Awaited<ReturnType<typeof startLocalBackend>> | undefined;
  return {
    name: 'DynamoDB (dynalite)',
    expiry: 'ttl',
    async open() {
      backend ??= await startLocalBackend({ dataDir: undefined, now: () => NOW * 1000 });
      return backend.ports;
    },
    async closeAll() {
      await backend?.stop();
      backend = undefined;
    },
  };
}

let unique = 0;
/** A user (or any key) no other case uses: the DynamoDB tables are shared by the file's cases. */
export function fresh(prefix: string): string {
  unique++;
  return `${prefix}-${process.pid}-${unique}`;
}
