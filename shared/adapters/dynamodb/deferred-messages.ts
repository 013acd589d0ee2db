/**
 * DeferredMessageStore over DynamoDB (docs/architecture.md "Data"): partition = served user, sort
 * key = `m#${id}`, so a message is one GetItem by its list handle and an INVITE's handles one
 * BatchGetItem. The list comes from the `byArrival` LSI (oldest first, no payload) and the count
 * from the user's summary item (an atomic counter): what a read costs does not grow with the
 * mailbox.
 *
 * Idempotent deposit without transactions (dynalite has none): a dedupe item keyed by sender and
 * imdn.Message-ID is claimed with a conditional put, then the message is written and counted,
 * then the claim is marked `stored`. The claim names the message's id and arrival time, so a
 * deposit retried after a failure between the writes finds the claim, sees the message missing
 * and writes it under the first attempt's key. A claim marked `stored` whose message is gone
 * means it was delivered or deleted: the duplicate is not stored again. A failure between the
 * message write and the count leaves the count one short (a repair is a recount of the LSI).
 */
import {
  BatchGetCommand,
  DeleteCommand,
  GetCommand,
  PutCommand,
  ScanCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import type { DeferredMessage, DeferredMessageEntry } from '#shared/deferred/model.ts';
import {
  StoreFullError,
  storedBytes,
  type DeferredMessageStore,
  type MessagePage,
  type Removed,
  type StoreLimits,
} from '#shared/ports.ts';
import { depositId } from '#shared/deferred/ids.ts';
import {
  asBytes,
  isConditionFailed,
  omit,
  queryItems,
  withoutUndefined,
  type Item,
  type StoreOptions,
} from './items.ts';
import { ARRIVAL_INDEX, MESSAGE_ENTRY_ATTRIBUTES } from './tables.ts';

const MESSAGE_PREFIX = 'm#';
/** The user's summary item: `count` of stored messages and their `bytes` (CPIM payloads). */
const SUMMARY_SK = 'summary';
/**
 * The summary revisions this process's writes left, per user (the latest only, at most
 * `limit` users): the change fan-out that follows a deposit or a delivery in the same process
 * passes it on, so the NOTIFYs may read the count eventually consistent (half the units) and
 * know whether the replica they read has seen that change. A user not here gets a strongly
 * consistent read.
 */
export class SummaryRevisions {
  private readonly latestByUser = new Map<string, number>();

  constructor(private readonly limit = 1000) {}

  note(user: string, revision: number): void {
    if (!Number.isFinite(revision)) return;
    this.latestByUser.delete(user);
    this.latestByUser.set(user, revision);
    // Oldest first in insertion order: a process that stops fanning out (or never does) stays bounded.
    if (this.latestByUser.size > this.limit) this.latestByUser.delete(this.latestByUser.keys().next().value!);
  }

  latest(user: string): number | undefined {
    return this.latestByUser.get(user);
  }
}

/** BatchGetItem takes at most 100 keys per request. */
const BATCH_GET_MAX = 100;
/** Rounds of BatchGetItem for keys DynamoDB left unprocessed (throttling) before giving up. */
const UNPROCESSED_ROUNDS = 8;

/** Storage-only attributes of a message item. */
const MESSAGE_STORAGE_KEYS = ['sk', 'arrival', 'leaseUntil', 'leaseHolder'] as const;

/** The sort key of a message item. */
export function messageSortKey(m: Pick<DeferredMessage, 'id'>): string {
  return MESSAGE_PREFIX + m.id;
}

/** The arrival index's sort key: oldest first, the id breaking ties. */
function arrivalKey(m: Pick<DeferredMessage, 'arrivedAt' | 'id'>): string {
  return `${m.arrivedAt}#${m.id}`;
}

/** What a BatchGetItem of entries reads back: the keys and the entry attributes. */
const ENTRY_READ = ['user', 'sk', 'arrival', ...MESSAGE_ENTRY_ATTRIBUTES];
/** `#a0, #a1, …` names for the entry attributes (several are reserved words: from, to, date, size). */
const ENTRY_PROJECTION = {
  expression: ENTRY_READ.map((_, i) => `#a${i}`).join(', '),
  names: Object.fromEntries(ENTRY_READ.map((name, i) => [`#a${i}`, name])),
};

/** What a delete removes from a message item (`arrival` first: the condition that it was there). */
const TOMBSTONE_DROPPED = ['arrival', 'cpim', 'leaseUntil', 'leaseHolder', ...MESSAGE_ENTRY_ATTRIBUTES].filter(
  (name) => name !== 'expiresAt',
);

/**
 * Requests of one batch call in flight at once: a delivery's (at most policy.maxInviteIds, 100)
 * all together; an operator's purge, which may name a whole mailbox, in rounds of this many.
 */
const PARALLEL_WRITES = 100;

/** `fn` of each item, at most PARALLEL_WRITES at a time; the results in the items' order. */
async function eachInParallel<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += PARALLEL_WRITES) {
    out.push(...(await Promise.all(items.slice(i, i + PARALLEL_WRITES).map(fn))));
  }
  return out;
}

