/**
 * The edge in AWS mode (HANDLER_MODE=lambda): SUBSCRIBE, INVITE and MESSAGE go to the functions
 * by Lambda Invoke (RequestResponse). A stand-in for the Lambda API on loopback answers as the
 * functions would; a function error or a function that does not answer in time gets 503 with
 * Retry-After, never silence. The IMDN failure reports the functions queue (OUTBOUND_QUEUE_URL,
 * here on local-aws-sqs) are sent by the edge.
 */
import { createServer, type Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { generate } from 'selfsigned';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpmClient } from '#functions/edge/cpm-client.ts';
import { localSqsClient } from '#shared/adapters/clients.ts';
import { ensureQueues, startLocalAws, type LocalAws } from '../../support/aws-local/index.ts';
import { SqsImdnOutbox } from '#shared/adapters/sqs/imdn-outbox.ts';
import { ConfigError, loadConfig } from '#shared/config.ts';
import { EVENT_PACKAGE } from '#shared/deferred/names.ts';
import type { SipHandlerResult, SipRequestEvent } from '#shared/events.ts';
import { getHeader } from '#shared/sip/messages/index.ts';
import { startTestEdge, type TestEdge } from '../../e2e/support.ts';

const NLB_HOST = 'nlb.test';
const CLIENT_ADDRESS = '127.0.0.7';

/**
 * The NLB's TLS listener on loopback: ends TLS with its own certificate and opens plain TCP to
 * the task's offload port from the client's own address (the NLB preserves client addresses).
 */
