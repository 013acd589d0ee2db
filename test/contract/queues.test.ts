/**
 * One job-queue contract for the SQLite job queue of the local default and SQS (on
 * local-aws-sqs) with its event-source-mapping stand-in: a job reaches the handler once and is
 * deleted; a reported failure comes back after the visibility timeout, the others do not; after
 * `maxReceiveCount` receives it lands in the dead-letter queue and is not handed out again.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { localSqsClient } from '#shared/adapters/clients.ts';
import { parseFailureImdnJob } from '#shared/adapters/imdn-job.ts';
import { SqsDeliveryQueue } from '#shared/adapters/sqs/delivery-queue.ts';
import { SqsImdnOutbox } from '#shared/adapters/sqs/imdn-outbox.ts';
import { SqsPoller } from '#shared/adapters/sqs/poller.ts';
import type { QueueSpec } from '#shared/adapters/sqs/queues.ts';
import {
  SqliteDatabase,
  SqliteDeliveryQueue,
  SqliteImdnOutbox,
  SqliteJobConsumer,
  SqliteJobQueue,
} from '#shared/adapters/sqlite/index.ts';
import type { DeliveryJob, DeliveryReport } from '#shared/deferred/model.ts';
import type { DeliveryQueue, ImdnOutbox } from '#shared/ports.ts';
import { ensureQueues, startLocalAws, type LocalAws } from '../support/aws-local/index.ts';
import { dialog, message, session } from '../integration/adapters/fixtures.ts';

type Handler = (event: SQSEvent) => Promise<SQSBatchResponse>;

interface QueueUnderTest {
  queue: DeliveryQueue;
  outbox: ImdnOutbox;
  consume(handler: Handler): void;
  /** Bodies in the dead-letter queue. */
  deadLetters(): Promise<string[]>;
}

interface QueueImplementation {
  name: string;
  /** Queues of their own, 1 s visibility, dead-lettered after `maxReceiveCount` receives. */
  open(maxReceiveCount: number): Promise<QueueUnderTest>;
  stopConsumers(): Promise<void>;
  closeAll(): Promise<void>;
}

let seq = 0;
const specFor = (maxReceiveCount: number): QueueSpec => {
  seq++;
  return {
    name: `jobs-${seq}`,
    dlqName: `jobs-${seq}-dlq`,
    visibilityTimeoutSeconds: 1,
    maxReceiveCount,
    dlqRetentionSeconds: 3600,
  };
};