export class DynamoDeferredMessageStore implements DeferredMessageStore {
  /** What this store's summary writes left, for the change fan-out (SummaryRevisions). */
  readonly revisions = new SummaryRevisions();

  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly options: StoreOptions = {},
  ) {}

  async put(message: DeferredMessage, limits?: StoreLimits): Promise<{ created: boolean; message: DeferredMessage }> {
    const sk = messageSortKey(message);
    if (message.id !== depositId(message.user, message.from, message.messageId)) {
      throw new RangeError('id: not the deposit id of (user, from, messageId)');
    }
    // The deposit's own clock: an item that expired before this arrival counts as absent.
    const parsed = Date.parse(message.arrivedAt);
    const nowSec = Math.floor((Number.isNaN(parsed) ? Date.now() : parsed) / 1000);
    const bytes = storedBytes(message);
    // Counted first, under the caps, in one conditional write (no read of the count before);
    // given back if the message turns out to be stored already.
    if (!(await this.count1(message.user, bytes, limits))) {
      const existing = await this.getItem(message.user, sk);
      if (existing && Number(existing.expiresAt) > nowSec) return this.duplicate(message, existing);
      const summary = await this.getItem(message.user, SUMMARY_SK);
      throw new StoreFullError(Number(summary?.count ?? 0) >= limits!.maxMessagesPerUser ? 'messages' : 'bytes');
    }
    // An expired message TTL has not removed yet is removed first (below), so that its removal
    // reaches `expire` (watchers, negative-delivery IMDN): only a stale tombstone is overwritten.
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await this.client.send(
          new PutCommand({
            TableName: this.tableName,
            Item: itemOfMessage(message),
            ConditionExpression: 'attribute_not_exists(#sk) OR (#exp <= :now AND attribute_not_exists(#arrival))',
            ExpressionAttributeNames: { '#sk': 'sk', '#exp': 'expiresAt', '#arrival': 'arrival' },
            ExpressionAttributeValues: { ':now': nowSec },
          }),
        );
        return { created: true, message };
      } catch (err) {
        if (!isConditionFailed(err)) {
          await this.uncount(message.user, { messages: 1, bytes }).catch(() => undefined);
          throw err;
        }
      }
      const existing = await this.getItem(message.user, sk);
      if (!existing) continue;
      if (Number(existing.expiresAt) > nowSec) {
        await this.uncount(message.user, { messages: 1, bytes });
        return this.duplicate(message, existing);
      }
      if (existing.arrival !== undefined) await this.removeExpired(message.user, sk, Number(existing.expiresAt));
    }
    await this.uncount(message.user, { messages: 1, bytes });
    throw new Error(`deposit for ${message.user} could not take its key`);
  }

  /**
   * The first deposit's identity wins; a tombstone means delivered or deleted since, and a late
   * duplicate must not bring it back.
   */
  private duplicate(message: DeferredMessage, existing: Item): { created: false; message: DeferredMessage } {
    return {
      created: false,
      message:
        existing.arrival !== undefined
          ? messageOfItem(existing)
          : { ...message, expiresAt: Number(existing.expiresAt) },
    };
  }

  /**
   * Add one message of `bytes` to the user's summary; with limits, only while the user is under
   * both caps (false when not: nothing written but the failed condition).
   */
  private async count1(user: string, bytes: number, limits: StoreLimits | undefined): Promise<boolean> {
    if (limits && bytes > limits.maxBytesPerUser) return false;
    try {
      const out = await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { user, sk: SUMMARY_SK },
          // `rev` counts the summary's changes: a reader can tell whether it sees this one.
          UpdateExpression: 'ADD #count :one, #bytes :bytes, #rev :one',
          ...(limits
            ? {
                // No arithmetic in a condition: the room left is computed here.
                ConditionExpression:
                  '(attribute_not_exists(#count) OR #count < :maxCount) AND ' +
                  '(attribute_not_exists(#bytes) OR #bytes <= :room)',
              }
            : {}),
          ExpressionAttributeNames: { '#count': 'count', '#bytes': 'bytes', '#rev': 'rev' },
          ReturnValues: 'UPDATED_NEW',
          ExpressionAttributeValues: {
            ':one': 1,
            ':bytes': bytes,
            ...(limits ? { ':maxCount': limits.maxMessagesPerUser, ':room': limits.maxBytesPerUser - bytes } : {}),
          },
        }),
      );
      this.revisions.note(user, Number(out.Attributes?.rev));
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
  }

  /**
   * Remove a message that expired before TTL did: a REMOVE on the table's stream like TTL's,
   * so `expire` takes it off the count and tells its watchers and sender.
   */
  private async removeExpired(user: string, sk: string, expiresAt: number): Promise<void> {
    try {
      await this.client.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: { user, sk },
          ConditionExpression: '#exp = :exp AND attribute_exists(#arrival)',
          ExpressionAttributeNames: { '#exp': 'expiresAt', '#arrival': 'arrival' },
          ExpressionAttributeValues: { ':exp': expiresAt },
        }),
      );
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
  }

  /**
   * The user's unexpired entries, oldest first, from the payload-free `byArrival` projection;
   * strongly consistent, so a NOTIFY right after a deposit lists it.
   */
  private arrivalQuery(user: string, now: number) {
    return {
      TableName: this.tableName,
      IndexName: ARRIVAL_INDEX,
      KeyConditionExpression: '#user = :user',
      FilterExpression: '#exp > :now',
      ExpressionAttributeNames: { '#user': 'user', '#exp': 'expiresAt' },
      ExpressionAttributeValues: { ':user': user, ':now': now },
      Select: 'ALL_PROJECTED_ATTRIBUTES' as const,
      ScanIndexForward: true,
      ConsistentRead: true,
    };
  }

  async list(user: string, now: number, limit?: number): Promise<DeferredMessageEntry[]> {
    if (limit !== undefined && limit <= 0) return [];
    // `Limit` bounds what one page reads (and bills): the entries shown, not the mailbox.
    const pageLimit = Math.min(this.options.pageSize ?? Number.POSITIVE_INFINITY, limit ?? Number.POSITIVE_INFINITY);
    const items = await queryItems(
      this.client,
      {
        ...this.arrivalQuery(user, now),
        ...(Number.isFinite(pageLimit) ? { Limit: pageLimit } : {}),
      },
      limit,
    );
    return items.map(entryOfItem);
  }

  async count(user: string, _now: number, seen?: number): Promise<number> {
    const read = async (consistent: boolean) =>
      (
        await this.client.send(
          new GetCommand({ TableName: this.tableName, Key: { user, sk: SUMMARY_SK }, ConsistentRead: consistent }),
        )
      ).Item;
    // Eventually consistent when the caller names the change it must see (half the units);
    // strongly consistent when that replica had not seen it yet, or nothing was named.
    let summary = seen !== undefined ? await read(false) : undefined;
    if (seen === undefined || Number(summary?.rev ?? 0) < seen) summary = await read(true);
    return Math.max(0, Number(summary?.count ?? 0));
  }

  async get(user: string, id: string, now: number): Promise<DeferredMessage | undefined> {
    const message = await this.getByKey(user, messageSortKey({ id }));
    return message && message.expiresAt > now ? message : undefined;
  }

  /**
   * Eventually consistent first (half the read units): an entry it returns is live, or was a
   * moment ago, which is all an INVITE needs (the claim and the delete that act on it are
   * conditional, strongly consistent writes). An id it does not return as live may have been
   * deposited a moment ago, so those are read again strongly consistent: a message stored
   * before the call is never missed.
   */
  async getMany(user: string, ids: readonly string[], now: number): Promise<DeferredMessageEntry[]> {
    const unique = [...new Set(ids)];
    const found = await this.batchGet(user, unique, now, false);
    const seen = new Set(found.map((e) => e.id));
    const missing = unique.filter((id) => !seen.has(id));
    return missing.length === 0 ? found : [...found, ...(await this.batchGet(user, missing, now, true))];
  }

  /** The live entries among `ids`, in BatchGetItem rounds of at most 100 keys. */
  private async batchGet(
    user: string,
    ids: readonly string[],
    now: number,
    consistent: boolean,
  ): Promise<DeferredMessageEntry[]> {
    const out: DeferredMessageEntry[] = [];
    for (let i = 0; i < ids.length; i += BATCH_GET_MAX) {
      let keys: Item[] = ids.slice(i, i + BATCH_GET_MAX).map((id) => ({ user, sk: messageSortKey({ id }) }));
      for (let round = 0; keys.length > 0; round++) {
        if (round >= UNPROCESSED_ROUNDS) throw new Error(`BatchGetItem left ${keys.length} keys unprocessed`);
        if (round > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 25 * 2 ** round)));
        const page = await this.client.send(
          new BatchGetCommand({
            RequestItems: {
              [this.tableName]: {
                Keys: keys,
                ConsistentRead: consistent,
                // Read units are billed on the whole item; this only keeps payloads off the wire.
                ProjectionExpression: ENTRY_PROJECTION.expression,
                ExpressionAttributeNames: ENTRY_PROJECTION.names,
              },
            },
          }),
        );
        for (const item of page.Responses?.[this.tableName] ?? []) {
          // A tombstone (delivered or deleted) has no `arrival`.
          if (item.arrival !== undefined && Number(item.expiresAt) > now) out.push(entryOfItem(item));
        }
        keys = (page.UnprocessedKeys?.[this.tableName]?.Keys as Item[] | undefined) ?? [];
      }
    }
    return out;
  }

  async claimMany(
    user: string,
    ids: readonly string[],
    holder: string,
    nowSec: number,
    leaseSeconds: number,
  ): Promise<DeferredMessage[]> {
    // One conditional UpdateItem per id, side by side: each claim stands alone (a transaction
    // would be all or nothing, and DynamoDB has no batched conditional update).
    const taken = await eachInParallel([...new Set(ids)], (id) =>
      this.claimOne(user, id, holder, nowSec, leaseSeconds),
    );
    return taken.filter((m) => m !== undefined);
  }

  private async claimOne(
    user: string,
    id: string,
    holder: string,
    nowSec: number,
    leaseSeconds: number,
  ): Promise<DeferredMessage | undefined> {
    try {
      const out = await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { user, sk: messageSortKey({ id }) },
          // The lease attributes are in no index: the claim writes the message item only.
          UpdateExpression: 'SET #holder = :holder, #lease = :until',
          ConditionExpression:
            'attribute_exists(#arrival) AND #exp > :now AND ' +
            '(attribute_not_exists(#lease) OR #lease < :now OR #holder = :holder)',
          ExpressionAttributeNames: {
            '#arrival': 'arrival',
            '#exp': 'expiresAt',
            '#lease': 'leaseUntil',
            '#holder': 'leaseHolder',
          },
          ExpressionAttributeValues: { ':now': nowSec, ':until': nowSec + leaseSeconds, ':holder': holder },
          // The claim returns the message: no separate read before the transfer.
          ReturnValues: 'ALL_NEW',
        }),
      );
      return out.Attributes ? messageOfItem(out.Attributes) : undefined;
    } catch (err) {
      if (isConditionFailed(err)) return undefined;
      throw err;
    }
  }

  async releaseMany(user: string, ids: readonly string[], holder: string): Promise<string[]> {
    const wanted = [...new Set(ids)];
    const released = await eachInParallel(wanted, (id) => this.releaseOne(user, id, holder));
    return wanted.filter((_, i) => released[i]);
  }

  private async releaseOne(user: string, id: string, holder: string): Promise<boolean> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { user, sk: messageSortKey({ id }) },
          UpdateExpression: 'REMOVE #lease, #holder',
          ConditionExpression: '#holder = :holder',
          ExpressionAttributeNames: { '#lease': 'leaseUntil', '#holder': 'leaseHolder' },
          ExpressionAttributeValues: { ':holder': holder },
        }),
      );
      return true;
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
      return false;
    }
  }

  async deleteMany(user: string, ids: readonly string[]): Promise<string[]> {
    const wanted = [...new Set(ids)];
    const bytes = await eachInParallel(wanted, (id) => this.removeOne(user, id));
    const removed: Removed = { messages: 0, bytes: 0 };
    for (const b of bytes) {
      if (b === undefined) continue;
      removed.messages++;
      removed.bytes += b;
    }
    // One summary update for them all (a crash before it: the count stays high until a recount).
    await this.uncount(user, removed);
    return wanted.filter((_, i) => bytes[i] !== undefined);
  }

  /** Tombstone one message: the bytes its payload held, or undefined when it was not there. */
  private async removeOne(user: string, id: string): Promise<number | undefined> {
    // The item stays as a tombstone until its expiry (TTL): its key is the deposit's duplicate
    // check, so a late copy of a delivered message is not stored again. Removing `arrival`
    // takes it out of the list index; the payload and entry attributes go with it.
    try {
      const out = await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { user, sk: messageSortKey({ id }) },
          UpdateExpression: `REMOVE ${TOMBSTONE_DROPPED.map((_, i) => `#d${i}`).join(', ')}`,
          ConditionExpression: 'attribute_exists(#d0)',
          ExpressionAttributeNames: Object.fromEntries(TOMBSTONE_DROPPED.map((name, i) => [`#d${i}`, name])),
          // The payload removed says how many bytes leave the summary: no read before.
          ReturnValues: 'UPDATED_OLD',
        }),
      );
      return asBytes(out.Attributes?.cpim).byteLength;
    } catch (err) {
      if (isConditionFailed(err)) return undefined;
      throw err;
    }
  }

  async uncount(user: string, removed: Removed): Promise<void> {
    if (removed.messages > 0 || removed.bytes > 0) {
      this.revisions.note(user, await uncountRemoved(this.client, this.tableName, user, removed));
    }
  }

  /**
   * Nothing: in AWS messages expire by TTL only, and the table's stream hands each removal to
   * `expire` (no expiry index to write on every deposit and delivery, docs/architecture.md).
   */
  async listExpired(_now: number, _limit: number): Promise<DeferredMessage[]> {
    return [];
  }

  async listPage(user: string, now: number, page: { limit: number; cursor?: string }): Promise<MessagePage> {
    if (page.limit <= 0) return { messages: [] };
    // The cursor is the last returned entry's index key (sk, arrival): the next page starts after it.
    let start: Item | undefined;
    if (page.cursor !== undefined) {
      let keys: unknown;
      try {
        keys = JSON.parse(Buffer.from(page.cursor, 'base64url').toString('utf8'));
      } catch {
        keys = undefined;
      }
      if (!Array.isArray(keys) || keys.length !== 2 || !keys.every((k) => typeof k === 'string')) {
        throw new RangeError('cursor: not one this list returned');
      }
      start = { user, sk: keys[0], arrival: keys[1] };
    }
    const items = await queryItems(
      this.client,
      {
        ...this.arrivalQuery(user, now),
        ...(this.options.pageSize !== undefined ? { Limit: this.options.pageSize } : {}),
        ...(start ? { ExclusiveStartKey: start } : {}),
      },
      page.limit + 1,
    );
    const kept = items.slice(0, page.limit);
    const last = kept[kept.length - 1];
    const messages = kept.map(entryOfItem);
    return items.length > page.limit && last
      ? { messages, cursor: Buffer.from(JSON.stringify([last.sk, last.arrival]), 'utf8').toString('base64url') }
      : { messages };
  }

  /**
   * From the users' summary items (a Scan that reads the whole table: an operator's request,
   * never on a handler's path). Counts messages TTL has not removed yet, expired or not.
   */
  async stats(_now: number): Promise<{ pending: number; users: number }> {
    let pending = 0;
    let users = 0;
    let start: Item | undefined;
    do {
      const page = await this.client.send(
        new ScanCommand({
          TableName: this.tableName,
          FilterExpression: '#sk = :summary AND #count > :zero',
          ProjectionExpression: '#count',
          ExpressionAttributeNames: { '#sk': 'sk', '#count': 'count' },
          ExpressionAttributeValues: { ':summary': SUMMARY_SK, ':zero': 0 },
          ExclusiveStartKey: start,
          ...(this.options.pageSize !== undefined ? { Limit: this.options.pageSize } : {}),
        }),
      );
      for (const item of page.Items ?? []) {
        pending += Number(item.count);
        users++;
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return { pending, users };
  }

  private async getItem(user: string, sk: string): Promise<Item | undefined> {
    const out = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: { user, sk }, ConsistentRead: true }),
    );
    return out.Item;
  }

  private async getByKey(user: string, sk: string): Promise<DeferredMessage | undefined> {
    const item = await this.getItem(user, sk);
    return item?.arrival !== undefined ? messageOfItem(item) : undefined;
  }
}
/** The stored item of a message: `id`, `arrivedAt` and a `to` equal to the user live in the keys only. */
function itemOfMessage(message: DeferredMessage): Item {
  const { id, arrivedAt, to, ...rest } = message;
  return withoutUndefined({
    ...rest,
    ...(to === message.user ? {} : { to }),
    sk: messageSortKey({ id }),
    arrival: arrivalKey({ arrivedAt, id }),
  });
}

