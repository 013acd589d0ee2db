/**
 * Wiring: the ports over real clients. The local default and the AWS handlers call the same
 * factory; only the clients' endpoints and the names' source differ.
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type {
  ChangeFeed,
  DeferredMessageStore,
  DeliveryQueue,
  DeliverySessionStore,
  EdgeGateway,
  ImdnOutbox,
  SubscriptionStore,
} from '../ports.ts';
import { awsClients } from './clients.ts';
import { DynamoDeferredMessageStore } from './dynamodb/deferred-messages.ts';
import { DynamoDeliverySessionStore } from './dynamodb/delivery-sessions.ts';
import { DynamoSubscriptionStore } from './dynamodb/subscriptions.ts';
import type { TableNames } from './dynamodb/tables.ts';
import { EdgeChangeFeed, EdgeHttpGateway, type EdgeHttpOptions } from './edge-http.ts';
import { SqsDeliveryQueue } from './sqs/delivery-queue.ts';
import { SqsImdnOutbox } from './sqs/imdn-outbox.ts';

/** Environment variables the CDK app sets on every function (one name each). */
export const MESSAGES_TABLE_ENV = 'MESSAGES_TABLE';
export const SUBSCRIPTIONS_TABLE_ENV = 'SUBSCRIPTIONS_TABLE';
export const SESSIONS_TABLE_ENV = 'SESSIONS_TABLE';
export const DELIVERY_QUEUE_URL_ENV = 'DELIVERY_QUEUE_URL';
export const OUTBOUND_QUEUE_URL_ENV = 'OUTBOUND_QUEUE_URL';

export interface Ports {
  messages: DeferredMessageStore;
  subscriptions: SubscriptionStore;
  sessions: DeliverySessionStore;
  queue: DeliveryQueue;
  edge: EdgeGateway;
  changes: ChangeFeed;
  outbox: ImdnOutbox;
}

export interface CreatePortsOptions {
  dynamo: DynamoDBDocumentClient;
  sqs: SQSClient;
  tables: TableNames;
  queueUrl: string;
  /** The outbound queue (IMDN reports the edge sends). */
  outboundQueueUrl: string;
  /** Query page size; unset reads DynamoDB's 1 MB pages. */
  pageSize?: number;
  /** Epoch milliseconds, for reads that take no `now` argument. */
  now?: () => number;
  edge?: EdgeHttpOptions;
}

export function createPorts(options: CreatePortsOptions): Ports {
  const storeOptions = options.pageSize !== undefined ? { pageSize: options.pageSize } : {};
  const clock = options.now !== undefined ? { now: options.now } : {};
  const subscriptions = new DynamoSubscriptionStore(options.dynamo, options.tables.subscriptions, storeOptions);
  const edge = new EdgeHttpGateway(options.edge);
  const messages = new DynamoDeferredMessageStore(options.dynamo, options.tables.messages, storeOptions);
  return {
    messages,
    subscriptions,
    sessions: new DynamoDeliverySessionStore(options.dynamo, options.tables.sessions, clock),
    queue: new SqsDeliveryQueue(options.sqs, options.queueUrl),
    edge,
    // The fan-out after a deposit or delivery passes on the summary revision it left.
    changes: new EdgeChangeFeed(subscriptions, edge, { ...clock, revisions: messages.revisions }),
    outbox: new SqsImdnOutbox(options.sqs, options.outboundQueueUrl),
  };
}

export interface EnvResources {
  tables: TableNames;
  queueUrl: string;
  outboundQueueUrl: string;
  /** The edges' control API token (CONTROL_TOKEN), when set. */
  edge?: EdgeHttpOptions;
}

/** Table names and queue URLs from the environment; a missing one is named in the error. */
export function resourcesFromEnv(env: Record<string, string | undefined>): EnvResources {
  const need = (name: string): string => {
    const value = env[name]?.trim();
    if (!value) throw new Error(`environment variable ${name} is not set`);
    return value;
  };
  return {
    tables: {
      messages: need(MESSAGES_TABLE_ENV),
      subscriptions: need(SUBSCRIPTIONS_TABLE_ENV),
      sessions: need(SESSIONS_TABLE_ENV),
    },
    queueUrl: need(DELIVERY_QUEUE_URL_ENV),
    outboundQueueUrl: need(OUTBOUND_QUEUE_URL_ENV),
    ...(env.CONTROL_TOKEN ? { edge: { controlToken: env.CONTROL_TOKEN } } : {}),
  };
}

/** AWS mode: clients from the function's role and region, names from the environment. */
export function awsPortsFromEnv(env: Record<string, string | undefined> = process.env): Ports {
  const resources = resourcesFromEnv(env);
  const { dynamo, sqs } = awsClients();
  return createPorts({ dynamo, sqs, ...resources });
}
