/**
 * The delivery queue and the local long-poll consumer against real local-aws-sqs: a job reaches
 * the handler as a faithful SQSEvent and is deleted; a failed job comes back after the
 * visibility timeout and, after maxReceiveCount receives, lands in the DLQ.
 */
import {
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { localSqsClient } from '#shared/adapters/clients.ts';
import { ensureQueues, startLocalAws, type EnsuredQueues, type LocalAws } from '../../support/aws-local/index.ts';
import { SqsDeliveryQueue } from '#shared/adapters/sqs/delivery-queue.ts';
import { SqsPoller } from '#shared/adapters/sqs/poller.ts';
import type { DeliveryJob } from '#shared/deferred/model.ts';

let aws: LocalAws;
let sqs: SQSClient;
const pollers: SqsPoller[] = [];

beforeAll(async () => {
  aws = await startLocalAws({ dataDir: undefined });
  sqs = localSqsClient(aws.sqsEndpoint);
});
afterEach(async () => {
  await Promise.all(pollers.splice(0).map((p) => p.stop()));
});
afterAll(async () => {
  sqs?.destroy();
  await aws?.stop();
});

let queueSeq = 0;
/** Queues of their own per test; 1 s visibility so redelivery is quick. */
function queuesFor(maxReceiveCount = 5): Promise<EnsuredQueues> {
  queueSeq++;
  return ensureQueues(sqs, {
    name: `deliveries-${queueSeq}`,
    dlqName: `deliveries-${queueSeq}-dlq`,
    visibilityTimeoutSeconds: 1,
    maxReceiveCount,
  });
}

const handlerErrors: unknown[] = [];

function poller(
  queueUrl: string,
  handler: (event: SQSEvent) => Promise<SQSBatchResponse>,
  concurrency?: number,
): SqsPoller {
  const p = new SqsPoller({
    client: sqs,
    queueUrl,
    handler,
    waitTimeSeconds: 1,
    errorBackoffMs: 50,
    onError: (err) => handlerErrors.push(err),
    ...(concurrency !== undefined ? { concurrency } : {}),
  });
  pollers.push(p);
  p.start();
  return p;
}

async function depth(queueUrl: string): Promise<{ visible: number; inFlight: number }> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    visible: Number(out.Attributes?.ApproximateNumberOfMessages),
    inFlight: Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible),
  };
}

async function until<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const job: DeliveryJob = { user: 'sip:alice@example.com', sessionId: 's-7c41', edgeId: 'http://10.0.1.23:8080' };

describe('ensureQueues', () => {
  it('creates the queue with a redrive policy to its DLQ, and is idempotent', async () => {
    const first = await queuesFor(4);
    const again = await ensureQueues(sqs, {
      name: `deliveries-${queueSeq}`,
      dlqName: `deliveries-${queueSeq}-dlq`,
      visibilityTimeoutSeconds: 1,
      maxReceiveCount: 4,
    });
    expect(again).toEqual(first);
    const attrs = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: first.queueUrl,
        AttributeNames: ['RedrivePolicy', 'VisibilityTimeout'],
      }),
    );
    expect(JSON.parse(attrs.Attributes!.RedrivePolicy!)).toEqual({
      deadLetterTargetArn: first.dlqArn,
      maxReceiveCount: 4,
    });
    expect(attrs.Attributes!.VisibilityTimeout).toBe('1');
  });
});

