/**
 * The local AWS stack: dynalite persisted under the data folder survives a restart, table and
 * queue creation are idempotent, local clients ignore the machine's AWS settings, and the
 * AWS-mode factory reads its resource names from the environment.
 */
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { documentClient, localDynamoClient, localSqsClient } from '#shared/adapters/clients.ts';
import { defaultTableNames } from '#shared/adapters/dynamodb/tables.ts';
import {
  awsPortsFromEnv,
  ensureQueues,
  ensureTables,
  startLocalAws,
  startLocalBackend,
  type LocalBackend,
} from '../../support/aws-local/index.ts';
import {
  DELIVERY_QUEUE_URL_ENV,
  MESSAGES_TABLE_ENV,
  OUTBOUND_QUEUE_URL_ENV,
  SESSIONS_TABLE_ENV,
  SUBSCRIPTIONS_TABLE_ENV,
} from '#shared/adapters/wiring.ts';
import { NOW, message, session, subscription, tempDir } from './fixtures.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function backendOn(dataDir: string | undefined): Promise<LocalBackend> {
  const b = await startLocalBackend({ dataDir, now: () => NOW * 1000 });
  cleanups.push(() => b.stop());
  return b;
}

describe('startLocalAws', () => {
  it('serves DynamoDB and SQS on random loopback ports', async () => {
    const aws = await startLocalAws({ dataDir: undefined });
    cleanups.push(() => aws.stop());
    expect(aws.dynamoEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(aws.sqsEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(aws.dynamoEndpoint).not.toBe(aws.sqsEndpoint);
    await aws.stop();
    await aws.stop(); // a second stop is harmless
  });

  it('keeps everything stored across a restart on the same data folder', async () => {
    const { dir, remove } = await tempDir();
    cleanups.push(remove);
    const m = message({ messageId: 'persisted' });
    const sub = subscription();
    const s = session({ sessionId: 'persisted-session' });

    const first = await startLocalBackend({ dataDir: dir, now: () => NOW * 1000 });
    await first.ports.messages.put(m);
    await first.ports.subscriptions.put(sub);
    await first.ports.subscriptions.nextNotify(sub.user, sub.dialogId);
    await first.ports.sessions.put(s);
    await first.stop();

    const second = await backendOn(dir);
    const got = await second.ports.messages.get(m.user, m.id, NOW);
    expect(got?.messageId).toBe('persisted');
    expect(Buffer.from(got!.cpim).equals(Buffer.from(m.cpim))).toBe(true);
    // The dedupe record survived too: the same deposit is still recognised.
    expect((await second.ports.messages.put(message({ messageId: 'persisted' }))).created).toBe(false);
    expect((await second.ports.subscriptions.get(sub.user, sub.dialogId, NOW))?.version).toBe(1);
    expect(await second.ports.subscriptions.nextNotify(sub.user, sub.dialogId)).toMatchObject({ cseq: 2, version: 1 });
    expect(await second.ports.sessions.get('persisted-session')).toEqual(s);
  });

  it('keeps nothing across a restart in memory', async () => {
    const first = await startLocalBackend({ dataDir: undefined, now: () => NOW * 1000 });
    const m = message();
    await first.ports.messages.put(m);
    await first.stop();
    const second = await backendOn(undefined);
    expect(await second.ports.messages.count(m.user, NOW)).toBe(0);
  });
});

describe('ensureTables and ensureQueues', () => {
  it('creates the tables once and leaves existing ones (and their items) alone', async () => {
    const b = await backendOn(undefined);
    const m = message();
    await b.ports.messages.put(m);
    await ensureTables(b.clients.dynamo, b.tables);
    await ensureTables(b.clients.dynamoBase, b.tables);
    const listed = await b.clients.dynamoBase.send(new ListTablesCommand({}));
    expect(listed.TableNames?.sort()).toEqual(Object.values(defaultTableNames()).sort());
    expect(await b.ports.messages.count(m.user, NOW)).toBe(1);
  });

  it('creates prefixed tables side by side', async () => {
    const b = await backendOn(undefined);
    const names = await ensureTables(b.clients.dynamo, defaultTableNames('test-'));
    expect(names.messages).toBe('test-deferred-messages');
    const listed = await b.clients.dynamoBase.send(new ListTablesCommand({}));
    expect(listed.TableNames).toContain('test-subscriptions');
    expect(listed.TableNames).toContain('delivery-sessions');
  });

  it('returns the same queues when asked again', async () => {
    const b = await backendOn(undefined);
    expect(await ensureQueues(b.clients.sqs)).toEqual(b.queues);
    expect(b.queues.dlqArn).toMatch(/^arn:aws:sqs:us-east-1:\d+:deliveries-dlq$/);
  });
});

describe('clients pointed at the local stack', () => {
  it("use us-east-1 and the given endpoint whatever the machine's AWS settings say", async () => {
    const aws = await startLocalAws({ dataDir: undefined });
    cleanups.push(() => aws.stop());
    const saved = { ...process.env };
    Object.assign(process.env, {
      AWS_REGION: 'eu-west-3',
      AWS_PROFILE: 'no-such-profile',
      AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
      AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:9',
      AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:9',
      AWS_CONFIG_FILE: '/nonexistent/aws-config',
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
    });
    try {
      const dynamo = localDynamoClient(aws.dynamoEndpoint);
      const sqs = localSqsClient(aws.sqsEndpoint);
      cleanups.push(async () => {
        dynamo.destroy();
        sqs.destroy();
      });
      expect(await dynamo.config.region()).toBe('us-east-1');
      await ensureTables(documentClient(dynamo));
      const queues = await ensureQueues(sqs);
      expect(queues.queueUrl.startsWith(aws.sqsEndpoint)).toBe(true);
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });
});

describe('awsPortsFromEnv', () => {
  const env = {
    [MESSAGES_TABLE_ENV]: 'Stack-Messages-1',
    [SUBSCRIPTIONS_TABLE_ENV]: 'Stack-Subscriptions-1',
    [SESSIONS_TABLE_ENV]: 'Stack-Sessions-1',
    [DELIVERY_QUEUE_URL_ENV]: 'https://sqs.eu-west-1.amazonaws.com/123456789012/deliveries',
    [OUTBOUND_QUEUE_URL_ENV]: 'https://sqs.eu-west-1.amazonaws.com/123456789012/outbound',
    AWS_REGION: 'eu-west-1',
  };

  it('builds every port from the environment', () => {
    const ports = awsPortsFromEnv(env);
    expect(Object.keys(ports).sort()).toEqual([
      'changes',
      'edge',
      'messages',
      'outbox',
      'queue',
      'sessions',
      'subscriptions',
    ]);
  });

  it('names the variable that is missing', () => {
    for (const name of [
      MESSAGES_TABLE_ENV,
      SUBSCRIPTIONS_TABLE_ENV,
      SESSIONS_TABLE_ENV,
      DELIVERY_QUEUE_URL_ENV,
      OUTBOUND_QUEUE_URL_ENV,
    ]) {
      const partial: Record<string, string | undefined> = { ...env, [name]: undefined };
      expect(() => awsPortsFromEnv(partial)).toThrow(`environment variable ${name} is not set`);
    }
  });
});
