/**
 * SDK clients. In AWS they take everything from the Lambda/Fargate environment; pointed at the
 * local stack they get every setting explicitly (dummy credentials, us-east-1, the endpoint), so
 * the SDK never consults AWS config files, profiles or AWS_* endpoint variables.
 */
import './aws-sdk-quiet.ts';
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { SQSClient, type SQSClientConfig } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

export const LOCAL_REGION = 'us-east-1';
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const;

/** Settings the SDK would otherwise look up in the environment or ~/.aws. */
function localSettings(endpoint: string) {
  return {
    endpoint,
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

export function localDynamoClient(endpoint: string): DynamoDBClient {
  const config: DynamoDBClientConfig = {
    ...localSettings(endpoint),
    accountIdEndpointMode: 'disabled',
    endpointDiscoveryEnabled: false,
  };
  return new DynamoDBClient(config);
}

export function localSqsClient(endpoint: string): SQSClient {
  const config: SQSClientConfig = { ...localSettings(endpoint) };
  return new SQSClient(config);
}

/** Clients for the AWS deployment: region and credentials from the task/function role. */
export function awsClients(): { dynamo: DynamoDBDocumentClient; sqs: SQSClient } {
  return { dynamo: documentClient(new DynamoDBClient({})), sqs: new SQSClient({}) };
}
