/**
 * The edge's IMDN failure reports (protocol.md "Deposit", last point): where the MESSAGE goes,
 * which outcomes end a job and which ask SQS for another try.
 */
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import {
  FailureImdnNotSentError,
  makeFailureImdnQueueHandler,
  makeFailureImdnSender,
} from '#functions/edge/failure-imdn.ts';
import type { FailureImdnJob } from '#shared/deferred/model.ts';
import { createResponse, getHeader } from '#shared/sip/messages/index.ts';
import type { Header, SipRequest } from '#shared/sip/messages/types.ts';
import type { Target } from '#shared/sip/transport/index.ts';

const job: FailureImdnJob = {
  user: 'sip:alice@example.com',
  id: '01JDQ8R0Z5K3N1V6X7Y8Z9A0BC',
  messageId: 'm-1',
  from: 'sip:bob@127.0.0.1:5070',
  to: 'sip:alice@example.com',
  date: '2026-03-01T10:00:00.000Z',
};

function sipAnswering(status: number, headers: Header[] = []) {
  const sent: { request: SipRequest; target: Target }[] = [];
  return {
    sent,
    transactions: {
      request: async (request: SipRequest, target: Target) => {
        sent.push({ request, target });
        return createResponse(request, status, { headers });
      },
    },
  };
}

const quiet = () => undefined;

describe('makeFailureImdnSender', () => {
  it('sends a MESSAGE with the CPIM-wrapped IMDN failed straight to an address-literal sender', async () => {
    const sip = sipAnswering(200);
    const statuses: number[] = [];
    const send = makeFailureImdnSender({ ...sip, domain: 'example.com', log: quiet, onSent: (s) => statuses.push(s) });
    expect(await send(job)).toEqual({ kind: 'answered', status: 200 });
    expect(statuses).toEqual([200]);
    const [{ request, target }] = sip.sent as [{ request: SipRequest; target: Target }];
    expect(target).toEqual({ transport: 'udp', address: '127.0.0.1', port: 5070 });
    expect(request.method).toBe('MESSAGE');
    expect(request.uri).toBe(job.from);
    expect(getHeader(request, 'From')).toMatch(/^<sip:deferred@example\.com>;tag=/);
    expect(getHeader(request, 'Content-Type')).toBe('message/cpim');
    const body = request.body.toString('utf8');
    expect(body).toContain('<message-id>m-1</message-id>');
    expect(body).toContain('<failed/>');
  });

  it('goes through the outbound proxy when one is configured', async () => {
    const sip = sipAnswering(202);
    const send = makeFailureImdnSender({
      ...sip,
      domain: 'example.com',
      outboundProxy: 'sip:127.0.0.1:5090;transport=tcp',
      log: quiet,
    });
    await send({ ...job, from: 'sip:bob@example.net' });
    expect(sip.sent[0]!.target).toEqual({ transport: 'tcp', address: '127.0.0.1', port: 5090 });
    expect(sip.sent[0]!.request.uri).toBe('sip:bob@example.net');
  });

  it('is done without sending when there is no route (a host name and no proxy)', async () => {
    const sip = sipAnswering(200);
    const statuses: number[] = [];
    const send = makeFailureImdnSender({ ...sip, domain: 'example.com', log: quiet, onSent: (s) => statuses.push(s) });
    expect(await send({ ...job, from: 'sip:bob@example.net' })).toEqual({ kind: 'no-route' });
    expect(sip.sent).toHaveLength(0);
    expect(statuses).toEqual([0]);
  });

  it.each([
    [404, []],
    [486, []],
    [503, [{ name: 'Retry-After', value: '30' }]],
  ])('treats a final %i as done', async (status, headers) => {
    const send = makeFailureImdnSender({ ...sipAnswering(status, headers), domain: 'example.com', log: quiet });
    expect(await send(job)).toEqual({ kind: 'answered', status });
  });

  it.each([408, 503])('throws on %i without Retry-After: the MESSAGE never reached the next hop', async (status) => {
    const statuses: number[] = [];
    const send = makeFailureImdnSender({
      ...sipAnswering(status),
      domain: 'example.com',
      log: quiet,
      onSent: (s) => statuses.push(s),
    });
    const err = await send(job).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FailureImdnNotSentError);
    expect((err as FailureImdnNotSentError).status).toBe(status);
    expect(statuses).toEqual([status]);
  });
});

describe('makeFailureImdnQueueHandler', () => {
  const record = (messageId: string, body: string): SQSRecord =>
    ({ messageId, body, attributes: { ApproximateReceiveCount: '1' } }) as unknown as SQSRecord;

  it('reports exactly the jobs not sent and the bodies that are not jobs as batch item failures', async () => {
    const seen: string[] = [];
    const handler = makeFailureImdnQueueHandler({
      send: async (j) => {
        seen.push(j.messageId);
        if (j.messageId === 'lost') throw new FailureImdnNotSentError(503, j.from);
        return j.messageId === 'nowhere' ? { kind: 'no-route' } : { kind: 'answered', status: 480 };
      },
      log: quiet,
    });
    const event: SQSEvent = {
      Records: [
        record('a', JSON.stringify({ ...job, messageId: 'answered' })),
        record('b', JSON.stringify({ ...job, messageId: 'lost' })),
        record('c', JSON.stringify({ ...job, messageId: 'nowhere' })),
        record('d', 'not json'),
        record('e', JSON.stringify({ ...job, from: '' })),
      ],
    };
    const result = await handler(event);
    expect(result.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(['b', 'd', 'e']);
    expect(seen.sort()).toEqual(['answered', 'lost', 'nowhere']);
  });
});
