/**
 * Helpers shared by the DynamoDB adapters: item hygiene, paginated queries, the conditional
 * failure check, the expiry shard.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { QueryCommand, type DynamoDBDocumentClient, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { EXPIRY_INDEX, EXPIRY_SHARDS } from './tables.ts';

export type Item = Record<string, unknown>;

/** Options common to the store classes. */
export interface StoreOptions {
  /** Query page size (DynamoDB's `Limit`); small values exercise pagination. Default: no limit (1 MB pages). */
  pageSize?: number;
}

/**
 * A deep copy without `undefined` values: DynamoDB cannot store them and the client we are given
 * may not be configured with `removeUndefinedValues`. Binary values pass through unchanged.
 */
export function withoutUndefined<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => withoutUndefined(v)) as T;
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return value;
  const out: Item = {};
  for (const [k, v] of Object.entries(value as Item)) {
    if (v !== undefined) out[k] = withoutUndefined(v);
  }
  return out as T;
}

/** A copy of `item` without the named attributes (storage-only keys). */
export function omit(item: Item, names: readonly string[]): Item {
  const out: Item = { ...item };
  for (const n of names) delete out[n];
  return out;
}

/** Binary attributes come back as Uint8Array; make sure callers get one. */
export function asBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value === 'string') return new Uint8Array(Buffer.from(value, 'base64'));
  return new Uint8Array(0);
}

/** True for the error of a failed ConditionExpression. */
export function isConditionFailed(err: unknown): boolean {
  return (
    err instanceof ConditionalCheckFailedException ||
    (typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'ConditionalCheckFailedException')
  );
}

/** A stable shard in [0, EXPIRY_SHARDS) for a key (FNV-1a). */
export function expiryShardOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % EXPIRY_SHARDS;
}

export const ALL_EXPIRY_SHARDS: readonly number[] = Array.from({ length: EXPIRY_SHARDS }, (_, i) => i);

/**
 * Run a query page by page until `want` items are collected or the pages run out. `Limit`
 * counts items read before the filter, so one page may hold fewer matches than asked for.
 */
export async function queryItems(
  client: DynamoDBDocumentClient,
  input: QueryCommandInput,
  want = Number.POSITIVE_INFINITY,
): Promise<Item[]> {
  const items: Item[] = [];
  // A caller's ExclusiveStartKey is where the first page begins (the operator list's cursor).
  let start: Item | undefined = input.ExclusiveStartKey;
  do {
    const page = await client.send(new QueryCommand({ ...input, ExclusiveStartKey: start }));
    for (const item of page.Items ?? []) {
      if (items.length >= want) break;
      items.push(item);
    }
    start = page.LastEvaluatedKey;
  } while (start && items.length < want);
  return items;
}

/** Count matching items with `Select: COUNT`, following every page. */
export async function countItems(client: DynamoDBDocumentClient, input: QueryCommandInput): Promise<number> {
  let total = 0;
  let start: Item | undefined;
  do {
    const page = await client.send(new QueryCommand({ ...input, Select: 'COUNT', ExclusiveStartKey: start }));
    total += page.Count ?? 0;
    start = page.LastEvaluatedKey;
  } while (start);
  return total;
}

/**
 * The items of a table expired at `now`, oldest expiry first, at most `limit`: one query per
 * expiry shard of the sparse expiry index (the shards spread the sweep's hot key).
 */
export async function queryExpired(
  client: DynamoDBDocumentClient,
  tableName: string,
  now: number,
  limit: number,
  pageSize: number | undefined,
): Promise<Item[]> {
  if (limit <= 0) return [];
  const perShard = await Promise.all(
    ALL_EXPIRY_SHARDS.map((shard) =>
      queryItems(
        client,
        {
          TableName: tableName,
          IndexName: EXPIRY_INDEX,
          KeyConditionExpression: '#shard = :shard AND #exp <= :now',
          ExpressionAttributeNames: { '#shard': 'expiryShard', '#exp': 'expiresAt' },
          ExpressionAttributeValues: { ':shard': shard, ':now': now },
          Limit: pageSize,
        },
        limit,
      ),
    ),
  );
  return perShard
    .flat()
    .sort((a, b) => Number(a.expiresAt) - Number(b.expiresAt))
    .slice(0, limit);
}

/**
 * The keys of a table's unexpired items at `now` (one query per expiry shard of the sparse
 * expiry index): the operator gauges' count, never on a handler's path.
 */
export async function queryLive(
  client: DynamoDBDocumentClient,
  tableName: string,
  now: number,
  pageSize: number | undefined,
): Promise<Item[]> {
  const perShard = await Promise.all(
    ALL_EXPIRY_SHARDS.map((shard) =>
      queryItems(client, {
        TableName: tableName,
        IndexName: EXPIRY_INDEX,
        KeyConditionExpression: '#shard = :shard AND #exp > :now',
        ExpressionAttributeNames: { '#shard': 'expiryShard', '#exp': 'expiresAt' },
        ExpressionAttributeValues: { ':shard': shard, ':now': now },
        Limit: pageSize,
      }),
    ),
  );
  return perShard.flat();
}