/** The fields kept in the keys, back from an item (or an index entry). */
function keyFields(item: Item): Pick<DeferredMessage, 'id' | 'arrivedAt' | 'to'> {
  const id = String(item.sk).slice(MESSAGE_PREFIX.length);
  const arrival = String(item.arrival);
  return {
    id,
    arrivedAt: arrival.slice(0, arrival.length - id.length - 1),
    to: typeof item.to === 'string' ? item.to : String(item.user),
  };
}

function entryOfItem(item: Item): DeferredMessageEntry {
  const rest = omit(item, [...MESSAGE_STORAGE_KEYS, 'cpim']) as unknown as DeferredMessageEntry;
  return { ...rest, ...keyFields(item) };
}

/**
 * Take messages TTL removed (not through `delete`) off the user's summary count: the expire
 * function calls this for the removals its stream hands it. Returns the summary's revision.
 */
export async function uncountRemoved(
  client: DynamoDBDocumentClient,
  tableName: string,
  user: string,
  removed: Removed,
): Promise<number> {
  const out = await client.send(
    new UpdateCommand({
      TableName: tableName,
      Key: { user, sk: SUMMARY_SK },
      UpdateExpression: 'ADD #count :messages, #bytes :bytes, #rev :one',
      ExpressionAttributeNames: { '#count': 'count', '#bytes': 'bytes', '#rev': 'rev' },
      ExpressionAttributeValues: { ':messages': -removed.messages, ':bytes': -removed.bytes, ':one': 1 },
      ReturnValues: 'UPDATED_NEW',
    }),
  );
  return Number(out.Attributes?.rev);
}

/** A message from its stored item (also from a stream's old image); undefined for other items. */
export function messageOfStoredItem(item: Item): DeferredMessage | undefined {
  return String(item.sk ?? '').startsWith(MESSAGE_PREFIX) && item.arrival !== undefined
    ? messageOfItem(item)
    : undefined;
}

function messageOfItem(item: Item): DeferredMessage {
  const rest = omit(item, MESSAGE_STORAGE_KEYS) as unknown as DeferredMessage;
  return { ...rest, ...keyFields(item), cpim: asBytes(item.cpim) };
}
