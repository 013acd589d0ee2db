/**
 * DeferredMessageStore over SQLite: the DynamoDB adapter's semantics (idempotent deposit by
 * (user, sender, imdn.Message-ID); a duplicate whose first copy was delivered or deleted is not
 * stored again; expired rows hidden from every read) in single transactions.
 *
 * `count` reads the per-user summary row, kept in the same transaction as every insert and
 * delete, less the user's expired rows the sweep has not removed yet (an index range, usually
 * empty). `repairSummaries` recounts from the rows: the sweep's repair path.
 *
 * Delivery claims (`claimMany`, `releaseMany`) read the rows and keep their leases in memory
 * (./message-leases.ts): no write, and a start-up finds every message free.
 *
 * `getMany` (an INVITE's ids) and `claimMany` (its delivery) right after `list` (its NOTIFY) find
 * the rows that list read in memory (./recent-lists.ts), payloads of up to LISTED_PAYLOAD_BYTES
 * included, and the lists after a `deleteMany` find the rest of it there; every write to a
 * user's rows forgets the user's list.
 */
import type { DeferredMessage, DeferredMessageEntry } from '#shared/deferred/model.ts';
import {
  StoreFullError,
  storedBytes,
  type DeferredMessageStore,
  type MessagePage,
  type Removed,
  type StoreLimits,
} from '#shared/ports.ts';
import { LIMIT_PARAM, type SqliteDatabase } from './database.ts';
import { MessageLeases } from './message-leases.ts';
import { RecentLists } from './recent-lists.ts';

/**
 * A row's entry: `meta` holds the fields without a column of their own (`to` only when it is not
 * the user), about 130 bytes of each row fewer to write, delete and parse. Rows written before
 * hold them all in `meta` too; the columns win.
 */
interface EntryRow {
  user: string;
  id: string;
  arrived_at: string;
  expires_at: number;
  meta: string;
}

/** The columns of an EntryRow, in the order SELECTs list them. */
const ENTRY = 'user, id, arrived_at, expires_at, meta';

interface MessageRow extends EntryRow {
  cpim: Buffer;
}

/** A listed row: its payload too when it is small (LISTED_PAYLOAD_BYTES), for the claim that follows. */
interface ListedRow extends EntryRow {
  cpim: Buffer | null;
}

/**
 * A listed row as RecentLists keeps it: its entry parsed once (an entry's fields are strings and
 * numbers, so each read's copy of it is its own) and its payload when the list read it.
 */
interface KeptRow {
  id: string;
  expires_at: number;
  entry: DeferredMessageEntry;
  cpim: Buffer | null;
}

/**
 * A payload up to this size is read with the list, the rest of the row being read anyway, and
 * kept for the delivery's claim; a larger one is left to the claim (the list reads its length only).
 * A NOTIFY lists Policy.notifyMaxEntries rows (15 unless configured): 240 KiB read at worst.
 */
const LISTED_PAYLOAD_BYTES = 16 * 1024;
/**
 * The listed payloads kept in all, at most; besides them, the lists of deletes waiting for their
 * commit's fdatasync (kept again after it): about twice this at worst.
 */
const LISTED_BYTES = 2 * 1024 ** 2;

interface DedupeRow {
  stored_id: string;
  stored_arrived_at: string;
  expires_at: number;
}

export class SqliteDeferredMessageStore implements DeferredMessageStore {
  private readonly s;
  private repairCursor = '';
  /** Delivery leases, in memory (./message-leases.ts says why). */
  readonly leases = new MessageLeases();
  /** Users' last complete lists, for the INVITE's batch read and the claim (./recent-lists.ts says why it is exact). */
  private readonly recentLists = new RecentLists<KeptRow>(512, 100, LISTED_BYTES, (r) => r.cpim?.length ?? 0);

