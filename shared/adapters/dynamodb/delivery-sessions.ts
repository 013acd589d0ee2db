/**
 * DeliverySessionStore over DynamoDB: one item per MSRP session id. The dialog's CSeq counter
 * sits at the top level so BYE takes it with one UpdateItem ADD (RFC 3261 §12.2.1.1); a delivery
 * attempt takes the session with a lease (`claim`), one conditional UpdateItem.
 */
import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import type { DeliverySession } from '#shared/deferred/model.ts';
import type { DeliverySessionStore } from '#shared/ports.ts';
import { isConditionFailed, withoutUndefined, type Item } from './items.ts';

export interface SessionStoreOptions {
  /** Epoch milliseconds; reads hide sessions past `expiresAt` (TTL deletes late). */
  now?: () => number;
}

export class DynamoDeliverySessionStore implements DeliverySessionStore {
  private readonly now: () => number;

  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    options: SessionStoreOptions = {},
  ) {
    this.now = options.now ?? Date.now;
  }

  async put(session: DeliverySession): Promise<void> {
    const { localCSeq, ...dialog } = session.dialog;
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: withoutUndefined({ ...session, dialog, localCSeq }),
      }),
    );
  }

  async get(sessionId: string): Promise<DeliverySession | undefined> {
    const out = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: { sessionId }, ConsistentRead: true }),
    );
    if (!out.Item) return undefined;
    const session = sessionOfItem(out.Item);
    return session.expiresAt > Math.floor(this.now() / 1000) ? session : undefined;
  }

  async update(sessionId: string, patch: Partial<Pick<DeliverySession, 'state' | 'retrieve'>>): Promise<void> {
    const sets: string[] = [];
    const names: Record<string, string> = { '#sessionId': 'sessionId' };
    const values: Record<string, unknown> = {};
    if (patch.state !== undefined) {
      sets.push('#state = :state');
      names['#state'] = 'state';
      values[':state'] = patch.state;
    }
    if (patch.retrieve !== undefined) {
      sets.push('#retrieve = :retrieve');
      names['#retrieve'] = 'retrieve';
      values[':retrieve'] = patch.retrieve;
    }
    if (sets.length === 0) return;
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { sessionId },
          UpdateExpression: `SET ${sets.join(', ')}`,
          // An update must not resurrect a removed session as a bare item.
          ConditionExpression: 'attribute_exists(#sessionId)',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
  }

  async claim(sessionId: string, nowSec: number, leaseSeconds: number): Promise<boolean> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { sessionId },
          UpdateExpression: 'SET #state = :delivering, #lease = :until',
          // One conditional write decides between racing attempts. A 'delivering' item without
          // a lease predates leases: treat it as lapsed. Expired items count as gone (as in get).
          ConditionExpression:
            'attribute_exists(#sessionId) AND #expiresAt > :now AND (#state = :waiting OR ' +
            '(#state = :delivering AND (attribute_not_exists(#lease) OR #lease < :now)))',
          ExpressionAttributeNames: {
            '#sessionId': 'sessionId',
            '#state': 'state',
            '#lease': 'leaseUntil',
            '#expiresAt': 'expiresAt',
          },
          ExpressionAttributeValues: {
            ':waiting': 'waiting',
            ':delivering': 'delivering',
            ':now': nowSec,
            ':until': nowSec + leaseSeconds,
          },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
  }

  async release(sessionId: string, leaseUntil: number): Promise<void> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { sessionId },
          UpdateExpression: 'SET #state = :waiting REMOVE #lease',
          // Only our own lease: an attempt that took over after it lapsed keeps the session.
          ConditionExpression: '#state = :delivering AND #lease = :mine',
          ExpressionAttributeNames: { '#state': 'state', '#lease': 'leaseUntil' },
          ExpressionAttributeValues: { ':waiting': 'waiting', ':delivering': 'delivering', ':mine': leaseUntil },
        }),
      );
    } catch (err) {
      if (!isConditionFailed(err)) throw err;
    }
  }

  async nextCSeq(sessionId: string): Promise<number | undefined> {
    try {
      const out = await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { sessionId },
          UpdateExpression: 'ADD #cseq :one',
          ConditionExpression: 'attribute_exists(#sessionId)',
          ExpressionAttributeNames: { '#cseq': 'localCSeq', '#sessionId': 'sessionId' },
          ExpressionAttributeValues: { ':one': 1 },
          ReturnValues: 'UPDATED_NEW',
        }),
      );
      return Number(out.Attributes?.localCSeq);
    } catch (err) {
      if (isConditionFailed(err)) return undefined;
      throw err;
    }
  }

  async begin(session: DeliverySession, nowSec: number, leaseSeconds: number): Promise<number | undefined> {
    if (session.expiresAt <= nowSec) return undefined;
    const { localCSeq, ...dialog } = session.dialog;
    const { leaseUntil: _lease, ...rest } = session;
    // One UpdateItem stores the job's session when absent, or takes the stored one: `if_not_exists`
    // keeps a stored CSeq counting up, the condition is `claim`'s.
    const fields = { ...withoutUndefined(rest), dialog: withoutUndefined(dialog) } as Item;
    delete fields.sessionId;
    delete fields.state;
    const names = Object.keys(fields);
    try {
      const out = await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { sessionId: session.sessionId },
          UpdateExpression:
            'SET #state = :delivering, #lease = :until, #cseq = if_not_exists(#cseq, :base) + :one, ' +
            names.map((_, i) => `#f${i} = if_not_exists(#f${i}, :f${i})`).join(', '),
          ConditionExpression:
            'attribute_not_exists(#sessionId) OR #state = :waiting OR ' +
            '(#state = :delivering AND (attribute_not_exists(#lease) OR #lease < :now))',
          ExpressionAttributeNames: {
            '#sessionId': 'sessionId',
            '#state': 'state',
            '#lease': 'leaseUntil',
            '#cseq': 'localCSeq',
            ...Object.fromEntries(names.map((name, i) => [`#f${i}`, name])),
          },
          ExpressionAttributeValues: {
            ':delivering': 'delivering',
            ':waiting': 'waiting',
            ':now': nowSec,
            ':until': nowSec + leaseSeconds,
            ':base': localCSeq,
            ':one': 1,
            ...Object.fromEntries(names.map((name, i) => [`:f${i}`, fields[name]])),
          },
          ReturnValues: 'UPDATED_NEW',
        }),
      );
      return Number(out.Attributes?.localCSeq);
    } catch (err) {
      if (isConditionFailed(err)) return undefined;
      throw err;
    }
  }

  async delete(sessionId: string): Promise<void> {
    await this.client.send(new DeleteCommand({ TableName: this.tableName, Key: { sessionId } }));
  }
}

function sessionOfItem(item: Item): DeliverySession {
  const { localCSeq, dialog, ...rest } = item as Item & { dialog: Omit<DeliverySession['dialog'], 'localCSeq'> };
  return {
    ...(rest as unknown as Omit<DeliverySession, 'dialog'>),
    dialog: { ...dialog, localCSeq: Number(localCSeq) },
  };
}
