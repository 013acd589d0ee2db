/**
 * The pull benches' load generator (test/bench/pull-load.ts) against the service: a pull is whole
 * and checked (the count the NOTIFY lists, every message over MSRP, the mailbox emptied), and
 * what the service sends again is counted as a retransmission.
 */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeList } from '#shared/deferred/list-codec.ts';
import { LIST_CONTENT_TYPE } from '#shared/deferred/names.ts';
import { createResponse, getHeader, parseMessage, serializeMessage, topVia } from '#shared/sip/messages/index.ts';
import type { SipRequest } from '#shared/sip/messages/types.ts';
import { PullLoad } from '../bench/pull-load.ts';
import { ALICE, sampleMessage } from '../unit/deferred/fixtures.ts';
import { depositHttp, pendingOf, startTestEdge, type TestEdge } from './support.ts';

let edge: TestEdge;
let load: PullLoad;

beforeAll(async () => {
  edge = await startTestEdge();
  load = await PullLoad.open({ host: '127.0.0.1', port: edge.ports.udp! });
});

afterAll(async () => {
  load?.close();
  await edge?.close();
});

async function deposit(user: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = await depositHttp(edge.adminUrl, { to: user, from: 'sip:bob@example.net', body: `message ${i}` });
    expect(r.status).toBe(201);
  }
}

describe('PullLoad', () => {
  it('pulls every message of a user, leaving the mailbox empty', async () => {
    await deposit('sip:full@example.com', 3);
    const times = await load.pull('sip:full@example.com', 3);
    expect(times.total).toBeGreaterThanOrEqual(times.toFirstNotify);
    expect((await pendingOf(edge.adminUrl, 'sip:full@example.com')).total).toBe(0);
    expect(load.retransmissionsReceived).toBe(0);
  });

  it('fails a pull whose NOTIFY lists another count, naming it', async () => {
    await deposit('sip:short@example.com', 2);
    await expect(load.pull('sip:short@example.com', 3)).rejects.toThrow(/lists 2 of 3/);
  });

  it('counts a request in no pull dialog as a retransmission, answering 481', async () => {
    const before = load.retransmissionsReceived;
    const socket = connect(load.port, '127.0.0.1');
    const answer = new Promise<Buffer>((resolve) => socket.once('data', resolve));
    socket.write(
      'NOTIFY sip:full@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKgone1\r\n' +
        'Max-Forwards: 70\r\nFrom: <sip:full@example.com>;tag=a\r\nTo: <sip:full@example.com>;tag=b\r\n' +
        'Call-ID: gone@127.0.0.1\r\nCSeq: 3 NOTIFY\r\nEvent: deferred-messages\r\n' +
        'Subscription-State: terminated\r\nContent-Length: 0\r\n\r\n',
    );
    const parsed = parseMessage(await answer);
    socket.destroy();
    expect(parsed.ok && parsed.message.kind === 'response' && parsed.message.status).toBe(481);
    expect(load.retransmissionsReceived).toBe(before + 1);
  });

  it('ACKs a refused INVITE in its transaction, so the refusal is not sent again', async () => {
    // A stand-in service: the subscription lists one message, the INVITE for it is refused 503.
    const service = createSocket('udp4');
    await new Promise<void>((resolve) => service.bind(0, '127.0.0.1', () => resolve()));
    const port = service.address().port;
    const refused = await PullLoad.open({ host: '127.0.0.1', port });
    let invite: SipRequest | undefined;
    const ack = new Promise<SipRequest>((resolve) =>
      service.on('message', (data, from) => {
        const parsed = parseMessage(data);
        if (!parsed.ok || parsed.message.kind !== 'request') return;
        const req = parsed.message;
        const send = (bytes: Buffer | string) => service.send(bytes, from.port, from.address);
        if (req.method === 'SUBSCRIBE') {
          send(serializeMessage(createResponse(req, 200, { toTag: 'svc' })));
          const body = encodeList({ version: 0, total: 1, entries: [sampleMessage(1)] });
          send(
            `NOTIFY sip:alice@127.0.0.1:${from.port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bKn1\r\n` +
              `Max-Forwards: 70\r\nFrom: <${ALICE}>;tag=svc\r\nTo: ${getHeader(req, 'From')}\r\n` +
              `Call-ID: ${getHeader(req, 'Call-ID')}\r\nCSeq: 1 NOTIFY\r\nContact: <sip:pf@127.0.0.1:${port}>\r\n` +
              `Event: deferred-messages\r\nSubscription-State: active;expires=600\r\n` +
              `Content-Type: ${LIST_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
          );
        } else if (req.method === 'INVITE') {
          invite = req;
          send(serializeMessage(createResponse(req, 503, { toTag: 'busy' })));
        } else if (req.method === 'ACK') resolve(req);
      }),
    );
    try {
      await expect(refused.pull(ALICE, 1)).rejects.toThrow(/INVITE 503/);
      const acked = await ack;
      // RFC 3261 §17.1.1.3: the INVITE's branch and Request-URI, the response's To tag.
      expect(topVia(acked)?.branch).toBe(topVia(invite!)?.branch);
      expect(acked.uri).toBe(invite!.uri);
      expect(getHeader(acked, 'To')).toMatch(/;tag=busy$/);
      expect(getHeader(acked, 'CSeq')).toBe('1 ACK');
    } finally {
      refused.close();
      service.close();
    }
  });
});
