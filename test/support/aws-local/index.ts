/** AWS emulators (dynalite, local-aws-sqs) for the tests of the DynamoDB/SQS adapters, and their helpers. */
export { startLocalAws, type LocalAws, type LocalAwsOptions } from './local-aws.ts';
export { ensureQueues, ensureTables, type EnsuredQueue, type EnsuredQueues } from './ensure.ts';
export { startLocalBackend, type LocalBackend, type LocalBackendOptions } from './backend.ts';
export { createPorts, awsPortsFromEnv, type CreatePortsOptions, type Ports } from '#shared/adapters/wiring.ts';
export {
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  documentClient,
  localDynamoClient,
  localSqsClient,
} from '#shared/adapters/clients.ts';
export { SqsPoller, type SqsBatchHandler, type SqsPollerOptions } from '#shared/adapters/sqs/poller.ts';