async function startTlsTerminator(targetPort: number): Promise<{ port: number; close: () => void }> {
  const pems = await generate([{ name: 'commonName', value: NLB_HOST }], { keySize: 2048 });
  const sockets = new Set<net.Socket>();
  const server = tls.createServer({ key: pems.private, cert: pems.cert }, (front) => {
    const back = net.connect({ host: '127.0.0.1', port: targetPort, localAddress: front.remoteAddress });
    for (const s of [front, back]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    front.pipe(back).pipe(front);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe('edge with HANDLER_MODE=lambda', () => {
  let lambda: Server;
  let edge: TestEdge;
  let client: CpmClient;
  let aws: LocalAws;
  let sqs: SQSClient;
  let outboundQueueUrl: string;
  let deliveryQueueUrl: string;
  let nlb: { port: number; close: () => void };
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
    aws = await startLocalAws({ dataDir: undefined });
    sqs = localSqsClient(aws.sqsEndpoint);
    const queues = await ensureQueues(sqs);
    outboundQueueUrl = queues.outbound.queueUrl;
    deliveryQueueUrl = queues.queueUrl;
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_LAMBDA: `http://127.0.0.1:${(lambda.address() as AddressInfo).port}`,
      AWS_ENDPOINT_URL_SQS: aws.sqsEndpoint,
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
        OUTBOUND_QUEUE_URL: outboundQueueUrl,
        DELIVERY_QUEUE_URL: deliveryQueueUrl,
        EDGE_ID: 'http://127.0.0.1:1',
        // As the CDK app sets them: the NLB's listeners per transport, TLS ended at the NLB.
        SIP_ADVERTISE_UDP: `${NLB_HOST}:5060`,
        SIP_ADVERTISE_TLS: `${NLB_HOST}:5061`,
        SIP_ADVERTISE_MSRP: `${NLB_HOST}:2855`,
        SIP_TLS_OFFLOAD_PORT: '0',
      },
    });
    nlb = await startTlsTerminator(edge.ports.tlsOffload!);
    client = await CpmClient.connect({
      transport: 'udp',
      server: { host: '127.0.0.1', port: edge.ports.udp! },
      user: 'sip:alice@example.com',
    });
  });
  afterAll(async () => {
    nlb?.close();
    client?.close();
    await edge?.close();
    lambda?.closeAllConnections();
    lambda?.close();
    sqs?.destroy();
    await aws?.stop();
    process.env = saved;
  });

  it("answers SUBSCRIBE from the subscribe function, with the edge's flow and id in the event", async () => {
    const { response } = await client.subscribe({ expires: 600 });
    expect(response.status).toBe(200);
    expect(getHeader(response, 'Expires')).toBe('600');
    // The NLB's UDP listener, not the task's own address.
    expect(getHeader(response, 'Contact')).toBe(`<sip:pf@${NLB_HOST}:5060;transport=udp>`);
    const call = invoked.find((i) => i.fn === 'fn-subscribe');
    expect(call?.event.method).toBe('SUBSCRIBE');
    expect(call?.event.flow).toMatchObject({
      edgeId: 'http://127.0.0.1:1',
      transport: 'udp',
      remoteAddress: '127.0.0.1',
    });
    expect(call?.event.headers.some((h) => h.name === 'Event' && h.value === EVENT_PACKAGE)).toBe(true);
  });

  it('behind the NLB: TLS ended on its own port, the client address kept, sips: on 5061 advertised', async () => {
    const before = invoked.length;
    // The client connects from 127.0.0.7; the NLB stand-in keeps that address towards the task.
    const raw = net.connect({ host: '127.0.0.1', port: nlb.port, localAddress: CLIENT_ADDRESS });
    const socket = tls.connect({ socket: raw, servername: NLB_HOST, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    const local = `${CLIENT_ADDRESS}:${raw.localPort}`;
    socket.write(
      [
        'SUBSCRIBE sip:alice@example.com SIP/2.0',
        `Via: SIP/2.0/TLS ${local};branch=z9hG4bK-nlb-1;rport`,
        'Max-Forwards: 70',
        'From: <sips:alice@example.com>;tag=nlb-a',
        'To: <sips:alice@example.com>',
        'Call-ID: nlb-view-1',
        'CSeq: 1 SUBSCRIBE',
        `Contact: <sips:alice@${local};transport=tls>`,
        `Event: ${EVENT_PACKAGE}`,
        'Expires: 600',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
    );
    const head = await new Promise<string>((resolve, reject) => {
      let text = '';
      socket.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        if (text.includes('\r\n\r\n')) resolve(text);
      });
      socket.once('error', reject);
    });
    socket.destroy();
    expect(head).toMatch(/^SIP\/2\.0 200 /);
    expect(head).toMatch(
      new RegExp(`\r\nContact: <sips:pf@${NLB_HOST.replaceAll('.', '\\.')}:5061;transport=tls>\r\n`, 'i'),
    );
    const call = invoked.slice(before).find((i) => i.fn === 'fn-subscribe');
    expect(call?.event.flow).toMatchObject({ transport: 'tls', remoteAddress: CLIENT_ADDRESS });
  });

  it('answers 503 with Retry-After when the function fails', async () => {
    const { response } = await client.invite([{ id: '01JDQ8R0Z5K3N1V6X7Y8Z9A0BC', action: 'retrieve' }]);
    expect(response.status).toBe(503);
    expect(getHeader(response, 'Retry-After')).toBeDefined();
  });

  it('answers 503 with Retry-After when the function does not answer in time', async () => {
    const res = await client.request(
      client.buildRequest('MESSAGE', {
        uri: 'sip:bob@example.com',
        body: Buffer.from('hi'),
        contentType: 'text/plain',
      }),
    );
    expect(res.status).toBe(503);
    expect(getHeader(res, 'Retry-After')).toBeDefined();
  });

  it('sends the IMDN failure reports the functions put on the outbound queue', async () => {
    const bob = await CpmClient.connect({
      transport: 'udp',
      server: { host: '127.0.0.1', port: edge.ports.udp! },
      user: 'sip:bob@127.0.0.1',
    });
    try {
      const bobUri = `sip:bob@127.0.0.1:${bob.localPort}`;
      await new SqsImdnOutbox(sqs, outboundQueueUrl).failed({
        user: 'sip:alice@example.com',
        id: '01JDQ8R0Z5K3N1V6X7Y8Z9A0BC',
        messageId: 'expired-in-aws',
        from: bobUri,
        to: 'sip:alice@example.com',
        date: '2026-03-01T10:00:00.000Z',
        contentType: 'text/plain',
        size: 2,
        dispositionNotification: 'negative-delivery',
        arrivedAt: '2026-03-01T10:00:01.000Z',
        expiresAt: 1_900_000_000,
      });
      const imdn = await bob.nextRequest((r) => r.method === 'MESSAGE', 15_000);
      expect(imdn.uri).toBe(bobUri);
      expect(imdn.body.toString('utf8')).toContain('<message-id>expired-in-aws</message-id>');
    } finally {
      bob.close();
    }
  });

  it('refuses to start without OUTBOUND_QUEUE_URL, naming it', () => {
    const env = {
      HANDLER_MODE: 'lambda',
      SUBSCRIBE_FUNCTION_NAME: 'fn-subscribe',
      INVITE_FUNCTION_NAME: 'fn-invite',
      DEPOSIT_FUNCTION_NAME: 'fn-deposit',
    };
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(/^OUTBOUND_QUEUE_URL: required with HANDLER_MODE=lambda/);
  });

  it('refuses to start without DELIVERY_QUEUE_URL (where its delivery reports go), naming it', () => {
    const env = {
      HANDLER_MODE: 'lambda',
      SUBSCRIBE_FUNCTION_NAME: 'fn-subscribe',
      INVITE_FUNCTION_NAME: 'fn-invite',
      DEPOSIT_FUNCTION_NAME: 'fn-deposit',
      OUTBOUND_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/1/q',
    };
    expect(() => loadConfig(env)).toThrow(/^DELIVERY_QUEUE_URL: required with HANDLER_MODE=lambda/);
  });
});
