/**
 * The edge in AWS mode (HANDLER_MODE=lambda): SUBSCRIBE, INVITE and MESSAGE go to the functions
 * by Lambda Invoke (RequestResponse). A stand-in for the Lambda API on loopback answers as the
 * functions would; a function error or a function that does not answer in time gets 503 with
 * Retry-After, never silence.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpmClient } from '../../../functions/edge/cpm-client.ts';
import { EVENT_PACKAGE } from '../../../shared/deferred/names.ts';
import type { SipHandlerResult, SipRequestEvent } from '../../../shared/events.ts';
import { getHeader } from '../../../shared/sip/messages/index.ts';
import { startTestEdge, type TestEdge } from '../../e2e/support.ts';

describe('edge with HANDLER_MODE=lambda', () => {
  let lambda: Server;
  let edge: TestEdge;
  let client: CpmClient;
  const invoked: { fn: string; event: SipRequestEvent }[] = [];
  const saved = { ...process.env };

  beforeAll(async () => {
    lambda = createServer((req, res) => {
      const fn = decodeURIComponent(/\/functions\/([^/]+)\/invocations/.exec(req.url ?? '')?.[1] ?? '');
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const event = JSON.parse(Buffer.concat(chunks).toString()) as SipRequestEvent;
        invoked.push({ fn, event });
        if (fn === 'fn-invite') {
          res.writeHead(200, { 'x-amz-function-error': 'Unhandled', 'content-type': 'application/json' });
          res.end(JSON.stringify({ errorType: 'Error', errorMessage: 'boom' }));
          return;
        }
        if (fn === 'fn-deposit') return; // never answers: the edge's timeout must speak
        const result: SipHandlerResult = {
          response: { status: 200, toTag: 'lambda-tag', headers: [{ name: 'Expires', value: '600' }] },
        };
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(result));
      });
    });
    await new Promise<void>((resolve) => lambda.listen(0, '127.0.0.1', () => resolve()));
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_LAMBDA: `http://127.0.0.1:${(lambda.address() as AddressInfo).port}`,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
    });
    edge = await startTestEdge({
      env: {
        HANDLER_MODE: 'lambda',
        HANDLER_TIMEOUT_MS: '800',
        SUBSCRIBE_FUNCTION_NAME: 'fn-subscribe',
        INVITE_FUNCTION_NAME: 'fn-invite',
        DEPOSIT_FUNCTION_NAME: 'fn-deposit',
        EDGE_ID: 'http://127.0.0.1:1',
      },
    });
    client = await CpmClient.connect({ transport: 'udp', server: { host: '127.0.0.1', port: edge.ports.udp! }, user: 'sip:alice@example.com' });
  });
  afterAll(async () => {
    client?.close();
    await edge?.close();
    lambda?.closeAllConnections();
    lambda?.close();
    process.env = saved;
  });

  it('answers SUBSCRIBE from the subscribe function, with the edge\'s flow and id in the event', async () => {
    const { response } = await client.subscribe({ expires: 600 });
    expect(response.status).toBe(200);
    expect(getHeader(response, 'Expires')).toBe('600');
    expect(getHeader(response, 'Contact')).toMatch(/^<sip:pf@127\.0\.0\.1:\d+;transport=udp>$/);
    const call = invoked.find((i) => i.fn === 'fn-subscribe');
    expect(call?.event.method).toBe('SUBSCRIBE');
    expect(call?.event.flow).toMatchObject({ edgeId: 'http://127.0.0.1:1', transport: 'udp', remoteAddress: '127.0.0.1' });
    expect(call?.event.headers.some((h) => h.name === 'Event' && h.value === EVENT_PACKAGE)).toBe(true);
  });

  it('answers 503 with Retry-After when the function fails', async () => {
    const { response } = await client.invite([{ id: '01JDQ8R0Z5K3N1V6X7Y8Z9A0BC', action: 'retrieve' }]);
    expect(response.status).toBe(503);
    expect(getHeader(response, 'Retry-After')).toBeDefined();
  });

  it('answers 503 with Retry-After when the function does not answer in time', async () => {
    const res = await client.request(
      client.buildRequest('MESSAGE', { uri: 'sip:bob@example.com', body: Buffer.from('hi'), contentType: 'text/plain' }),
    );
    expect(res.status).toBe(503);
    expect(getHeader(res, 'Retry-After')).toBeDefined();
  });
});
