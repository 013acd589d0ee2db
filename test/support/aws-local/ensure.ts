/**
 * Create the tables and queues the adapters need on the emulators if they are missing. Both are
 * idempotent (dynalite keeps tables across restarts, local-aws-sqs does not keep queues).
 */
import {
  CreateTableCommand,
  DescribeTableCommand,
  ResourceInUseException,
  ResourceNotFoundException,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import {
  TABLE_SPECS,
  createTableInput,
  defaultTableNames,
  type TableNames,
  type TableRole,
} from '#shared/adapters/dynamodb/tables.ts';
import { DELIVERY_QUEUE, OUTBOUND_QUEUE, type QueueSpec } from '#shared/adapters/sqs/queues.ts';

/** Create any missing table and wait until each is ACTIVE. */
export async function ensureTables(
  client: DynamoDBClient | DynamoDBDocumentClient,
  names: TableNames = defaultTableNames(),
): Promise<TableNames> {
  // A document client shares its base client's stack, so plain table commands go through it.
  const base = client as DynamoDBClient;
  for (const role of Object.keys(TABLE_SPECS) as TableRole[]) {
    const name = names[role];
    if (!(await describeStatus(base, name))) {
      try {
        await base.send(new CreateTableCommand(createTableInput(TABLE_SPECS[role], name)));
      } catch (err) {
        // Created meanwhile by another process starting at the same time.
        if (!(err instanceof ResourceInUseException)) throw err;
      }
    }
    await waitActive(base, name);
  }
  return names;
}

async function describeStatus(client: DynamoDBClient, name: string): Promise<string | undefined> {
  try {
    const out = await client.send(new DescribeTableCommand({ TableName: name }));
    return out.Table?.TableStatus ?? 'UNKNOWN';
  } catch (err) {
    if (err instanceof ResourceNotFoundException) return undefined;
    throw err;
  }
}

async function waitActive(client: DynamoDBClient, name: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 10; ; delay = Math.min(delay * 2, 500)) {
    const status = await describeStatus(client, name);
    if (status === 'ACTIVE') return;
    if (Date.now() > deadline) throw new Error(`table ${name} is ${status ?? 'missing'}, not ACTIVE`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** A queue and its DLQ as SQS names them. */
export interface EnsuredQueue {
  queueUrl: string;
  queueArn: string;
  dlqUrl: string;
  dlqArn: string;
}

/** The delivery queue (its fields at the top level) and the outbound queue. */
export interface EnsuredQueues extends EnsuredQueue {
  outbound: EnsuredQueue;
}

/**
 * Create the delivery queue and the outbound queue, each with its DLQ (redrive after
 * `maxReceiveCount` receives). Asking again with the same settings returns the same URLs.
 */
export async function ensureQueues(
  client: SQSClient,
  overrides: Partial<QueueSpec> = {},
  outboundOverrides: Partial<QueueSpec> = {},
): Promise<EnsuredQueues> {
  const delivery = await ensureQueue(client, { ...DELIVERY_QUEUE, ...overrides });
  const outbound = await ensureQueue(client, { ...OUTBOUND_QUEUE, ...outboundOverrides });
  return { ...delivery, outbound };
}

async function ensureQueue(client: SQSClient, spec: QueueSpec): Promise<EnsuredQueue> {
  const dlq = await client.send(
    new CreateQueueCommand({
      QueueName: spec.dlqName,
      Attributes: { MessageRetentionPeriod: String(spec.dlqRetentionSeconds) },
    }),
  );
  const dlqUrl = required(dlq.QueueUrl, spec.dlqName);
  const dlqArn = await queueArn(client, dlqUrl);
  const queue = await client.send(
    new CreateQueueCommand({
      QueueName: spec.name,
      Attributes: {
        VisibilityTimeout: String(spec.visibilityTimeoutSeconds),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: spec.maxReceiveCount }),
      },
    }),
  );
  const queueUrl = required(queue.QueueUrl, spec.name);
  return { queueUrl, queueArn: await queueArn(client, queueUrl), dlqUrl, dlqArn };
}

async function queueArn(client: SQSClient, queueUrl: string): Promise<string> {
  const out = await client.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
  return required(out.Attributes?.QueueArn, queueUrl);
}

function required(value: string | undefined, what: string): string {
  if (!value) throw new Error(`SQS returned no URL/ARN for ${what}`);
  return value;
}
