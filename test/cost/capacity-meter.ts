/**
 * Counts DynamoDB capacity units the way DynamoDB bills them, for requests made through a real
 * client (here: the DynamoDB adapters on dynalite). dynalite reports ConsumedCapacity for the
 * table only (no index writes, nothing for a failed condition), so the meter computes units from
 * the items themselves, read before and after each write through a client of its own:
 *
 * - item size: attribute name bytes + value bytes (string UTF-8, binary bytes, number about
 *   1 byte per 2 digits + 1, boolean/null 1, map/list 3 + 1 per element + contents);
 * - writes (PutItem, UpdateItem, DeleteItem): ceil(larger of old and new item / 1 KB), at
 *   least 1, also when the condition fails (DynamoDB charges a failed conditional write);
 * - each index whose entry appears, disappears or changes: ceil(entry / 1 KB) per entry
 *   written or deleted (a changed index key is a delete plus a put); an entry is the table's
 *   keys, the index keys and the projected attributes (ALL, INCLUDE list, or KEYS_ONLY);
 * - GetItem: ceil(item / 4 KB), at least 1, halved when eventually consistent;
 * - Query: ceil(sum of the entries returned / 4 KB), at least 1 per page, halved when
 *   eventually consistent (this flow filters nothing out, so returned = read);
 * - BatchGetItem: each key on its own, ceil(whole item / 4 KB) at least 1 (a ProjectionExpression
 *   does not lower it), halved when eventually consistent.
 */
import { GetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { TABLE_SPECS, type TableNames, type TableSpec } from '#shared/adapters/dynamodb/tables.ts';

type Item = Record<string, unknown>;

export interface Units {
  read: number;
  write: number;
  /** Requests by operation name, e.g. { PutItem: 3 }. */
  requests: Record<string, number>;
  /** Units by "operation table[/index]" (where they go). */
  breakdown: Record<string, number>;
}

function valueSize(v: unknown): number {
  if (v === null || v === undefined || typeof v === 'boolean') return 1;
  if (typeof v === 'string') return Buffer.byteLength(v, 'utf8');
  if (typeof v === 'number' || typeof v === 'bigint') {
    const digits = String(v).replace(/^-/, '').replace(/e.*$/i, '').replace('.', '').replace(/^0+/, '');
    return 1 + Math.ceil(Math.max(1, digits.length) / 2);
  }
  if (v instanceof Uint8Array) return v.length;
  if (v instanceof Set) return [...v].reduce((sum: number, x) => sum + valueSize(x), 0);
  if (Array.isArray(v)) return 3 + v.reduce((sum: number, x) => sum + 1 + valueSize(x), 0);
  if (typeof v === 'object') {
    const entries = Object.entries(v as Item);
    return 3 + entries.length + itemSize(v as Item);
  }
  return 0;
}

/** DynamoDB's item size in bytes. */
export function itemSize(item: Item): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) size += Buffer.byteLength(name, 'utf8') + valueSize(value);
  return size;
}

const KB = 1024;
const writeUnits = (bytes: number) => Math.max(1, Math.ceil(bytes / KB));
const readUnits = (bytes: number, consistent: boolean) =>
  Math.max(1, Math.ceil(bytes / (4 * KB))) * (consistent ? 1 : 0.5);

/** An item's entry in an index, or undefined when the item lacks an index key (sparse). */
function indexEntry(spec: TableSpec, index: TableSpec['globalIndexes'][number], item: Item | undefined) {
  if (!item) return undefined;
  const keyNames = [
    spec.partitionKey.name,
    ...(spec.sortKey ? [spec.sortKey.name] : []),
    (index.partitionKey ?? spec.partitionKey).name,
    index.sortKey.name,
  ];
  if (keyNames.some((k) => item[k] === undefined)) return undefined;
  const projected =
    index.projection === 'ALL'
      ? Object.keys(item)
      : [...keyNames, ...(index.projection === 'INCLUDE' ? (index.nonKeyAttributes ?? []) : [])];
  const entry: Item = {};
  for (const name of projected) if (item[name] !== undefined) entry[name] = item[name];
  return { entry, key: JSON.stringify(keyNames.map((k) => item[k])) };
}

/** Write units of the index entries a change from `before` to `after` writes. */
function indexWriteUnits(spec: TableSpec, before: Item | undefined, after: Item | undefined): number {
  let units = 0;
  for (const index of [...spec.globalIndexes, ...spec.localIndexes]) {
    const a = indexEntry(spec, index, before);
    const b = indexEntry(spec, index, after);
    if (!a && !b) continue;
    if (!a) units += writeUnits(itemSize(b!.entry));
    else if (!b) units += writeUnits(itemSize(a.entry));
    else if (a.key !== b.key) units += writeUnits(itemSize(a.entry)) + writeUnits(itemSize(b.entry));
    else if (JSON.stringify(a.entry) !== JSON.stringify(b.entry)) {
      units += writeUnits(Math.max(itemSize(a.entry), itemSize(b.entry)));
    }
  }
  return units;
}

