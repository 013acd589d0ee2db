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
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import type { DeferredMessage, DeferredMessageEntry } from '#shared/deferred/model.ts';
import type { DeferredMessageStore, MessagePage } from '#shared/ports.ts';
import {
  asBytes,
  expiryShardOf,
  isConditionFailed,
  omit,
  queryItems,
  queryExpired,
  queryLive,
  withoutUndefined,
  type Item,
  type StoreOptions,
} from './items.ts';
import { ARRIVAL_INDEX, MESSAGE_ENTRY_ATTRIBUTES } from './tables.ts';

const DEDUPE_PREFIX = 'dedupe#';
const MESSAGE_PREFIX = 'm#';
/** The user's summary item: `count` of stored messages. */
const SUMMARY_SK = 'summary';
/** BatchGetItem takes at most 100 keys per request. */
const BATCH_GET_MAX = 100;
/** Rounds of BatchGetItem for keys DynamoDB left unprocessed (throttling) before giving up. */
const UNPROCESSED_ROUNDS = 8;

/** Storage-only attributes of a message item. */
const MESSAGE_STORAGE_KEYS = ['sk', 'expiryShard', 'arrival', 'leaseUntil', 'leaseHolder'] as const;

/** The sort key of a message item. */
export function messageSortKey(m: Pick<DeferredMessage, 'id'>): string {
  return MESSAGE_PREFIX + m.id;
}

/** The arrival index's sort key: oldest first, the id breaking ties. */
function arrivalKey(m: Pick<DeferredMessage, 'arrivedAt' | 'id'>): string {
  return `${m.arrivedAt}#${m.id}`;
}

/** JSON keeps (from, messageId) unambiguous whatever characters they hold. */
function dedupeSortKey(m: Pick<DeferredMessage, 'from' | 'messageId'>): string {
  return DEDUPE_PREFIX + JSON.stringify([m.from, m.messageId]);
}

interface DedupeItem {
  user: string;
  sk: string;
  storedId: string;
  storedArrivedAt: string;
  /** True once the message item was written. */
  stored: boolean;
  expiresAt: number;
}

/** What a BatchGetItem of entries reads back: the keys and the entry attributes. */
const ENTRY_READ = ['user', 'sk', 'arrival', ...MESSAGE_ENTRY_ATTRIBUTES];
/** `#a0, #a1, …` names for the entry attributes (several are reserved words: from, to, date, size). */
const ENTRY_PROJECTION = {
  expression: ENTRY_READ.map((_, i) => `#a${i}`).join(', '),
  names: Object.fromEntries(ENTRY_READ.map((name, i) => [`#a${i}`, name])),
};

