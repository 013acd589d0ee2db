/**
 * SDK clients. In AWS they take everything from the Lambda/Fargate environment; pointed at the
 * local stack they get every setting explicitly (dummy credentials, us-east-1, the endpoint), so
 * the SDK never consults AWS config files, profiles or AWS_* endpoint variables.
 */
import './aws-sdk-quiet.ts';
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { SQSClient, type SQSClientConfig } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';

/**
 * Every SDK client gives up on a connection not made within `connectionTimeoutMs` and on an
 * answer not begun within `requestTimeoutMs` (then the SDK retries within maxAttempts): without
 * them a call to an unreachable endpoint (no route from a subnet) hangs until the Lambda
 * timeout and the whole invocation dies.
 */
export interface ClientTimeouts {
  connectionTimeoutMs: number;
  requestTimeoutMs: number;
}

/** In-region AWS endpoints connect in milliseconds and answer single-item calls in tens. */
export const CLIENT_TIMEOUTS: ClientTimeouts = { connectionTimeoutMs: 1_000, requestTimeoutMs: 3_000 };
/** An SQS long poll holds the request up to 20 s (WaitTimeSeconds) before answering. */
export const LONG_POLL_TIMEOUTS: ClientTimeouts = { connectionTimeoutMs: 1_000, requestTimeoutMs: 25_000 };

/** The emulators on loopback, on a machine the tests share: generous, but still bounded. */
export const LOCAL_TIMEOUTS: ClientTimeouts = { connectionTimeoutMs: 5_000, requestTimeoutMs: 30_000 };

export function requestHandler(timeouts: ClientTimeouts = CLIENT_TIMEOUTS): NodeHttpHandler {
  return new NodeHttpHandler({
    connectionTimeout: timeouts.connectionTimeoutMs,
    requestTimeout: timeouts.requestTimeoutMs,
    // Without it this handler version only logs a warning when requestTimeout passes.
    throwOnRequestTimeout: true,
  });
}

export const LOCAL_REGION = 'us-east-1';
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const;

/** Settings the SDK would otherwise look up in the environment or ~/.aws. */
function localSettings(endpoint: string, timeouts: ClientTimeouts) {
  return {
    endpoint,
    requestHandler: requestHandler(timeouts),
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    ignoreConfiguredEndpointUrls: true,
    useDualstackEndpoint: false,
    useFipsEndpoint: false,
    maxAttempts: 3,
    retryMode: 'standard',
    defaultsMode: 'standard',
    userAgentAppId: 'deferred-cpm-local',
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  } as const;
}

/** A document client over a base client; binary stays binary, undefined attributes are dropped. */
export function documentClient(base: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(base, {
    marshallOptions: { removeUndefinedValues: true },
    unmarshallOptions: { wrapNumbers: false },
  });
}

export function localDynamoClient(endpoint: string, timeouts: ClientTimeouts = LOCAL_TIMEOUTS): DynamoDBClient {
  const config: DynamoDBClientConfig = {
    ...localSettings(endpoint, timeouts),
    accountIdEndpointMode: 'disabled',
    endpointDiscoveryEnabled: false,
  };
  return new DynamoDBClient(config);
}

export function localSqsClient(endpoint: string, timeouts: ClientTimeouts = LOCAL_TIMEOUTS): SQSClient {
  const config: SQSClientConfig = { ...localSettings(endpoint, timeouts) };
  return new SQSClient(config);
}

/** AWS: region and credentials from the task/function role; the timeouts above. */
export function awsDynamoClient(timeouts: ClientTimeouts = CLIENT_TIMEOUTS): DynamoDBClient {
  return new DynamoDBClient({ requestHandler: requestHandler(timeouts) });
}

/** AWS SQS; `LONG_POLL_TIMEOUTS` for a client that receives with long polls. */
export function awsSqsClient(timeouts: ClientTimeouts = CLIENT_TIMEOUTS): SQSClient {
  return new SQSClient({ requestHandler: requestHandler(timeouts) });
}

/** Clients for the AWS deployment: region and credentials from the task/function role. */
export function awsClients(): { dynamo: DynamoDBDocumentClient; sqs: SQSClient } {
  return { dynamo: documentClient(awsDynamoClient()), sqs: awsSqsClient() };
}
