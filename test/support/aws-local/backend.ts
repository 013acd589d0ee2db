/**
 * The DynamoDB/SQS adapters over the emulators in one call: local AWS stack, tables, queues,
 * clients and ports. Only the tests of those adapters use it (the local default runs on SQLite).
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { documentClient, localDynamoClient, localSqsClient } from '#shared/adapters/clients.ts';
import { defaultTableNames, type TableNames } from '#shared/adapters/dynamodb/tables.ts';
import type { EdgeHttpOptions } from '#shared/adapters/edge-http.ts';
import type { QueueSpec } from '#shared/adapters/sqs/queues.ts';
import { createPorts, type Ports } from '#shared/adapters/wiring.ts';
import { ensureQueues, ensureTables, type EnsuredQueues } from './ensure.ts';
import { startLocalAws, type LocalAws, type LocalAwsOptions } from './local-aws.ts';

export interface LocalBackendOptions extends LocalAwsOptions {
  tablePrefix?: string;
  queue?: Partial<QueueSpec>;
  outboundQueue?: Partial<QueueSpec>;
  pageSize?: number;
  now?: () => number;
  edge?: EdgeHttpOptions;
}

export interface LocalBackend {
  aws: LocalAws;
  ports: Ports;
  tables: TableNames;
  queues: EnsuredQueues;
  clients: { dynamoBase: DynamoDBClient; dynamo: DynamoDBDocumentClient; sqs: SQSClient };
  /** Stop the clients and the stack. */
  stop(): Promise<void>;
}

export async function startLocalBackend(options: LocalBackendOptions): Promise<LocalBackend> {
  const aws = await startLocalAws(options);
  const dynamoBase = localDynamoClient(aws.dynamoEndpoint);
  const dynamo = documentClient(dynamoBase);
  const sqs = localSqsClient(aws.sqsEndpoint);
  const stop = async () => {
    dynamoBase.destroy();
    sqs.destroy();
    await aws.stop();
  };
  try {
    const tables = await ensureTables(dynamo, defaultTableNames(options.tablePrefix));
    const queues = await ensureQueues(sqs, options.queue, options.outboundQueue);
    const ports = createPorts({
      dynamo,
      sqs,
      tables,
      queueUrl: queues.queueUrl,
      outboundQueueUrl: queues.outbound.queueUrl,
      ...(options.pageSize !== undefined ? { pageSize: options.pageSize } : {}),
      ...(options.now !== undefined ? { now: options.now } : {}),
      ...(options.edge !== undefined ? { edge: options.edge } : {}),
    });
    return { aws, ports, tables, queues, clients: { dynamoBase, dynamo, sqs }, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
