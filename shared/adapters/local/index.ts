/** The local default's AWS stand-ins and the helpers that prepare them. */
export { startLocalAws, type LocalAws, type LocalAwsOptions } from './local-aws.ts';
export { ensureQueues, ensureTables, type EnsuredQueue, type EnsuredQueues } from './ensure.ts';
export { startLocalBackend, type LocalBackend, type LocalBackendOptions } from './backend.ts';
export { createPorts, awsPortsFromEnv, type CreatePortsOptions, type Ports } from '../wiring.ts';
export { LOCAL_CREDENTIALS, LOCAL_REGION, documentClient, localDynamoClient, localSqsClient } from '../clients.ts';
export { SqsPoller, type SqsBatchHandler, type SqsPollerOptions } from '../sqs/poller.ts';
