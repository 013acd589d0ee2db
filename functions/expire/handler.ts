/**
 * Lambda entry of `expire` (protocol.md "Deposit", retention), fed two ways:
 * - every minute by an EventBridge schedule: the same sweep the local default runs (expired
 *   messages, then expired subscriptions with their final NOTIFY), plus the stored-item gauges;
 * - by the messages table's stream, filtered to TTL removals of messages: whatever TTL removed
 *   before a sweep saw it still gets its watchers' NOTIFY.
 */
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent, ScheduledEvent } from 'aws-lambda';
import type { DeferredMessage } from '#shared/deferred/model.ts';
import { ARRIVAL_INDEX } from '#shared/adapters/dynamodb/tables.ts';
import { messageOfStoredItem, uncountRemoved } from '#shared/adapters/dynamodb/deferred-messages.ts';
import { documentClient } from '#shared/adapters/clients.ts';
import { resourcesFromEnv } from '#shared/adapters/wiring.ts';
import {
  lambdaHandler,
  metricEvents,
  observability,
  serviceSettings,
  tracedAwsPorts,
} from '#shared/observability/lambda-runtime.ts';
import { emitMetric } from '#shared/observability/recorder.ts';
import { buildExpire } from './build.ts';

const obs = observability('expire');
const ports = tracedAwsPorts(obs.tracer);
const { tables } = resourcesFromEnv(process.env);
const { policy } = serviceSettings();
const control = obs.tracer.captureAWSv3Client(new DynamoDBClient({}));
const documents = documentClient(control);

const expire = buildExpire({ ports, policy, events: metricEvents(obs), now: Date.now });

/** The message a removal took away (an expiry); undefined for the store's other items (tombstones, summaries). */
export function expiredMessageOf(record: DynamoDBRecord): DeferredMessage | undefined {
  const image = record.dynamodb?.OldImage;
  if (record.eventName !== 'REMOVE' || !image) return undefined;
  return messageOfStoredItem(unmarshall(image as Parameters<typeof unmarshall>[0]));
}

async function onStream(event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> {
  const expired = event.Records.map(expiredMessageOf).filter((m): m is DeferredMessage => m !== undefined);
  try {
    if (expired.length > 0) await expire.messagesExpired(expired);
    // TTL bypassed `delete`: take the removed messages off their users' summary counts.
    const perUser = new Map<string, number>();
    for (const m of expired) perUser.set(m.user, (perUser.get(m.user) ?? 0) + 1);
    for (const [user, n] of perUser) await uncountRemoved(documents, tables.messages, user, n);
    return { batchItemFailures: [] };
  } catch (err) {
    // The NOTIFYs are idempotent (full state): retry the whole batch.
    obs.logger.error('expiry notifications failed', { err });
    return {
      batchItemFailures: event.Records.flatMap((r) =>
        r.dynamodb?.SequenceNumber ? [{ itemIdentifier: r.dynamodb.SequenceNumber }] : [],
      ),
    };
  }
}

/**
 * The stored-item gauges from the tables' descriptions: no scan, no read units. DynamoDB
 * refreshes these counts about every six hours, so they show the trend, not the minute. The
 * messages count is the list index's: it holds live messages only, not tombstones or summaries.
 */
async function sampleGauges(): Promise<void> {
  const [messages, subscriptions] = await Promise.all([
    control.send(new DescribeTableCommand({ TableName: tables.messages })),
    control.send(new DescribeTableCommand({ TableName: tables.subscriptions })),
  ]);
  const pending = messages.Table?.LocalSecondaryIndexes?.find((i) => i.IndexName === ARRIVAL_INDEX)?.ItemCount;
  if (pending !== undefined) emitMetric(obs.metrics, 'DeferredMessagesPending', pending);
  const active = subscriptions.Table?.ItemCount;
  if (active !== undefined) emitMetric(obs.metrics, 'ActiveSubscriptions', active);
}

async function onSchedule(): Promise<{ messages: number; subscriptions: number }> {
  const swept = await expire.sweep();
  await sampleGauges().catch((err: unknown) => obs.logger.warn('gauges not sampled', { err }));
  return swept;
}

export const handler = lambdaHandler(
  obs,
  (
    event: DynamoDBStreamEvent | ScheduledEvent,
  ): Promise<DynamoDBBatchResponse | { messages: number; subscriptions: number }> =>
    'Records' in event ? onStream(event) : onSchedule(),
);
