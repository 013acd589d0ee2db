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
  /**
   * What the index copies. Never ALL on an index whose items hot counters update: DynamoDB
   * writes an index entry again whenever a projected attribute changes.
   */
  projection: 'ALL' | 'KEYS_ONLY' | 'INCLUDE';
  /** With INCLUDE: the non-key attributes copied. */
  nonKeyAttributes?: readonly string[];
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
/** The messages' list order (`arrival` = `${arrivedAt}#${id}`), with everything but the payload. */
export const ARRIVAL_INDEX = 'byArrival';

/**
 * The attributes of a message the list needs (DeferredMessageEntry: all but `cpim`), projected
 * into the arrival index. `user` and the keys come with every index entry; `id` and `arrivedAt`
 * are read from the keys (`sk`, `arrival`), not stored twice.
 */
export const MESSAGE_ENTRY_ATTRIBUTES = [
  'messageId',
  'from',
  'to',
  'date',
  'subject',
  'contentType',
  'size',
  'conversationId',
  'contributionId',
  'dispositionNotification',
  'expiresAt',
] as const;

/**
 * Deferred messages. Three kinds of item share a user's partition:
 * - the message: sk = `m#${id}`, so a message is one GetItem by its list handle and an INVITE's
 *   handles are one BatchGetItem (no index lookup per id). Nothing is stored twice (`id` is in
 *   `sk`, `arrivedAt` in `arrival`, `to` is left out when it is the user): a message with a
 *   500-byte body stays under 1 KB, one write unit per write instead of two;
   The id is derived from (user, sender, imdn.Message-ID) (`depositId`), so the message's own
 *   conditional put is the duplicate check; delivered or deleted, it stays as a tombstone (keys
 *   and `expiresAt` only) until TTL, so a late duplicate is not stored again;
 * - the user's summary: sk = `summary`, the message count as an atomic counter, so a count is
 *   one small read at any mailbox depth.
 * Only messages carry `arrival`, so the list index is sparse and holds live messages only.
 */
export const MESSAGES_TABLE: TableSpec = {
  name: 'deferred-messages',
  partitionKey: { name: 'user', type: 'S' },
  sortKey: { name: 'sk', type: 'S' },
  localIndexes: [
    // The list (NOTIFY, operator API): oldest first and without payloads, so a NOTIFY reads
    // ~200 bytes per entry it shows instead of whole messages. An LSI, not a GSI: it allows
    // strongly consistent reads (the NOTIFY right after a deposit must show it), and INCLUDE
    // rather than ALL keeps the payload out of it. `leaseUntil` is not projected: a delivery
    // claim writes the message only, not this index.
    {
      indexName: ARRIVAL_INDEX,
      sortKey: { name: 'arrival', type: 'S' },
      projection: 'INCLUDE',
      nonKeyAttributes: MESSAGE_ENTRY_ATTRIBUTES,
    },
  ],
  // No expiry index: messages expire by TTL only, and the table's stream hands each removal to
  // `expire`. An index here would be written on every deposit and every delivery (2 write
  // units per message) for a sweep TTL already does.
  globalIndexes: [],
  ttlAttribute: TTL_ATTRIBUTE,
};

/**
 * Subscriptions: one item per dialog, counters (version, localCSeq) at top level for ADD. The
 * expiry index is KEYS_ONLY: every NOTIFY bumps the counters, and with ALL each bump was
 * written to the index too (twice the write units per NOTIFY). The sweep reads the few expired
 * items by key instead.
 */
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
      projection: 'KEYS_ONLY',
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
            Projection: projectionOf(index),
          })),
        }
      : {}),
    ...(spec.localIndexes.length > 0
      ? {
          LocalSecondaryIndexes: spec.localIndexes.map((index) => ({
            IndexName: index.indexName,
            KeySchema: keySchema(spec.partitionKey, index.sortKey),
            Projection: projectionOf(index),
          })),
        }
      : {}),
  };
}

function projectionOf(index: IndexSpec): { ProjectionType: IndexSpec['projection']; NonKeyAttributes?: string[] } {
  return index.projection === 'INCLUDE'
    ? { ProjectionType: 'INCLUDE', NonKeyAttributes: [...(index.nonKeyAttributes ?? [])] }
    : { ProjectionType: index.projection };
}