  constructor(private readonly store: SqliteDatabase) {
    const db = store.db;
    this.s = {
      dedupe: db.prepare<[string, string, string], DedupeRow>(
        'SELECT stored_id, stored_arrived_at, expires_at FROM dedupe WHERE user = ? AND sender = ? AND message_id = ?',
      ),
      claim: db.prepare(
        'INSERT OR REPLACE INTO dedupe (user, sender, message_id, stored_id, stored_arrived_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      insert: db.prepare(
        'INSERT OR IGNORE INTO messages (user, id, arrived_at, expires_at, meta, cpim) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      byId: db.prepare<[string, string], MessageRow>(`SELECT ${ENTRY}, cpim FROM messages WHERE user = ? AND id = ?`),
      // length() of a blob reads the record's header only: a larger payload is not read at all.
      list: db.prepare<[number, string, number, number], ListedRow>(
        `SELECT ${ENTRY}, CASE WHEN length(cpim) <= ? THEN cpim END AS cpim FROM messages ` +
          `WHERE user = ? AND expires_at > ? ORDER BY arrived_at, id ${LIMIT_PARAM}`,
      ),
      // An INVITE's ids in one statement (a JSON array bound once), not one lookup each.
      entriesByIds: db.prepare<[string, string, number], EntryRow>(
        `SELECT ${ENTRY} FROM messages WHERE user = ? AND id IN (SELECT value FROM json_each(?)) AND expires_at > ?`,
      ),
      // A session's claims: its unexpired messages among the ids (a JSON array bound once, each
      // row found by the (user, id) key), with their payloads; the leases are MessageLeases'.
      claimable: db.prepare<[string, string, number], MessageRow>(
        `SELECT ${ENTRY}, cpim FROM messages WHERE user = ? AND id IN (SELECT value FROM json_each(?)) AND expires_at > ?`,
      ),
      page: db.prepare<[string, number, string, string, string, number], MessageRow>(
        `SELECT ${ENTRY}, cpim FROM messages WHERE user = ? AND expires_at > ? AND (arrived_at > ? OR (arrived_at = ? AND id > ?)) ORDER BY arrived_at, id ${LIMIT_PARAM}`,
      ),
      stats: db.prepare<[number], { pending: number; users: number }>(
        'SELECT count(*) AS pending, count(DISTINCT user) AS users FROM messages WHERE expires_at > ?',
      ),
      pending: db.prepare<[string], { pending: number; bytes: number }>(
        'SELECT pending, bytes FROM user_summary WHERE user = ?',
      ),
      total: db.prepare<[], { bytes: number }>('SELECT bytes FROM store_total WHERE id = 1'),
      addTotal: db.prepare('UPDATE store_total SET bytes = max(0, bytes + ?) WHERE id = 1'),
      setTotal: db.prepare(
        'UPDATE store_total SET bytes = (SELECT coalesce(sum(bytes), 0) FROM user_summary) WHERE id = 1',
      ),
      expiredOf: db.prepare<[number, string], { n: number }>(
        'SELECT count(*) AS n FROM messages WHERE expires_at <= ? AND user = ?',
      ),
      add: db.prepare<[string, number, number]>(
        'INSERT INTO user_summary (user, pending, bytes) VALUES (?, ?, ?) ON CONFLICT (user) DO UPDATE SET ' +
          'pending = max(0, pending + excluded.pending), bytes = max(0, bytes + excluded.bytes)',
      ),
      removed: db.prepare<[string, string], { id: string; b: number }>(
        'DELETE FROM messages WHERE user = ? AND id IN (SELECT value FROM json_each(?)) RETURNING id, length(cpim) AS b',
      ),
      // An expired copy the sweep has not reached yet, under the id a new deposit takes: it
      // stays for the sweep (watchers, negative-delivery IMDN) under an id of its own.
      moveExpired: db.prepare<[string, string, number]>(
        `UPDATE messages SET id = id || '~' || arrived_at
         WHERE user = ? AND id = ? AND expires_at <= ?`,
      ),
      expired: db.prepare<[number, number], MessageRow>(
        `SELECT ${ENTRY}, cpim FROM messages WHERE expires_at <= ? ORDER BY expires_at ${LIMIT_PARAM}`,
      ),
      recount: db.prepare<[string], { n: number; b: number }>(
        'SELECT count(*) AS n, coalesce(sum(length(cpim)), 0) AS b FROM messages WHERE user = ?',
      ),
      setPending: db.prepare('UPDATE user_summary SET pending = ?, bytes = ? WHERE user = ?'),
      dropSummary: db.prepare('DELETE FROM user_summary WHERE user = ? AND pending = 0'),
      summaryPage: db.prepare<[string, number], { user: string }>(
        `SELECT user FROM user_summary WHERE user > ? ORDER BY user ${LIMIT_PARAM}`,
      ),
      usersWithoutSummary: db.prepare<[number], { user: string }>(
        `SELECT DISTINCT m.user FROM messages m WHERE NOT EXISTS (SELECT 1 FROM user_summary s WHERE s.user = m.user) ${LIMIT_PARAM}`,
      ),
      purgeDedupe: db.prepare('DELETE FROM dedupe WHERE expires_at <= ?'),
    };
  }

  put(message: DeferredMessage, limits?: StoreLimits): Promise<{ created: boolean; message: DeferredMessage }> {
    // The deposit's own clock: a claim that expired before this arrival counts as absent.
    const parsed = Date.parse(message.arrivedAt);
    const nowSec = Math.floor((Number.isNaN(parsed) ? Date.now() : parsed) / 1000);
    return this.store.write(() => {
      this.recentLists.forget(message.user);
      const claim = this.s.dedupe.get(message.user, message.from, message.messageId);
      if (claim && claim.expires_at > nowSec) {
        const stored = this.s.byId.get(message.user, claim.stored_id);
        if (stored) return { created: false, message: messageOf(stored) };
        // Delivered or deleted since: a late duplicate must not bring it back.
        return {
          created: false,
          message: { ...message, id: claim.stored_id, arrivedAt: claim.stored_arrived_at, expiresAt: claim.expires_at },
        };
      }
      const bytes = storedBytes(message);
      if (limits) {
        const summary = this.s.pending.get(message.user);
        if ((summary?.pending ?? 0) >= limits.maxMessagesPerUser) throw new StoreFullError('messages');
        if ((summary?.bytes ?? 0) + bytes > limits.maxBytesPerUser) throw new StoreFullError('bytes');
        if ((this.s.total.get()?.bytes ?? 0) + bytes > limits.maxStoreBytes) throw new StoreFullError('total');
      }
      const { cpim, user: _user, id: _id, arrivedAt: _arrivedAt, expiresAt: _expiresAt, to, ...rest } = message;
      const meta = to === message.user ? rest : { ...rest, to };
      // The expired copy moves to an id of its own, leaving no lease on the new one.
      if (this.s.moveExpired.run(message.user, message.id, nowSec).changes > 0) {
        this.leases.forget(message.user, message.id);
      }
      const inserted = this.s.insert.run(
        message.user,
        message.id,
        message.arrivedAt,
        message.expiresAt,
        JSON.stringify(meta),
        Buffer.from(cpim.buffer, cpim.byteOffset, cpim.byteLength),
      );
      if (inserted.changes === 0) {
        // The same id stored before (a retried put): the first copy stands.
        return { created: false, message: messageOf(this.s.byId.get(message.user, message.id)!) };
      }
      this.s.claim.run(message.user, message.from, message.messageId, message.id, message.arrivedAt, message.expiresAt);
      this.addSummary(message.user, 1, bytes);
      return { created: true, message };
    });
  }

  async list(user: string, now: number, limit?: number): Promise<DeferredMessageEntry[]> {
    if (limit !== undefined && limit <= 0) return [];
    const kept = this.recentLists.listOf(user, now);
    if (kept) return (limit === undefined ? kept : kept.slice(0, limit)).map(entryOfKept);
    const rows = this.s.list.all(LISTED_PAYLOAD_BYTES, user, now, limit ?? -1);
    const entries = rows.map(entryOf);
    // All of the user's rows unless the limit cut the list short. An empty list is not kept: an
    // INVITE after it names nothing there, and a SUBSCRIBE-only load keeps nothing more in memory.
    if (rows.length > 0 && (limit === undefined || rows.length < limit)) {
      this.recentLists.remember(
        user,
        now,
        rows.map((r, i) => ({ id: r.id, expires_at: r.expires_at, entry: { ...entries[i]! }, cpim: r.cpim })),
      );
    }
    return entries;
  }

  async getMany(user: string, ids: readonly string[], now: number): Promise<DeferredMessageEntry[]> {
    if (ids.length === 0) return [];
    const listed = this.recentLists.rowsOf(user, ids, now);
    return listed ? listed.map(entryOfKept) : this.s.entriesByIds.all(user, JSON.stringify(ids), now).map(entryOf);
  }

  claimMany(
    user: string,
    ids: readonly string[],
    holder: string,
    nowSec: number,
    leaseSeconds: number,
  ): Promise<DeferredMessage[]> {
    if (ids.length === 0) return Promise.resolve([]);
    // A read and the leases' map, no write: the rows hold no lease (./message-leases.ts). One
    // statement for all the ids; each id taken or left out on its own lease's condition.
    const until = nowSec + leaseSeconds;
    const found = new Map<string, DeferredMessage>();
    const taken = (id: string) => {
      if (!this.leases.free(user, id, holder, nowSec)) return false;
      this.leases.take(user, id, holder, until);
      return true;
    };
    // The rows of the list just read, when it kept all their payloads (each read gets its own copy);
    // a message is made only for a row whose lease is taken.
    const listed = this.recentLists.rowsOf(user, ids, nowSec);
    if (listed?.every((r) => r.cpim !== null)) {
      for (const row of listed) if (taken(row.id)) found.set(row.id, keptMessageOf(row));
    } else {
      for (const row of this.s.claimable.all(user, JSON.stringify(ids), nowSec)) {
        if (taken(row.id)) found.set(row.id, messageOf(row));
      }
    }
    return Promise.resolve(inOrderOf(ids, found));
  }

  releaseMany(user: string, ids: readonly string[], holder: string): Promise<string[]> {
    // A message deleted or moved since lost its lease with it: given back are the ones held.
    return Promise.resolve([...new Set(ids)].filter((id) => this.leases.release(user, id, holder)));
  }

  /** Drop the leases that lapsed before `nowSec` (deliveries that never settled); housekeeping. */
  dropLapsedClaims(nowSec: number): number {
    return this.leases.dropLapsed(nowSec);
  }

  async listPage(user: string, now: number, page: { limit: number; cursor?: string }): Promise<MessagePage> {
    if (page.limit <= 0) return { messages: [] };
    // The cursor is the last returned message's (arrived_at, id), the list's order.
    let after: [string, string] = ['', ''];
    if (page.cursor !== undefined) {
      const parsed = parseCursor(page.cursor);
      if (!parsed) throw new RangeError('cursor: not one this list returned');
      after = parsed;
    }
    const rows = this.s.page.all(user, now, after[0], after[0], after[1], page.limit + 1).map(messageOf);
    const messages = rows.slice(0, page.limit);
    const last = messages[messages.length - 1];
    return rows.length > page.limit && last
      ? { messages, cursor: Buffer.from(JSON.stringify([last.arrivedAt, last.id]), 'utf8').toString('base64url') }
      : { messages };
  }

  async stats(now: number): Promise<{ pending: number; users: number }> {
    return this.s.stats.get(now) ?? { pending: 0, users: 0 };
  }

  async count(user: string, now: number): Promise<number> {
    const pending = this.s.pending.get(user)?.pending ?? 0;
    return Math.max(0, pending - (this.s.expiredOf.get(now, user)?.n ?? 0));
  }

  async get(user: string, id: string, now: number): Promise<DeferredMessage | undefined> {
    const row = this.s.byId.get(user, id);
    if (!row) return undefined;
    const message = messageOf(row);
    return message.expiresAt > now ? message : undefined;
  }

  deleteMany(user: string, ids: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return Promise.resolve([]);
    // The removals and the summary they take off in one transaction: no count left high by a
    // crash. One statement for all the ids: a DELETE per id cost 1.5-2 times the CPU (about 340
    // against 210 µs for 10 ids and their count, on a table of 20,000 rows).
    // The user's list, less what this removes, stands again once it committed (RecentLists).
    let keepAgain: (removed: readonly string[] | undefined) => void = () => undefined;
    return this.store
      .write(() => {
        keepAgain = this.recentLists.forgetUntilRemoved(user);
        const rows = this.s.removed.all(user, JSON.stringify(ids));
        if (rows.length > 0) this.addSummary(user, -rows.length, -rows.reduce((sum, r) => sum + r.b, 0));
        for (const row of rows) this.leases.forget(user, row.id);
        const gone = new Set(rows.map((r) => r.id));
        return [...new Set(ids)].filter((id) => gone.has(id));
      })
      .then(
        (removed) => {
          keepAgain(removed);
          return removed;
        },
        (err: unknown) => {
          keepAgain(undefined);
          throw err;
        },
      );
  }

  async uncount(user: string, removed: Removed): Promise<void> {
    if (removed.messages > 0 || removed.bytes > 0) {
      // A count lost in a crash is put right by the sweep's recount.
      await this.store.write(() => this.addSummary(user, -removed.messages, -removed.bytes), { sync: false });
    }
  }

  /** The user's summary and the store's total, in the caller's transaction. */
  private addSummary(user: string, messages: number, bytes: number): void {
    this.s.add.run(user, messages, bytes);
    this.s.addTotal.run(bytes);
  }

  async listExpired(now: number, limit: number): Promise<DeferredMessage[]> {
    if (limit <= 0) return [];
    return this.s.expired.all(now, limit).map(messageOf);
  }

  /**
   * The sweep's repair path: recount up to `batch` users' summaries from their rows (round
   * robin over the users, so every summary is checked in turn), count users that have rows
   * but no summary, and drop dedupe claims past their expiry. Returns the summaries corrected.
   */
  repairSummaries(nowSec: number, batch = 200): Promise<number> {
    return this.store.write(() => {
      let fixed = 0;
      let users = this.s.summaryPage.all(this.repairCursor, batch).map((r) => r.user);
      if (users.length < batch) {
        this.repairCursor = '';
        users = users.concat(this.s.usersWithoutSummary.all(batch).map((r) => r.user));
      } else {
        this.repairCursor = users[users.length - 1]!;
      }
      for (const user of users) {
        const actual = this.s.recount.get(user) ?? { n: 0, b: 0 };
        const summary = this.s.pending.get(user);
        if (summary?.pending !== actual.n || summary.bytes !== actual.b) {
          if (summary === undefined) this.s.add.run(user, actual.n, actual.b);
          else this.s.setPending.run(actual.n, actual.b, user);
          fixed++;
        }
        if (actual.n === 0) this.s.dropSummary.run(user);
      }
      // Once a round (every summary checked): the total from the summaries.
      if (this.repairCursor === '') this.s.setTotal.run();
      this.s.purgeDedupe.run(nowSec);
      return fixed;
    });
  }
}

/** The messages of `found` in the order of `ids` (a statement's RETURNING rows come in its own order). */
function inOrderOf(ids: readonly string[], found: Map<string, DeferredMessage>): DeferredMessage[] {
  return [...new Set(ids)].flatMap((id) => found.get(id) ?? []);
}

function entryOf(row: EntryRow): DeferredMessageEntry {
  const entry = JSON.parse(row.meta) as DeferredMessageEntry;
  entry.user = row.user;
  entry.id = row.id;
  entry.to ??= row.user;
  entry.arrivedAt = row.arrived_at;
  entry.expiresAt = row.expires_at;
  return entry;
}

function messageOf(row: MessageRow): DeferredMessage {
  const message = entryOf(row) as DeferredMessage;
  message.cpim = new Uint8Array(row.cpim.buffer, row.cpim.byteOffset, row.cpim.byteLength);
  return message;
}

/** A kept row's entry, a copy of its own (the row is read again by later reads). */
function entryOfKept(row: KeptRow): DeferredMessageEntry {
  return { ...row.entry };
}

/**
 * A kept row's message, with copies of its entry and payload (held by the claim that calls it).
 * Object.assign, then the payload copied into node's buffer pool (a plain Uint8Array view of it,
 * as messageOf gives): a spread followed by a property it lacks, or a Uint8Array with a buffer of
 * its own, cost 2-3 µs a message where this costs about 0.5.
 */
function keptMessageOf(row: KeptRow): DeferredMessage {
  const message = Object.assign({}, row.entry) as DeferredMessage;
  const copy = Buffer.from(row.cpim!);
  message.cpim = new Uint8Array(copy.buffer, copy.byteOffset, copy.byteLength);
  return message;
}

function parseCursor(cursor: string): [string, string] | undefined {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === 'string')) {
      return value as [string, string];
    }
  } catch {
    // not JSON: not ours
  }
  return undefined;
}
