/**
 * The outbound queue against real local-aws-sqs: what invite and expire enqueue reaches the
 * edge's consumer as a job with the message's metadata only; a report that got a final answer
 * is deleted, one lost to a transport failure comes back and ends in the DLQ.
 */
import {
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { localSqsClient } from '#shared/adapters/clients.ts';
import { ensureQueues, startLocalAws, type EnsuredQueue, type LocalAws } from '../../support/aws-local/index.ts';
import { SqsImdnOutbox } from '#shared/adapters/sqs/imdn-outbox.ts';
import { SqsPoller, type SqsBatchHandler } from '#shared/adapters/sqs/poller.ts';
import { OUTBOUND_QUEUE } from '#shared/adapters/sqs/queues.ts';
import type { DeferredMessage } from '#shared/deferred/model.ts';
import { createResponse } from '#shared/sip/messages/index.ts';
import type { SipRequest } from '#shared/sip/messages/types.ts';
import { makeFailureImdnQueueHandler, makeFailureImdnSender } from '#functions/edge/failure-imdn.ts';

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

let seq = 0;
/** An outbound queue of its own per test; 1 s visibility so a retry comes quickly. */
async function outboundQueue(maxReceiveCount = OUTBOUND_QUEUE.maxReceiveCount): Promise<EnsuredQueue> {
  seq++;
  const queues = await ensureQueues(
    sqs,
    { name: `imdn-deliveries-${seq}`, dlqName: `imdn-deliveries-${seq}-dlq` },
    { name: `outbound-${seq}`, dlqName: `outbound-${seq}-dlq`, visibilityTimeoutSeconds: 1, maxReceiveCount },
  );
  return queues.outbound;
}

function poll(queueUrl: string, handler: SqsBatchHandler): void {
  const p = new SqsPoller({
    client: sqs,
    queueUrl,
    handler,
    waitTimeSeconds: 1,
    errorBackoffMs: 50,
    onError: () => undefined,
  });
  pollers.push(p);
  p.start();
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

async function depth(queueUrl: string): Promise<number> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return (
    Number(out.Attributes?.ApproximateNumberOfMessages) + Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible)
  );
}

const message = (n: number): DeferredMessage => ({
  user: 'sip:alice@example.com',
  id: `01JDQ8R0Z5K3N1V6X7Y8Z9A0B${n}`,
  messageId: `msg-${n}`,
  from: 'sip:bob@127.0.0.1:5070',
  to: 'sip:alice@example.com',
  date: '2026-03-01T10:00:00.000Z',
  subject: 'secret subject',
  contentType: 'text/plain;charset=UTF-8',
  size: 5,
  dispositionNotification: 'negative-delivery',
  cpim: new TextEncoder().encode('the whole CPIM payload'),
  arrivedAt: '2026-03-01T10:00:01.000Z',
  expiresAt: 1_900_000_000,
});

/** A SIP stack that answers every MESSAGE with `status` and records where it went. */
function answering(status: number) {
  const sent: { request: SipRequest; address: string; port: number }[] = [];
  return {
    sent,
    transactions: {
      request: async (request: SipRequest, target: { address: string; port: number }) => {
        sent.push({ request, address: target.address, port: target.port });
        return createResponse(request, status);
      },
    },
  };
}

describe('ensureQueues', () => {
  it('creates the outbound queue with a redrive policy to its own DLQ, and is idempotent', async () => {
    const first = await ensureQueues(sqs);
    expect(await ensureQueues(sqs)).toEqual(first);
    expect(first.outbound.queueUrl).not.toBe(first.queueUrl);
    expect(first.outbound.dlqArn).toMatch(/:outbound-dlq$/);
    const attrs = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: first.outbound.queueUrl,
        AttributeNames: ['RedrivePolicy', 'VisibilityTimeout'],
      }),
    );
    expect(JSON.parse(attrs.Attributes!.RedrivePolicy!)).toEqual({
      deadLetterTargetArn: first.outbound.dlqArn,
      maxReceiveCount: OUTBOUND_QUEUE.maxReceiveCount,
    });
    expect(attrs.Attributes!.VisibilityTimeout).toBe(String(OUTBOUND_QUEUE.visibilityTimeoutSeconds));
  });
});

