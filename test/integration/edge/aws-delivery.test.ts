/**
 * The AWS delivery path end to end (README "What it costs": `deliver` twice per session, the MSRP
 * wait on the edge task), over the real adapters on the emulators: DynamoDB on dynalite, SQS on
 * local-aws-sqs. The edge runs with HANDLER_MODE=lambda; a stand-in for the Lambda API on loopback
 * runs the functions' own Lambda entries (subscribe, deposit, invite), and a stand-in for the
 * SQS event source mapping (SqsPoller) hands the delivery queue to `deliver`'s Lambda entry.
 *
 * A real client subscribes, bob deposits three messages by SIP MESSAGE, the client pulls them
 * and leaves the second SEND unanswered. `deliver` claims the messages and hands them to the edge
 * (POST /control/transfer); the edge SENDs them over the client's MSRP connection and queues its
 * report on the delivery queue; `deliver` settles it: the two answered 200 leave DynamoDB, the
 * unanswered one is given back, the client gets BYE and a NOTIFY listing what is left. SQS
 * delivers at least once: the same report queued again settles nothing more.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CpmClient, type DialogInfo } from '#functions/edge/cpm-client.ts';
import { wrapAsCpim } from '#shared/cpim/cpim.ts';
import { decodeList } from '#shared/deferred/list-codec.ts';
import type { DeliveryJob, DeliveryReport } from '#shared/deferred/model.ts';
import { CPIM_CONTENT_TYPE } from '#shared/deferred/names.ts';
import { connectMsrp, type MsrpClient } from '#shared/msrp/client.ts';
import type { MsrpRequest } from '#shared/msrp/framing.ts';
import { parseMsrpOffer } from '#shared/sdp/msrp-sdp.ts';
import { getHeader, type SipRequest } from '#shared/sip/messages/index.ts';
import { SqsPoller, startLocalBackend, type LocalBackend } from '../../support/aws-local/index.ts';
import { freePort } from '../../support/free-port.ts';
import { eventually, startTestEdge, type TestEdge } from '../../e2e/support.ts';

const ALICE = 'sip:alice@example.com';
const BOB = 'sip:bob@example.net';
const BODIES = ['first of three', 'second of three, never answered', 'third of three'];
const CONTROL_TOKEN = 'aws-delivery-test-control-token-0123456789';
/** The functions' names as the edge invokes them (SUBSCRIBE/INVITE/DEPOSIT_FUNCTION_NAME). */
const FUNCTIONS = { subscribe: 'fn-subscribe', invite: 'fn-invite', deposit: 'fn-deposit' } as const;

type LambdaEntry = (event: unknown, context: Context) => Promise<unknown>;

