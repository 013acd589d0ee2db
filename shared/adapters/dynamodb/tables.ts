/**
 * The DynamoDB tables as data. The local stack creates them from this and the CDK app builds
 * its constructs from the same objects, so the two cannot drift (docs/architecture.md "Data").
 *
 * Every item carries `expiresAt` (epoch seconds): the TTL attribute in AWS, and a filter on
 * every read here because TTL deletes late (up to days).
 */
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';

export type KeyType = 'S' | 'N' | 'B';

export interface KeyAttribute {
  name: string;
  /** DynamoDB scalar type; CDK's `AttributeType` enum uses the same letters. */
  type: KeyType;
}

export interface IndexSpec {
  indexName: string;
  /** Omitted for a local secondary index, which shares the table's partition key. */
  partitionKey?: KeyAttribute;
  sortKey: KeyAttribute;
  projection: 'ALL' | 'KEYS_ONLY';
}

export interface TableSpec {
  /** The table's name in the local default (and the base of its name elsewhere). */
  name: string;
  partitionKey: KeyAttribute;
  sortKey?: KeyAttribute;
  globalIndexes: IndexSpec[];
  localIndexes: IndexSpec[];
  /** TTL attribute, epoch seconds. */
  ttlAttribute: 'expiresAt';
}

/** TTL attribute shared by every table. */
export const TTL_ATTRIBUTE = 'expiresAt';

/**
 * Items spread over this many values of `expiryShard`, the partition key of the expiry index,
 * so the index has no single hot partition; the sweep queries every shard.
 */
export const EXPIRY_SHARDS = 4;

export const EXPIRY_INDEX = 'byExpiry';
export const MESSAGE_ID_INDEX = 'byId';

/**
 * Deferred messages. Two kinds of item share a user's partition:
 * - the message: sk = `${arrivedAt}#${id}` (ISO-8601, so it starts with a digit and sorts
 *   oldest first);
 * - its dedupe record: sk = `dedupe#…` keyed by sender and imdn.Message-ID (idempotent deposit).
 * Only messages carry `id` and `expiryShard`, so both indexes are sparse and hold messages only.
 */
export const MESSAGES_TABLE: TableSpec = {
  name: 'deferred-messages',
  partitionKey: { name: 'user', type: 'S' },
  sortKey: { name: 'sk', type: 'S' },
  localIndexes: [
    // A message by its list handle, strongly consistent (LSIs allow ConsistentRead).
    { indexName: MESSAGE_ID_INDEX, sortKey: { name: 'id', type: 'S' }, projection: 'KEYS_ONLY' },
  ],
  globalIndexes: [
    // The local sweep (AWS expires with TTL). Keys only: the payload is not copied.
    {
      indexName: EXPIRY_INDEX,
      partitionKey: { name: 'expiryShard', type: 'N' },
      sortKey: { name: 'expiresAt', type: 'N' },
      projection: 'KEYS_ONLY',
    },
  ],
  ttlAttribute: TTL_ATTRIBUTE,
};

/** Subscriptions: one item per dialog, counters (version, localCSeq) at top level for ADD. */
export const SUBSCRIPTIONS_TABLE: TableSpec = {
  name: 'subscriptions',
  partitionKey: { name: 'user', type: 'S' },
  sortKey: { name: 'dialogId', type: 'S' },
  localIndexes: [],
  globalIndexes: [
    {
      indexName: EXPIRY_INDEX,
      partitionKey: { name: 'expiryShard', type: 'N' },
      sortKey: { name: 'expiresAt', type: 'N' },
      projection: 'ALL',
    },
  ],
  ttlAttribute: TTL_ATTRIBUTE,
};

/** Delivery sessions: one item per MSRP session. */
export const SESSIONS_TABLE: TableSpec = {
  name: 'delivery-sessions',
  partitionKey: { name: 'sessionId', type: 'S' },
  localIndexes: [],
  globalIndexes: [],
  ttlAttribute: TTL_ATTRIBUTE,
};

export const TABLE_SPECS = {
  messages: MESSAGES_TABLE,
  subscriptions: SUBSCRIPTIONS_TABLE,
  sessions: SESSIONS_TABLE,
} as const;

export type TableRole = keyof typeof TABLE_SPECS;

/** The physical table name of each role. */
export type TableNames = Record<TableRole, string>;

/** Default names, optionally prefixed (tests and side-by-side stacks). */
export function defaultTableNames(prefix = ''): TableNames {
  return {
    messages: prefix + MESSAGES_TABLE.name,
    subscriptions: prefix + SUBSCRIPTIONS_TABLE.name,
    sessions: prefix + SESSIONS_TABLE.name,
  };
}

/** CreateTable input for a spec: on-demand billing, as in AWS. */
export function createTableInput(spec: TableSpec, tableName: string = spec.name): CreateTableCommandInput {
  const attributes = new Map<string, KeyType>();
  const note = (k: KeyAttribute | undefined) => {
    if (k) attributes.set(k.name, k.type);
  };
  note(spec.partitionKey);
  note(spec.sortKey);
  for (const index of [...spec.globalIndexes, ...spec.localIndexes]) {
    note(index.partitionKey);
    note(index.sortKey);
  }
  const keySchema = (pk: KeyAttribute, sk?: KeyAttribute) => [
    { AttributeName: pk.name, KeyType: 'HASH' as const },
    ...(sk ? [{ AttributeName: sk.name, KeyType: 'RANGE' as const }] : []),
  ];
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [...attributes].map(([AttributeName, AttributeType]) => ({ AttributeName, AttributeType })),
    KeySchema: keySchema(spec.partitionKey, spec.sortKey),
    ...(spec.globalIndexes.length > 0
      ? {
          GlobalSecondaryIndexes: spec.globalIndexes.map((index) => ({
            IndexName: index.indexName,
            KeySchema: keySchema(index.partitionKey ?? spec.partitionKey, index.sortKey),
            Projection: { ProjectionType: index.projection },
          })),
        }
      : {}),
    ...(spec.localIndexes.length > 0
      ? {
          LocalSecondaryIndexes: spec.localIndexes.map((index) => ({
            IndexName: index.indexName,
            KeySchema: keySchema(spec.partitionKey, index.sortKey),
            Projection: { ProjectionType: index.projection },
          })),
        }
      : {}),
  };
}