describe('SqsImdnOutbox + SqsPoller', () => {
  it('hands an enqueued report to the consumer with the metadata only, and deletes it once handled', async () => {
    const { queueUrl } = await outboundQueue();
    await new SqsImdnOutbox(sqs, queueUrl).failed(message(1));
    const seen: SQSRecord[] = [];
    poll(queueUrl, async (event) => {
      seen.push(...event.Records);
      return { batchItemFailures: [] };
    });
    const record = await until(() => seen[0]);
    expect(JSON.parse(record.body)).toEqual({
      user: 'sip:alice@example.com',
      id: '01JDQ8R0Z5K3N1V6X7Y8Z9A0B1',
      messageId: 'msg-1',
      from: 'sip:bob@127.0.0.1:5070',
      to: 'sip:alice@example.com',
      date: '2026-03-01T10:00:00.000Z',
    });
    await until(async () => ((await depth(queueUrl)) === 0 ? true : undefined));
  });

  it('sends each report as a SIP MESSAGE to the sender and deletes it whatever the final status', async () => {
    const { queueUrl } = await outboundQueue();
    const outbox = new SqsImdnOutbox(sqs, queueUrl);
    await outbox.failed(message(2));
    await outbox.failed({ ...message(3), from: 'sip:bob@example.net' });
    const sip = answering(404);
    const statuses: number[] = [];
    poll(
      queueUrl,
      makeFailureImdnQueueHandler({
        send: makeFailureImdnSender({
          ...sip,
          domain: 'example.com',
          log: () => undefined,
          onSent: (s) => statuses.push(s),
        }),
        log: () => undefined,
      }),
    );
    await until(() => (statuses.length >= 2 ? true : undefined));
    expect(statuses.sort()).toEqual([0, 404]);
    expect(sip.sent).toHaveLength(1);
    expect(sip.sent[0]).toMatchObject({
      address: '127.0.0.1',
      port: 5070,
      request: { method: 'MESSAGE', uri: 'sip:bob@127.0.0.1:5070' },
    });
    const body = sip.sent[0]!.request.body.toString('utf8');
    expect(body).toContain('<message-id>msg-2</message-id>');
    expect(body).toContain('<failed/>');
    await until(async () => ((await depth(queueUrl)) === 0 ? true : undefined));
    await new Promise((r) => setTimeout(r, 1300));
    expect(statuses).toHaveLength(2);
  });

  it('retries a report lost to a transport failure and keeps it in the DLQ after maxReceiveCount', async () => {
    const { queueUrl, dlqUrl } = await outboundQueue(2);
    await new SqsImdnOutbox(sqs, queueUrl).failed(message(4));
    const sip = answering(503);
    poll(
      queueUrl,
      makeFailureImdnQueueHandler({
        send: makeFailureImdnSender({ ...sip, domain: 'example.com', log: () => undefined }),
        log: () => undefined,
      }),
    );
    const dead = await until(async () => {
      const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlqUrl, WaitTimeSeconds: 1 }));
      return out.Messages?.[0];
    });
    expect(JSON.parse(dead.Body!)).toMatchObject({ messageId: 'msg-4' });
    expect(sip.sent.length).toBe(2);
  });

  it('keeps what is not a report for the DLQ instead of dropping it', async () => {
    const { queueUrl, dlqUrl } = await outboundQueue(1);
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: '{"user":"sip:alice@example.com"}' }));
    const sip = answering(200);
    poll(
      queueUrl,
      makeFailureImdnQueueHandler({
        send: makeFailureImdnSender({ ...sip, domain: 'example.com', log: () => undefined }),
        log: () => undefined,
      }),
    );
    const dead = await until(async () => {
      const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlqUrl, WaitTimeSeconds: 1 }));
      return out.Messages?.[0];
    });
    expect(dead.Body).toBe('{"user":"sip:alice@example.com"}');
    expect(sip.sent).toHaveLength(0);
  });
});