/** What Lambda passes an invocation (the entries' middlewares read it). */
function lambdaContext(functionName: string): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => 60_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** The Lambda API's Invoke (RequestResponse) on loopback, running `entries[name]` in this process. */
async function startLambdaApi(entries: Map<string, LambdaEntry>): Promise<Server> {
  const server = createServer((req, res) => {
    const name = decodeURIComponent(/\/functions\/([^/]+)\/invocations/.exec(req.url ?? '')?.[1] ?? '');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const entry = entries.get(name);
      const answer = (headers: Record<string, string>, body: unknown) => {
        res.writeHead(200, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify(body));
      };
      if (!entry) {
        res.writeHead(404, { 'content-type': 'application/json', 'x-amzn-errortype': 'ResourceNotFoundException' });
        res.end(JSON.stringify({ message: `Function not found: ${name}` }));
        return;
      }
      const event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
      entry(event, lambdaContext(name)).then(
        (result) => answer({}, result),
        (err: unknown) =>
          answer({ 'x-amz-function-error': 'Unhandled' }, { errorType: 'Error', errorMessage: String(err) }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/**
 * The functions' metrics as CloudWatch would count them: their EMF lines (Powertools Metrics
 * prints one document per invocation on stdout), summed by name; other output passes through.
 */
function captureEmf(): Map<string, number> {
  const totals = new Map<string, number>();
  const write = process.stdout.write.bind(process.stdout) as (chunk: unknown, ...rest: unknown[]) => boolean;
  vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: unknown, ...rest: unknown[]) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
    if (!text.startsWith('{"_aws"')) return write(chunk, ...rest);
    for (const line of text.split('\n').filter(Boolean)) {
      const doc = JSON.parse(line) as Record<string, unknown> & {
        _aws: { CloudWatchMetrics: { Metrics: { Name: string; Unit: string }[] }[] };
      };
      for (const { Name, Unit } of doc._aws.CloudWatchMetrics.flatMap((m) => m.Metrics)) {
        if (Unit !== 'Count') continue;
        const value = doc[Name] as number | number[];
        const sum = Array.isArray(value) ? value.reduce((a, b) => a + b, 0) : value;
        totals.set(Name, (totals.get(Name) ?? 0) + sum);
      }
    }
    return true;
  }) as typeof process.stdout.write);
  return totals;
}

/** A delivery queue record as `deliver` reads it. */
type QueueBody = DeliveryJob | DeliveryReport;
const isReport = (body: QueueBody): body is DeliveryReport => (body as DeliveryReport).type === 'delivery-report';

describe('AWS delivery: deliver hands off, the edge SENDs and reports, deliver settles', () => {
  let backend: LocalBackend;
  let lambdaApi: Server;
  let edge: TestEdge;
  let alice: CpmClient;
  let bob: CpmClient;
  let poller: SqsPoller;
  const entries = new Map<string, LambdaEntry>();
  /** Every delivery queue record `deliver` handled, with whether it reported it failed. */
  const handled: { body: QueueBody; failed: boolean }[] = [];
  /** Report bodies queued a second time, as SQS may deliver one (at least once). */
  const duplicated = new Set<string>();
  const requests: SipRequest[] = [];
  const saved = { ...process.env };
  let metrics: Map<string, number>;

  beforeAll(async () => {
    metrics = captureEmf();
    backend = await startLocalBackend({ dataDir: undefined });
    lambdaApi = await startLambdaApi(entries);
    // The edge id is its control API's base URL (edge-id.ts), recorded with the sessions it owns:
    // `deliver` reaches the edge there. The port must be known before the edge starts.
    const adminPort = await freePort();
    const edgeId = `http://127.0.0.1:${adminPort}`;
    // What the CDK app gives the functions and the edge task; the SDK clients read the
    // endpoints of the emulators from AWS_ENDPOINT_URL_*.
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_LAMBDA: `http://127.0.0.1:${(lambdaApi.address() as AddressInfo).port}`,
      AWS_ENDPOINT_URL_DYNAMODB: backend.aws.dynamoEndpoint,
      AWS_ENDPOINT_URL_SQS: backend.aws.sqsEndpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      MESSAGES_TABLE: backend.tables.messages,
      SUBSCRIPTIONS_TABLE: backend.tables.subscriptions,
      SESSIONS_TABLE: backend.tables.sessions,
      DELIVERY_QUEUE_URL: backend.queues.queueUrl,
      OUTBOUND_QUEUE_URL: backend.queues.outbound.queueUrl,
      CONTROL_TOKEN,
      POWERTOOLS_TRACE_ENABLED: 'false',
      POWERTOOLS_LOG_LEVEL: 'ERROR',
    });
    edge = await startTestEdge({
      env: {
        HANDLER_MODE: 'lambda',
        // Generous on a loaded machine: a function's answer is not what this test measures.
        HANDLER_TIMEOUT_MS: '20000',
        SUBSCRIBE_FUNCTION_NAME: FUNCTIONS.subscribe,
        INVITE_FUNCTION_NAME: FUNCTIONS.invite,
        DEPOSIT_FUNCTION_NAME: FUNCTIONS.deposit,
        OUTBOUND_QUEUE_URL: backend.queues.outbound.queueUrl,
        DELIVERY_QUEUE_URL: backend.queues.queueUrl,
        EDGE_ID: edgeId,
        ADMIN_PORT: String(adminPort),
        CONTROL_TOKEN,
      },
      // A SEND the client leaves unanswered ends in 408 after this (policy default 30 s).
      policy: { msrpTimeoutMs: 10_000 },
    });
    // The functions' SDP answers name the edge's MSRP listener (the NLB's in AWS), and their
    // session ids the owning task (its address from the edge id).
    process.env.SIP_ADVERTISE_MSRP = `127.0.0.1:${edge.ports.msrp}`;
    // The Lambda entries read their settings when loaded, as in a cold start.
    const entry = (module: { handler: unknown }) => module.handler as LambdaEntry;
    entries.set(FUNCTIONS.subscribe, entry(await import('#functions/subscribe/handler.ts')));
    entries.set(FUNCTIONS.invite, entry(await import('#functions/invite/handler.ts')));
    entries.set(FUNCTIONS.deposit, entry(await import('#functions/deposit/handler.ts')));
    const deliver = entry(await import('#functions/deliver/handler.ts'));

    // The event source mapping: `deliver` gets each record; the first copy of each report is
    // queued again, as SQS may hand a message out twice.
    poller = new SqsPoller({
      client: backend.clients.sqs,
      queueUrl: backend.queues.queueUrl,
      waitTimeSeconds: 1,
      concurrency: 2,
      handler: async (event: SQSEvent) => {
        const out = (await deliver(event, lambdaContext('fn-deliver'))) as SQSBatchResponse;
        const failed = new Set(out.batchItemFailures.map((f) => f.itemIdentifier));
        for (const record of event.Records) {
          const body = JSON.parse(record.body) as QueueBody;
          handled.push({ body, failed: failed.has(record.messageId) });
          if (isReport(body) && !duplicated.has(record.body)) {
            duplicated.add(record.body);
            await backend.clients.sqs.send(
              new SendMessageCommand({ QueueUrl: backend.queues.queueUrl, MessageBody: record.body }),
            );
          }
        }
        return out;
      },
      onError: (err) => console.warn(`delivery queue poll: ${String(err)}`),
    });
    poller.start();

    alice = await CpmClient.connect({
      transport: 'udp',
      server: { host: '127.0.0.1', port: edge.ports.udp! },
      user: ALICE,
    });
    alice.on('request', (r: SipRequest) => requests.push(r));
    bob = await CpmClient.connect({
      transport: 'tcp',
      server: { host: '127.0.0.1', port: edge.ports.tcp! },
      user: BOB,
    });
  });

  afterAll(async () => {
    await poller?.stop();
    alice?.close();
    bob?.close();
    await edge?.close();
    lambdaApi?.closeAllConnections();
    lambdaApi?.close();
    await backend?.stop();
    process.env = saved;
    vi.restoreAllMocks();
  });

  const nowSec = () => Math.floor(Date.now() / 1000);
  const reportsOf = (sessionId: string) =>
    handled.filter((h) => isReport(h.body) && h.body.sessionId === sessionId && !h.failed);
  const byesOf = (dialog: DialogInfo) =>
    requests.filter((r) => r.method === 'BYE' && getHeader(r, 'Call-ID') === dialog.callId);

  /** INVITE retrieving `ids`, then connect to the answer's MSRP path, answering with `respond`. */
  async function pull(ids: string[], respond: (request: MsrpRequest) => number | null) {
    const inv = await alice.invite(ids.map((id) => ({ id, action: 'retrieve' as const })));
    expect(inv.response.status).toBe(200);
    const answer = parseMsrpOffer(inv.response.body.toString('utf8'));
    if (!answer.ok) throw new Error(answer.reason);
    const msrp: MsrpClient = await connectMsrp({ localPath: inv.msrpPath, remotePath: answer.path, respond });
    return { ...inv, msrp, sessionId: answer.path.split('/').at(-1)!.split(';')[0]! };
  }

  it('delivers the answered messages once, gives back the unanswered one, BYE, settles a repeated report once', async () => {
    const sub = await alice.subscribe({ expires: 600 });
    expect(sub.response.status).toBe(200);

    for (const [i, body] of BODIES.entries()) {
      const cpim = wrapAsCpim({
        from: BOB,
        to: ALICE,
        dateTime: new Date().toISOString(),
        messageId: `aws-delivery-${i}`,
        contentType: 'text/plain;charset=UTF-8',
        body: Buffer.from(body),
      });
      const res = await bob.request(
        bob.buildRequest('MESSAGE', { uri: ALICE, body: cpim, contentType: CPIM_CONTENT_TYPE }),
        20_000,
      );
      expect(res.status).toBe(202);
    }
    // Stored in DynamoDB by the deposit function, oldest first.
    const stored = await backend.ports.messages.list(ALICE, nowSec());
    expect(stored.map((m) => m.messageId)).toEqual(['aws-delivery-0', 'aws-delivery-1', 'aws-delivery-2']);
    const ids = stored.map((m) => m.id);
    expect(await backend.ports.messages.count(ALICE, nowSec())).toBe(3);

    // The second SEND is never answered: the edge's MSRP transaction times out (408).
    const first = await pull(ids, (req) => (req.body?.toString('utf8').includes(BODIES[1]!) ? null : 200));
    const bye = await alice.nextBye(first.dialog, 60_000);
    expect(getHeader(bye, 'CSeq')).toMatch(/ BYE$/);

    // Each message reached the client once over MSRP, the unanswered one included.
    const received = first.msrp.received.map((m) => m.body.toString('utf8'));
    for (const body of BODIES) expect(received.filter((r) => r.includes(body))).toHaveLength(1);
    expect(received).toHaveLength(3);

    // The report was queued twice; `deliver` settled both copies without failing either.
    await eventually(async () => reportsOf(first.sessionId).length === 2, 'the repeated report settled', 60_000);
    const [report] = reportsOf(first.sessionId);
    expect((report!.body as DeliveryReport).results.map((r) => [r.id, r.status])).toEqual([
      [ids[0], 200],
      [ids[1], 408],
      [ids[2], 200],
    ]);
    expect(handled.filter((h) => h.failed)).toEqual([]);

    // Answered 200: gone from DynamoDB. Unanswered: still stored (and given back: pulled below).
    expect(await backend.ports.messages.get(ALICE, ids[0]!, nowSec())).toBeUndefined();
    expect(await backend.ports.messages.get(ALICE, ids[2]!, nowSec())).toBeUndefined();
    const kept = await backend.ports.messages.get(ALICE, ids[1]!, nowSec());
    expect(kept?.messageId).toBe('aws-delivery-1');
    // Counted off once, although settled twice; one BYE, although settled twice.
    expect(await backend.ports.messages.count(ALICE, nowSec())).toBe(1);
    expect(byesOf(first.dialog)).toHaveLength(1);
    // What operators see: 3 deposits, 2 retrievals, 1 failure, the repeated report counting none.
    expect([metrics.get('Deposits'), metrics.get('Retrievals'), metrics.get('DeliveryFailures')]).toEqual([3, 2, 1]);

    // The watcher hears the list now holds the unanswered message alone.
    await eventually(
      async () => {
        const notify = await alice.nextNotify(sub.dialog, 30_000);
        const list = decodeList(notify.body.toString('utf8'));
        return list.ok && list.total === 1 && list.entries.map((e) => e.id).join() === ids[1];
      },
      'a NOTIFY listing the unanswered message alone',
      60_000,
    );
    await first.msrp.close();

    // Given back, not left claimed: pulled again at once (its lease is 3 min), delivered, then gone.
    const second = await pull([ids[1]!], () => 200);
    await alice.nextBye(second.dialog, 60_000);
    expect(second.msrp.received.map((m) => m.body.toString('utf8').includes(BODIES[1]!))).toEqual([true]);
    await eventually(async () => reportsOf(second.sessionId).length === 2, 'the second pull settled', 60_000);
    expect(await backend.ports.messages.get(ALICE, ids[1]!, nowSec())).toBeUndefined();
    expect(await backend.ports.messages.count(ALICE, nowSec())).toBe(0);
    expect(byesOf(second.dialog)).toHaveLength(1);
    expect([metrics.get('Retrievals'), metrics.get('DeliveryFailures')]).toEqual([3, 1]);
    await second.msrp.close();
    // Generous: a 10 s MSRP timeout and a dozen function calls on a loaded 2-core machine.
  }, 120_000);
});
