/**
 * DeferredMessageStore over DynamoDB (docs/architecture.md "Data"): partition = served user, sort key =
 * `${arrivedAt}#${id}`, so a query reads a user's messages oldest first.
 *
 * Idempotent deposit without transactions (dynalite has none): a dedupe item keyed by sender and
 * imdn.Message-ID is claimed with a conditional put, then the message is written, then the claim
 * is marked `stored`. The claim names the message's id and arrival time, so a deposit retried
 * after a failure between the two writes finds the claim, sees the message missing and writes
 * it under the first attempt's key. A claim marked `stored` whose message is gone means it was
 * delivered or deleted: the duplicate is not stored again.
 */
import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import type { DeferredMessage } from '#shared/deferred/model.ts';
import type { DeferredMessageStore, MessagePage } from '#shared/ports.ts';
import {
  asBytes,
  countItems,
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
import { MESSAGE_ID_INDEX } from './tables.ts';

/**
 * Prefix of dedupe items' sort keys. Message sort keys start with an ISO-8601 year (a digit),
 * which sorts before `d`, so `sk < DEDUPE_PREFIX` selects exactly the messages.
 */
const DEDUPE_PREFIX = 'dedupe#';

/** Storage-only attributes of a message item. */
const MESSAGE_STORAGE_KEYS = ['sk', 'expiryShard'] as const;

export function messageSortKey(m: Pick<DeferredMessage, 'arrivedAt' | 'id'>): string {
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

const MESSAGES_ONLY = '#user = :user AND #sk < :dedupe';
const NAMES = { '#user': 'user', '#sk': 'sk' };

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

  async list(user: string, now: number, limit?: number): Promise<DeferredMessage[]> {
    if (limit !== undefined && limit <= 0) return [];
    const items = await queryItems(
      this.client,
      {
        TableName: this.tableName,
        KeyConditionExpression: MESSAGES_ONLY,
        FilterExpression: '#exp > :now',
        ExpressionAttributeNames: { ...NAMES, '#exp': 'expiresAt' },
        ExpressionAttributeValues: { ':user': user, ':dedupe': DEDUPE_PREFIX, ':now': now },
        ScanIndexForward: true,
        ConsistentRead: true,
        Limit: this.options.pageSize,
      },
      limit,
    );
    return items.map(messageOfItem);
  }

  async count(user: string, now: number): Promise<number> {
    return countItems(this.client, {
      TableName: this.tableName,
      KeyConditionExpression: MESSAGES_ONLY,
      FilterExpression: '#exp > :now',
      ExpressionAttributeNames: { ...NAMES, '#exp': 'expiresAt' },
      ExpressionAttributeValues: { ':user': user, ':dedupe': DEDUPE_PREFIX, ':now': now },
      ConsistentRead: true,
      Limit: this.options.pageSize,
    });
  }

  async get(user: string, id: string, now: number): Promise<DeferredMessage | undefined> {
    const sk = await this.sortKeyOf(user, id);
    if (sk === undefined) return undefined;
    const message = await this.getByKey(user, sk);
    return message && message.expiresAt > now ? message : undefined;
  }

  async delete(user: string, id: string): Promise<boolean> {
    const sk = await this.sortKeyOf(user, id);
    if (sk === undefined) return false;
    try {
      await this.client.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: { user, sk },
          ConditionExpression: 'attribute_exists(#sk)',
          ExpressionAttributeNames: { '#sk': 'sk' },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
  }

  async listExpired(now: number, limit: number): Promise<DeferredMessage[]> {
    const keys = await queryExpired(this.client, this.tableName, now, limit, this.options.pageSize);
    // The index holds keys only; read each item (it may have gone meanwhile).
    const messages = await Promise.all(keys.map((k) => this.getByKey(String(k.user), String(k.sk))));
    return messages.filter((m): m is DeferredMessage => m !== undefined);
  }

  async listPage(user: string, now: number, page: { limit: number; cursor?: string }): Promise<MessagePage> {
    if (page.limit <= 0) return { messages: [] };
    // The cursor is the last returned message's sort key: the next page starts after it.
    const after = page.cursor === undefined ? undefined : Buffer.from(page.cursor, 'base64url').toString('utf8');
    if (after !== undefined && !(after.length > 0 && after < DEDUPE_PREFIX && after.includes('#'))) {
      throw new RangeError('cursor: not one this list returned');
    }
    const items = await queryItems(
      this.client,
      {
        TableName: this.tableName,
        KeyConditionExpression: MESSAGES_ONLY,
        FilterExpression: '#exp > :now',
        ExpressionAttributeNames: { ...NAMES, '#exp': 'expiresAt' },
        ExpressionAttributeValues: { ':user': user, ':dedupe': DEDUPE_PREFIX, ':now': now },
        ScanIndexForward: true,
        ConsistentRead: true,
        Limit: this.options.pageSize,
        ...(after !== undefined ? { ExclusiveStartKey: { user, sk: after } } : {}),
      },
      page.limit + 1,
    );
    const messages = items.slice(0, page.limit).map(messageOfItem);
    const last = messages[messages.length - 1];
    return items.length > page.limit && last
      ? { messages, cursor: Buffer.from(messageSortKey(last), 'utf8').toString('base64url') }
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
          Item: withoutUndefined({ ...message, sk, expiryShard: expiryShardOf(`${message.user}#${message.id}`) }),
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

  /** The sort key of a message by its id, from the (strongly consistent) local index. */
  private async sortKeyOf(user: string, id: string): Promise<string | undefined> {
    const [hit] = await queryItems(
      this.client,
      {
        TableName: this.tableName,
        IndexName: MESSAGE_ID_INDEX,
        KeyConditionExpression: '#user = :user AND #id = :id',
        ExpressionAttributeNames: { '#user': 'user', '#id': 'id' },
        ExpressionAttributeValues: { ':user': user, ':id': id },
        ConsistentRead: true,
      },
      1,
    );
    return hit ? String(hit.sk) : undefined;
  }
}

function messageOfItem(item: Item): DeferredMessage {
  const rest = omit(item, MESSAGE_STORAGE_KEYS) as unknown as DeferredMessage;
  return { ...rest, cpim: asBytes(item.cpim) };
}