export class DynamoDeferredMessageStore implements DeferredMessageStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly options: StoreOptions = {},
  ) {}

  async put(message: DeferredMessage): Promise<{ created: boolean; message: DeferredMessage }> {
    // The deposit's own clock: a claim that expired before this arrival counts as absent.
    const parsed = Date.parse(message.arrivedAt);
    const nowSec = Math.floor((Number.isNaN(parsed) ? Date.now() : parsed) / 1000);
    const claim: DedupeItem = {
      user: message.user,
      sk: dedupeSortKey(message),
      storedId: message.id,
      storedArrivedAt: message.arrivedAt,
      stored: false,
      expiresAt: message.expiresAt,
    };
    // A claim can vanish between the failed condition and the read (expiry): claim again.
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await this.client.send(
          new PutCommand({
            TableName: this.tableName,
            Item: claim,
            // An expired claim TTL has not removed yet counts as absent.
            ConditionExpression: 'attribute_not_exists(#sk) OR #exp <= :now',
            ExpressionAttributeNames: { '#sk': 'sk', '#exp': 'expiresAt' },
            ExpressionAttributeValues: { ':now': nowSec },
          }),
        );
        return await this.storeMessage(message, claim.sk);
      } catch (err) {
        if (!isConditionFailed(err)) throw err;
      }
      const existing = await this.getDedupe(message.user, claim.sk);
      if (!existing) continue;
      // The first deposit's identity wins: same id, same place in the list.
      const first: DeferredMessage = {
        ...message,
        id: existing.storedId,
        arrivedAt: existing.storedArrivedAt,
        expiresAt: existing.expiresAt,
      };
      const stored = await this.getByKey(message.user, messageSortKey(first));
      if (stored) return { created: false, message: stored };
      // Delivered or deleted since: a late duplicate must not bring it back.
      if (existing.stored) return { created: false, message: first };
      // The earlier attempt failed after claiming: finish its write.
      return await this.storeMessage(first, claim.sk);
    }
    throw new Error(`deposit for ${message.user} could not claim its dedupe key`);
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

  async count(user: string, _now: number): Promise<number> {
    const out = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: { user, sk: SUMMARY_SK }, ConsistentRead: true }),
    );
    return Math.max(0, Number(out.Item?.count ?? 0));
  }

  async get(user: string, id: string, now: number): Promise<DeferredMessage | undefined> {
    const message = await this.getByKey(user, messageSortKey({ id }));
    return message && message.expiresAt > now ? message : undefined;
  }

  async getMany(user: string, ids: readonly string[], now: number): Promise<DeferredMessageEntry[]> {
    const unique = [...new Set(ids)];
    const out: DeferredMessageEntry[] = [];
    for (let i = 0; i < unique.length; i += BATCH_GET_MAX) {
      let keys: Item[] = unique.slice(i, i + BATCH_GET_MAX).map((id) => ({ user, sk: messageSortKey({ id }) }));
      for (let round = 0; keys.length > 0; round++) {
        if (round >= UNPROCESSED_ROUNDS) throw new Error(`BatchGetItem left ${keys.length} keys unprocessed`);
        if (round > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 25 * 2 ** round)));
        const page = await this.client.send(
          new BatchGetCommand({
            RequestItems: {
              [this.tableName]: {
                Keys: keys,
                ConsistentRead: true,
                // Read units are billed on the whole item; this only keeps payloads off the wire.
                ProjectionExpression: ENTRY_PROJECTION.expression,
                ExpressionAttributeNames: ENTRY_PROJECTION.names,
              },
            },
          }),
        );
        for (const item of page.Responses?.[this.tableName] ?? []) {
          if (Number(item.expiresAt) > now) out.push(entryOfItem(item));
        }
        keys = (page.UnprocessedKeys?.[this.tableName]?.Keys as Item[] | undefined) ?? [];
      }
    }
    return out;
  }

  async claim(
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
            'attribute_exists(#sk) AND #exp > :now AND ' +
            '(attribute_not_exists(#lease) OR #lease < :now OR #holder = :holder)',
          ExpressionAttributeNames: {
            '#sk': 'sk',
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

  async release(user: string, id: string, holder: string): Promise<void> {
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
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
  }

  async delete(user: string, id: string): Promise<boolean> {
    try {
      await this.client.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: { user, sk: messageSortKey({ id }) },
          ConditionExpression: 'attribute_exists(#sk)',
          ExpressionAttributeNames: { '#sk': 'sk' },
        }),
      );
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
    await this.addToCount(user, -1);
    return true;
  }

  async listExpired(now: number, limit: number): Promise<DeferredMessage[]> {
    const keys = await queryExpired(this.client, this.tableName, now, limit, this.options.pageSize);
    // The index holds keys only; read each item (it may have gone meanwhile).
    const messages = await Promise.all(keys.map((k) => this.getByKey(String(k.user), String(k.sk))));
    return messages.filter((m): m is DeferredMessage => m !== undefined);
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

  async stats(now: number): Promise<{ pending: number; users: number }> {
    const keys = await queryLive(this.client, this.tableName, now, this.options.pageSize);
    return { pending: keys.length, users: new Set(keys.map((k) => String(k.user))).size };
  }

  /** Write the message item once, then mark its dedupe claim as stored. */
  private async storeMessage(
    message: DeferredMessage,
    dedupeSk: string,
  ): Promise<{ created: boolean; message: DeferredMessage }> {
    const sk = messageSortKey(message);
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: itemOfMessage(message),
          ConditionExpression: 'attribute_not_exists(#sk)',
          ExpressionAttributeNames: { '#sk': 'sk' },
        }),
      );
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
      // A concurrent duplicate finished the same write first.
      const stored = await this.getByKey(message.user, sk);
      return { created: false, message: stored ?? message };
    }
    await this.addToCount(message.user, 1);
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { user: message.user, sk: dedupeSk },
          UpdateExpression: 'SET #stored = :true',
          ConditionExpression: 'attribute_exists(#sk)',
          ExpressionAttributeNames: { '#stored': 'stored', '#sk': 'sk' },
          ExpressionAttributeValues: { ':true': true },
        }),
      );
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
    return { created: true, message };
  }

  /** Add to the user's summary count (one UpdateItem ADD: atomic, creates the item). */
  private async addToCount(user: string, delta: number): Promise<void> {
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: { user, sk: SUMMARY_SK },
        UpdateExpression: 'ADD #count :delta',
        ExpressionAttributeNames: { '#count': 'count' },
        ExpressionAttributeValues: { ':delta': delta },
      }),
    );
  }

  private async getDedupe(user: string, sk: string): Promise<DedupeItem | undefined> {
    const out = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: { user, sk }, ConsistentRead: true }),
    );
    return out.Item as DedupeItem | undefined;
  }

  private async getByKey(user: string, sk: string): Promise<DeferredMessage | undefined> {
    const out = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: { user, sk }, ConsistentRead: true }),
    );
    return out.Item ? messageOfItem(out.Item) : undefined;
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
    expiryShard: expiryShardOf(`${message.user}#${id}`),
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
 * function calls this for the removals its stream hands it.
 */
export async function uncountRemoved(
  client: DynamoDBDocumentClient,
  tableName: string,
  user: string,
  removed: number,
): Promise<void> {
  await client.send(
    new UpdateCommand({
      TableName: tableName,
      Key: { user, sk: SUMMARY_SK },
      UpdateExpression: 'ADD #count :delta',
      ExpressionAttributeNames: { '#count': 'count' },
      ExpressionAttributeValues: { ':delta': -removed },
    }),
  );
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
