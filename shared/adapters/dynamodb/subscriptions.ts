/**
 * SubscriptionStore over DynamoDB: partition = user, sort key = dialogId. The NOTIFY counters
 * (`version`, and the dialog's `localCSeq`) live at the top level of the item so one UpdateItem
 * ADD takes both atomically (RFC 3261 §12.2.1.1: CSeq strictly increases within a dialog). The
 * dialog's `remoteCSeq` is top-level too, so a refresh sets it with the expiry (§12.2.2).
 */
import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import type { Flow, Subscription } from '#shared/deferred/model.ts';
import { lastTurn, type NotifyTurn, type SubscriptionStore } from '#shared/ports.ts';
import {
  expiryShardOf,
  isConditionFailed,
  queryItems,
  queryExpired,
  queryLive,
  withoutUndefined,
  type Item,
  type StoreOptions,
} from './items.ts';

export class DynamoSubscriptionStore implements SubscriptionStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly options: StoreOptions = {},
  ) {}

  async put(sub: Subscription): Promise<void> {
    const { localCSeq, remoteCSeq, ...dialog } = sub.dialog;
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: withoutUndefined({
          user: sub.user,
          dialogId: sub.dialogId,
          dialog,
          localCSeq,
          remoteCSeq,
          version: sub.version,
          expiresAt: sub.expiresAt,
          state: sub.state,
          expiryShard: expiryShardOf(`${sub.user}#${sub.dialogId}`),
        }),
      }),
    );
  }

  async get(user: string, dialogId: string, now: number): Promise<Subscription | undefined> {
    const out = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: { user, dialogId }, ConsistentRead: true }),
    );
    if (!out.Item) return undefined;
    const sub = subscriptionOfItem(out.Item);
    return sub.expiresAt > now ? sub : undefined;
  }

  async listByUser(user: string, now: number): Promise<Subscription[]> {
    const items = await queryItems(this.client, {
      TableName: this.tableName,
      KeyConditionExpression: '#user = :user',
      FilterExpression: '#exp > :now AND #state = :active',
      ExpressionAttributeNames: { '#user': 'user', '#exp': 'expiresAt', '#state': 'state' },
      ExpressionAttributeValues: { ':user': user, ':now': now, ':active': 'active' },
      ConsistentRead: true,
      Limit: this.options.pageSize,
    });
    return items.map(subscriptionOfItem);
  }

  async delete(user: string, dialogId: string): Promise<void> {
    await this.client.send(new DeleteCommand({ TableName: this.tableName, Key: { user, dialogId } }));
  }

  async renew(user: string, dialogId: string, expiresAt: number, remoteCSeq?: number, flow?: Flow): Promise<boolean> {
    const withCSeq = remoteCSeq !== undefined;
    const sets = ['#exp = :exp', ...(withCSeq ? ['#rcseq = :rcseq'] : []), ...(flow ? ['#dialog.#flow = :flow'] : [])];
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { user, dialogId },
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: 'attribute_exists(#dialogId)',
          ExpressionAttributeNames: {
            '#exp': 'expiresAt',
            '#dialogId': 'dialogId',
            ...(withCSeq ? { '#rcseq': 'remoteCSeq' } : {}),
            ...(flow ? { '#dialog': 'dialog', '#flow': 'flow' } : {}),
          },
          ExpressionAttributeValues: {
            ':exp': expiresAt,
            ...(withCSeq ? { ':rcseq': remoteCSeq } : {}),
            ...(flow ? { ':flow': withoutUndefined({ ...flow }) } : {}),
          },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw err;
    }
  }

  async nextNotify(user: string, dialogId: string): Promise<NotifyTurn | undefined> {
    try {
      const out = await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { user, dialogId },
          UpdateExpression: 'ADD #version :one, #cseq :one',
          // Without the condition ADD would create a bare item for a removed subscription.
          ConditionExpression: 'attribute_exists(#dialogId)',
          ExpressionAttributeNames: { '#version': 'version', '#cseq': 'localCSeq', '#dialogId': 'dialogId' },
          ExpressionAttributeValues: { ':one': 1 },
          // The whole item back costs nothing more (a write is billed by the item's size).
          ReturnValues: 'ALL_NEW',
        }),
      );
      const subscription = subscriptionOfItem(out.Attributes!);
      // `version` counts NOTIFYs from 0 (protocol.md): the value before this increment is this NOTIFY's.
      return { cseq: subscription.dialog.localCSeq, version: subscription.version - 1, subscription };
    } catch (err) {
      if (isConditionFailed(err)) return undefined;
      throw err;
    }
  }

  async endNotify(user: string, dialogId: string): Promise<NotifyTurn | undefined> {
    const out = await this.client.send(
      new DeleteCommand({ TableName: this.tableName, Key: { user, dialogId }, ReturnValues: 'ALL_OLD' }),
    );
    return out.Attributes ? lastTurn(subscriptionOfItem(out.Attributes)) : undefined;
  }

  async listExpired(now: number, limit: number): Promise<Subscription[]> {
    // The index holds keys only (NOTIFY counter bumps write no index entry): read each item.
    const keys = await queryExpired(this.client, this.tableName, now, limit, this.options.pageSize);
    const items = await Promise.all(
      keys.map(async (k) => {
        const out = await this.client.send(
          new GetCommand({
            TableName: this.tableName,
            Key: { user: k.user, dialogId: k.dialogId },
            ConsistentRead: true,
          }),
        );
        return out.Item;
      }),
    );
    return items.filter((item): item is Item => item !== undefined).map(subscriptionOfItem);
  }

  async countActive(now: number): Promise<number> {
    return (await queryLive(this.client, this.tableName, now, this.options.pageSize)).length;
  }
}

function subscriptionOfItem(item: Item): Subscription {
  const dialog = item.dialog as Omit<Subscription['dialog'], 'localCSeq' | 'remoteCSeq'>;
  const counters =
    item.remoteCSeq === undefined
      ? { localCSeq: Number(item.localCSeq) }
      : { localCSeq: Number(item.localCSeq), remoteCSeq: Number(item.remoteCSeq) };
  return {
    user: String(item.user),
    dialogId: String(item.dialogId),
    dialog: { ...dialog, ...counters } as Subscription['dialog'],
    version: Number(item.version),
    expiresAt: Number(item.expiresAt),
    state: item.state as Subscription['state'],
  };
}
