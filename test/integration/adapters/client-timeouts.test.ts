/**
 * Every SDK client gives up on an endpoint that takes the connection and never answers (what a
 * call from a subnet without a route, or to a wedged endpoint, looks like) instead of hanging
 * until the Lambda timeout.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsDynamoClient, awsSqsClient, localDynamoClient, localSqsClient } from '#shared/adapters/clients.ts';
import { LambdaInvoker } from '#shared/adapters/lambda-invoker.ts';

describe('SDK client timeouts', () => {
  let server: Server;
  let endpoint: string;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    server = createServer((socket) => {
      sockets.push(socket); // accepted, never answered
      socket.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const short = { connectionTimeoutMs: 200, requestTimeoutMs: 200 };

  it('DynamoDB: a silent endpoint fails the call', async () => {
    const client = localDynamoClient(endpoint, short);
    await expect(client.send(new GetItemCommand({ TableName: 't', Key: { user: { S: 'u' } } }))).rejects.toThrow(
      /timeout|timed out/i,
    );
    client.destroy();
  });

  it('SQS: a silent endpoint fails the send', async () => {
    const client = localSqsClient(endpoint, short);
    await expect(
      client.send(new SendMessageCommand({ QueueUrl: `${endpoint}/000000000000/q`, MessageBody: 'x' })),
    ).rejects.toThrow(/timeout|timed out/i);
    client.destroy();
  });

  it('Lambda Invoke: a silent endpoint fails the call within the invoker budget', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_LAMBDA: endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
    });
    try {
      const invoker = new LambdaInvoker({
        functions: { subscribe: 's', invite: 'i', deposit: 'd' },
        timeoutMs: 300,
        maxAttempts: 1,
      });
      await expect(invoker.subscribe({} as never)).rejects.toThrow();
    } finally {
      process.env = saved;
    }
    expect(InvokeCommand).toBeDefined();
  });

  it('the AWS-mode clients carry a request handler with both timeouts', () => {
    for (const client of [awsDynamoClient(), awsSqsClient()]) {
      expect(client.config.requestHandler).toBeInstanceOf(NodeHttpHandler);
      client.destroy();
    }
  });
});