const native = (m: Record<string, AttributeValue> | undefined): Item | undefined =>
  m ? (unmarshall(m) as Item) : undefined;

/**
 * Attach the meter to a client (its middleware stack is shared with the document client built
 * on it). `peek` is a client of its own on the same endpoint, for the reads the meter makes.
 */
export class CapacityMeter {
  private units: Units = { read: 0, write: 0, requests: {}, breakdown: {} };
  private readonly specByName: Map<string, TableSpec>;

  constructor(
    client: DynamoDBDocumentClient,
    private readonly peek: DynamoDBDocumentClient,
    tables: TableNames,
  ) {
    this.specByName = new Map(
      Object.entries(tables).map(([role, name]) => [name, TABLE_SPECS[role as keyof TableNames]]),
    );
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const operation = String((context as { commandName?: string }).commandName ?? '').replace(/Command$/, '');
        const input = args.input as Record<string, unknown>;
        this.units.requests[operation] = (this.units.requests[operation] ?? 0) + 1;
        if (operation === 'PutItem' || operation === 'UpdateItem' || operation === 'DeleteItem') {
          return this.metered(input, operation, () => next(args));
        }
        const result = await next(args);
        await this.countRead(operation, input, result.output as Record<string, unknown>);
        return result;
      },
      { step: 'build', name: 'capacityMeter' },
    );
  }

  /** Units and requests since the last reset. */
  take(): Units {
    const out = this.units;
    this.units = { read: 0, write: 0, requests: {}, breakdown: {} };
    return out;
  }

  private add(kind: 'read' | 'write', label: string, units: number): void {
    this.units[kind] += units;
    this.units.breakdown[label] = (this.units.breakdown[label] ?? 0) + units;
  }

  private async get(table: string, key: Item): Promise<Item | undefined> {
    const out = await this.peek.send(new GetCommand({ TableName: table, Key: key, ConsistentRead: true }));
    return out.Item as Item | undefined;
  }

  private async metered<T>(input: Record<string, unknown>, operation: string, send: () => Promise<T>): Promise<T> {
    const table = String(input.TableName);
    const spec = this.specByName.get(table)!;
    const key =
      operation === 'PutItem'
        ? keyOf(spec, native(input.Item as Record<string, AttributeValue>)!)
        : native(input.Key as Record<string, AttributeValue>)!;
    const before = await this.get(table, key);
    try {
      const result = await send();
      const after = await this.get(table, key);
      const sk = String(after?.sk ?? before?.sk ?? '').replace(/#.*$/, '#');
      this.add(
        'write',
        `${operation} ${spec.name} ${sk}`,
        writeUnits(Math.max(before ? itemSize(before) : 0, after ? itemSize(after) : 0)),
      );
      this.add('write', `${operation} ${spec.name} ${sk} indexes`, indexWriteUnits(spec, before, after));
      return result;
    } catch (err) {
      // A failed condition is billed like a write of the item as it stands.
      this.add('write', `${operation} ${spec.name} failed`, writeUnits(before ? itemSize(before) : 0));
      throw err;
    }
  }

  private async countRead(operation: string, input: Record<string, unknown>, output: Record<string, unknown>) {
    const consistent = input.ConsistentRead === true;
    if (operation === 'GetItem') {
      const item = output.Item as Item | undefined;
      this.add('read', `GetItem ${String(input.TableName)}`, readUnits(item ? itemSize(item) : 0, consistent));
    } else if (operation === 'Query') {
      const items = (output.Items as Item[] | undefined) ?? [];
      this.add(
        'read',
        `Query ${String(input.TableName)}/${String(input.IndexName ?? '')}`,
        readUnits(
          items.reduce((sum, item) => sum + itemSize(item), 0),
          consistent,
        ),
      );
    } else if (operation === 'BatchGetItem') {
      for (const [table, request] of Object.entries(input.RequestItems as Record<string, Record<string, unknown>>)) {
        const keys = (request.Keys as Record<string, AttributeValue>[]).map((k) => native(k)!);
        for (const key of keys) {
          const item = await this.get(table, key);
          this.add(
            'read',
            `BatchGetItem ${table}`,
            readUnits(item ? itemSize(item) : 0, request.ConsistentRead === true),
          );
        }
      }
    }
  }
}

function keyOf(spec: TableSpec, item: Item): Item {
  return {
    [spec.partitionKey.name]: item[spec.partitionKey.name],
    ...(spec.sortKey ? { [spec.sortKey.name]: item[spec.sortKey.name] } : {}),
  };
}
