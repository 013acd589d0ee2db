/**
 * Real adapters behind the ports (../ports.ts) and their wiring. Safe to bundle into a Lambda:
 * the SQLite adapters (`sqlite/`) load a native module and are imported by the local default only.
 */
export * from './clients.ts';
export * from './wiring.ts';
export * from './edge-http.ts';
export * from './dynamodb/tables.ts';
export { DynamoDeferredMessageStore, messageSortKey } from './dynamodb/deferred-messages.ts';
export { DynamoSubscriptionStore } from './dynamodb/subscriptions.ts';
export { DynamoDeliverySessionStore, type SessionStoreOptions } from './dynamodb/delivery-sessions.ts';
export type { StoreOptions } from './dynamodb/items.ts';
export { SqsDeliveryQueue } from './sqs/delivery-queue.ts';
export { SqsImdnOutbox, failureImdnJob, parseFailureImdnJob } from './sqs/imdn-outbox.ts';
export { SqsPoller, type SqsBatchHandler, type SqsPollerOptions } from './sqs/poller.ts';
export { DELIVERY_QUEUE, OUTBOUND_QUEUE, type DeliveryQueueSpec, type QueueSpec } from './sqs/queues.ts';