describe('SqsDeliveryQueue + SqsPoller', () => {
  it('delivers an enqueued job to the handler as an SQS event and deletes it', async () => {
    const { queueUrl, queueArn } = await queuesFor();
    await new SqsDeliveryQueue(sqs, queueUrl).enqueue(job);
    const seen: SQSRecord[] = [];
    poller(queueUrl, async (event) => {
      seen.push(...event.Records);
      return { batchItemFailures: [] };
    });
    const record = await until(() => seen[0]);
    expect(JSON.parse(record.body)).toEqual(job);
    expect(record.eventSource).toBe('aws:sqs');
    expect(record.eventSourceARN).toBe(queueArn);
    expect(record.awsRegion).toBe('us-east-1');
    expect(record.attributes.ApproximateReceiveCount).toBe('1');
    expect(Number(record.attributes.SentTimestamp)).toBeGreaterThan(0);
    expect(record.messageId).not.toBe('');
    expect(record.receiptHandle).not.toBe('');
    expect(record.md5OfBody).toMatch(/^[0-9a-f]{32}$/);

    await until(async () => {
      const d = await depth(queueUrl);
      return d.visible === 0 && d.inFlight === 0 ? true : undefined;
    });
    // Past the visibility timeout nothing comes back: it was deleted, not just hidden.
    await new Promise((r) => setTimeout(r, 1300));
    expect(seen).toHaveLength(1);
  });

  it('hands waiting jobs to the handler together, in one batch', async () => {
    const { queueUrl } = await queuesFor();
    const queue = new SqsDeliveryQueue(sqs, queueUrl);
    for (const sessionId of ['s-1', 's-2', 's-3']) await queue.enqueue({ ...job, sessionId });
    const batches: string[][] = [];
    poller(
      queueUrl,
      async (event) => {
        batches.push(event.Records.map((r) => (JSON.parse(r.body) as DeliveryJob).sessionId));
        return { batchItemFailures: [] };
      },
      1,
    );
    await until(() => (batches.flat().length >= 3 ? true : undefined));
    expect(batches).toHaveLength(1);
    expect([...batches[0]!].sort()).toEqual(['s-1', 's-2', 's-3']);
  });

  it('passes message attributes through as Lambda shapes them', async () => {
    const { queueUrl } = await queuesFor();
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: JSON.stringify(job),
        MessageAttributes: {
          origin: { DataType: 'String', StringValue: 'invite' },
          blob: { DataType: 'Binary', BinaryValue: new Uint8Array([1, 2, 3]) },
        },
      }),
    );
    const seen: SQSRecord[] = [];
    poller(queueUrl, async (event) => {
      seen.push(...event.Records);
      return { batchItemFailures: [] };
    });
    const record = await until(() => seen[0]);
    expect(record.messageAttributes.origin).toMatchObject({ dataType: 'String', stringValue: 'invite' });
    expect(record.messageAttributes.blob).toMatchObject({ dataType: 'Binary', binaryValue: 'AQID' });
    expect(record.md5OfMessageAttributes).toMatch(/^[0-9a-f]{32}$/);
  });

  it('deletes the jobs that succeeded and redelivers only the reported failure', async () => {
    const { queueUrl } = await queuesFor();
    const queue = new SqsDeliveryQueue(sqs, queueUrl);
    for (const sessionId of ['ok-1', 'bad', 'ok-2']) await queue.enqueue({ ...job, sessionId });
    const receipts: { sessionId: string; count: string }[] = [];
    poller(queueUrl, async (event) => {
      const batchItemFailures = [];
      for (const r of event.Records) {
        const { sessionId } = JSON.parse(r.body) as DeliveryJob;
        receipts.push({ sessionId, count: r.attributes.ApproximateReceiveCount });
        if (sessionId === 'bad') batchItemFailures.push({ itemIdentifier: r.messageId });
      }
      return { batchItemFailures };
    });
    await until(() => (receipts.filter((r) => r.sessionId === 'bad').length >= 2 ? true : undefined));
    expect(receipts.filter((r) => r.sessionId === 'ok-1')).toHaveLength(1);
    expect(receipts.filter((r) => r.sessionId === 'ok-2')).toHaveLength(1);
    expect(
      receipts
        .filter((r) => r.sessionId === 'bad')
        .map((r) => r.count)
        .slice(0, 2),
    ).toEqual(['1', '2']);
  });

  it('moves a job that keeps failing to the DLQ after maxReceiveCount receives', async () => {
    const { queueUrl, dlqUrl } = await queuesFor(3);
    await new SqsDeliveryQueue(sqs, queueUrl).enqueue(job);
    let calls = 0;
    handlerErrors.length = 0;
    // A thrown handler fails the whole batch, as with Lambda.
    poller(queueUrl, async () => {
      calls++;
      throw new Error('edge unreachable');
    });
    const dead = await until(async () => {
      const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlqUrl, WaitTimeSeconds: 1 }));
      return out.Messages?.[0];
    });
    expect(JSON.parse(dead.Body!)).toEqual(job);
    expect(calls).toBe(3);
    expect(handlerErrors.map(String)).toEqual(Array(3).fill('Error: sqs batch handler failed: edge unreachable'));
    expect(await depth(queueUrl)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('stop() waits for the batch in flight, and its deletes, before resolving', async () => {
    const { queueUrl } = await queuesFor();
    await new SqsDeliveryQueue(sqs, queueUrl).enqueue(job);
    let entered!: () => void;
    const inHandler = new Promise<void>((r) => (entered = r));
    let finished = false;
    const p = poller(queueUrl, async () => {
      entered();
      await new Promise((r) => setTimeout(r, 300));
      finished = true;
      return { batchItemFailures: [] };
    });
    await inHandler;
    await p.stop();
    expect(finished).toBe(true);
    expect(p.running).toBe(false);
    expect(await depth(queueUrl)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('stops promptly while idle in a long poll', async () => {
    const { queueUrl } = await queuesFor();
    const p = new SqsPoller({ client: sqs, queueUrl, handler: async () => ({ batchItemFailures: [] }) });
    p.start();
    await new Promise((r) => setTimeout(r, 100));
    // waitTimeSeconds defaults to 20: resolving at all within the test timeout shows the abort.
    await p.stop();
    expect(p.running).toBe(false);
  });

  it('keeps polling after the queue endpoint fails, reporting the error', async () => {
    const errors: unknown[] = [];
    const p = new SqsPoller({
      client: sqs,
      queueUrl: `${aws.sqsEndpoint}/123456789012/no-such-queue`,
      handler: async () => ({ batchItemFailures: [] }),
      waitTimeSeconds: 0,
      errorBackoffMs: 20,
      onError: (err) => errors.push(err),
    });
    pollers.push(p);
    p.start();
    await until(() => (errors.length >= 2 ? true : undefined));
    expect(String(errors[0])).toMatch(/^Error: sqs receive failed: /);
    expect(p.running).toBe(true);
  });
});