function sqliteQueues(): QueueImplementation {
  const consumers: SqliteJobConsumer[] = [];
  const opened: { db: SqliteDatabase; dir: string }[] = [];
  return {
    name: 'SQLite job queue',
    async open(maxReceiveCount) {
      const dir = await mkdtemp(path.join(tmpdir(), 'contract-queue-'));
      const db = await SqliteDatabase.open({ dataDir: dir });
      opened.push({ db, dir });
      const jobs = new SqliteJobQueue(db, specFor(maxReceiveCount));
      const imdn = new SqliteJobQueue(db, specFor(maxReceiveCount));
      return {
        queue: new SqliteDeliveryQueue(jobs),
        outbox: new SqliteImdnOutbox(imdn),
        consume(handler) {
          for (const queue of [jobs, imdn]) {
            const consumer = new SqliteJobConsumer({ queue, handler, idlePollMs: 50 });
            consumers.push(consumer);
            consumer.start();
          }
        },
        deadLetters: async () => [...jobs.deadLetters(), ...imdn.deadLetters()].map((d) => d.body),
      };
    },
    stopConsumers: async () => {
      await Promise.all(consumers.splice(0).map((c) => c.stop()));
    },
    async closeAll() {
      for (const { db, dir } of opened.splice(0)) {
        db.close();
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

function sqsQueues(): QueueImplementation {
  let aws: LocalAws | undefined;
  let sqs: SQSClient | undefined;
  const pollers: SqsPoller[] = [];
  return {
    name: 'SQS (local-aws-sqs)',
    async open(maxReceiveCount) {
      aws ??= await startLocalAws({ dataDir: undefined });
      sqs ??= localSqsClient(aws.sqsEndpoint);
      const client = sqs;
      const jobs = await ensureQueues(client, specFor(maxReceiveCount), specFor(maxReceiveCount));
      return {
        queue: new SqsDeliveryQueue(client, jobs.queueUrl),
        outbox: new SqsImdnOutbox(client, jobs.outbound.queueUrl),
        consume(handler) {
          for (const queueUrl of [jobs.queueUrl, jobs.outbound.queueUrl]) {
            const poller = new SqsPoller({ client, queueUrl, handler, waitTimeSeconds: 1, errorBackoffMs: 50 });
            pollers.push(poller);
            poller.start();
          }
        },
        async deadLetters() {
          // By message id: with no visibility timeout local-aws-sqs may return one message twice.
          const bodies = new Map<string, string>();
          for (const queueUrl of [jobs.dlqUrl, jobs.outbound.dlqUrl]) {
            const out = await client.send(
              new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 0 }),
            );
            for (const m of out.Messages ?? []) bodies.set(m.MessageId ?? '', m.Body ?? '');
          }
          return [...bodies.values()];
        },
      };
    },
    stopConsumers: async () => {
      await Promise.all(pollers.splice(0).map((p) => p.stop()));
    },
    async closeAll() {
      sqs?.destroy();
      await aws?.stop();
    },
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

const job = (sessionId: string): DeliveryJob => ({
  user: 'sip:alice@example.com',
  sessionId,
  edgeId: 'http://10.0.1.23:8080',
  // The delivery stores the session from its job (DeliverySessionStore.begin): it must arrive whole.
  session: session({ sessionId, retrieve: ['01JA', '01JB'] }),
});

describe.each([sqliteQueues(), sqsQueues()])('$name', (impl) => {
  afterEach(() => impl.stopConsumers());
  afterAll(() => impl.closeAll());

  it('hands an enqueued job to the handler once, as an SQS record, then deletes it', async () => {
    const q = await impl.open(5);
    await q.queue.enqueue(job('s-once'));
    const seen: { body: string; count: string }[] = [];
    q.consume(async (event) => {
      for (const r of event.Records) seen.push({ body: r.body, count: r.attributes.ApproximateReceiveCount });
      return { batchItemFailures: [] };
    });
    await until(() => seen[0]);
    expect(JSON.parse(seen[0]!.body)).toEqual(job('s-once'));
    expect(seen[0]!.count).toBe('1');
    // Past the visibility timeout nothing comes back: it was deleted, not just hidden.
    await new Promise((r) => setTimeout(r, 1500));
    expect(seen).toHaveLength(1);
  });

  it('hands on the session a delivery job carries (the delivery stores it; the INVITE does not)', async () => {
    const q = await impl.open(5);
    const carried: DeliveryJob = {
      ...job('s-carried'),
      session: {
        user: 'sip:alice@example.com',
        sessionId: 's-carried',
        dialogId: 'd1',
        dialog: {
          callId: 'c1',
          localTag: 't1',
          remoteTag: 'f1',
          localUri: 'sip:alice@example.com',
          remoteUri: 'sip:alice@example.com',
          remoteTarget: 'sip:alice@192.0.2.10',
          routeSet: [],
          localCSeq: 1,
          flow: { edgeId: 'http://10.0.1.23:8080', transport: 'tcp', remoteAddress: '192.0.2.10', remotePort: 5070 },
        },
        retrieve: ['m1', 'm2'],
        clientPath: 'msrp://192.0.2.10:9/c1;tcp',
        localPath: 'msrp://pf.example.com:2855/s-carried;tcp',
        state: 'waiting',
        createdAt: '2026-12-07T00:00:00.000Z',
        expiresAt: 1_900_000_000,
      },
    };
    await q.queue.enqueue(carried);
    const bodies: string[] = [];
    q.consume(async (event) => {
      bodies.push(...event.Records.map((r) => r.body));
      return { batchItemFailures: [] };
    });
    await until(() => bodies[0]);
    expect(JSON.parse(bodies[0]!)).toEqual(carried);
  });

  it('hands on an edge’s delivery report as it was queued, to the same consumer', async () => {
    const q = await impl.open(5);
    const report: DeliveryReport = {
      type: 'delivery-report',
      user: 'sip:alice@example.com',
      sessionId: 's-report',
      edgeId: 'http://10.0.1.23:8080',
      dialog: dialog(),
      byeCSeq: 2,
      results: [
        {
          id: 'm1',
          status: 200,
          sent: true,
          arrivedAt: '2026-12-07T00:00:00.000Z',
          from: 'sip:bob@example.net',
          bytes: 600,
        },
        {
          id: 'm2',
          status: 408,
          sent: false,
          arrivedAt: '2026-12-07T00:00:01.000Z',
          from: 'sip:bob@example.net',
          bytes: 700,
        },
      ],
    };
    await q.queue.report(report);
    const bodies: string[] = [];
    q.consume(async (event) => {
      bodies.push(...event.Records.map((r) => r.body));
      return { batchItemFailures: [] };
    });
    await until(() => bodies[0]);
    expect(JSON.parse(bodies[0]!)).toEqual(report);
  });

  it('an IMDN job carries the report’s metadata, never the payload', async () => {
    const q = await impl.open(5);
    const m = message({ messageId: 'imdn-1' });
    await q.outbox.failed(m);
    const bodies: string[] = [];
    q.consume(async (event) => {
      bodies.push(...event.Records.map((r) => r.body));
      return { batchItemFailures: [] };
    });
    const body = await until(() => bodies[0]);
    expect(parseFailureImdnJob(body)).toEqual({
      user: m.user,
      id: m.id,
      messageId: 'imdn-1',
      from: m.from,
      to: m.to,
      date: m.date,
    });
    expect(body).not.toContain('Lunch?');
  });

  it('a reported failure comes back after the visibility timeout; the rest of the batch does not', async () => {
    const q = await impl.open(5);
    for (const id of ['ok', 'bad']) await q.queue.enqueue(job(id));
    const receipts: string[] = [];
    q.consume(async (event) => {
      const batchItemFailures = [];
      for (const r of event.Records) {
        const { sessionId } = JSON.parse(r.body) as DeliveryJob;
        receipts.push(`${sessionId}#${r.attributes.ApproximateReceiveCount}`);
        if (sessionId === 'bad' && r.attributes.ApproximateReceiveCount === '1') {
          batchItemFailures.push({ itemIdentifier: r.messageId });
        }
      }
      return { batchItemFailures };
    });
    await until(() => (receipts.includes('bad#2') ? true : undefined));
    await new Promise((r) => setTimeout(r, 1500));
    expect([...receipts].sort()).toEqual(['bad#1', 'bad#2', 'ok#1']);
  });

  it('after maxReceiveCount failed receives the job is dead-lettered and handed out no more', async () => {
    const q = await impl.open(2);
    await q.queue.enqueue(job('poison'));
    let receives = 0;
    q.consume(async (event) => {
      receives += event.Records.length;
      return { batchItemFailures: event.Records.map((r) => ({ itemIdentifier: r.messageId })) };
    });
    const dead = await until(async () => {
      const bodies = await q.deadLetters();
      return bodies.length > 0 ? bodies : undefined;
    });
    expect(dead.map((b) => (JSON.parse(b) as DeliveryJob).sessionId)).toEqual(['poison']);
    await new Promise((r) => setTimeout(r, 1500));
    expect(receives).toBe(2);
  });
});
