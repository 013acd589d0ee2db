/**
 * The pull benches' load generator (test/bench/pull-load.ts) against the service: a pull is whole
 * and checked (the count the NOTIFY lists, every message over MSRP and what it is, the mailbox
 * emptied), and
 * what the service sends again is counted as a retransmission.
 */
import { createSocket } from 'node:dgram';
import { connect, createServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wrapAsCpim } from '#shared/cpim/cpim.ts';
import { encodeList } from '#shared/deferred/list-codec.ts';
import { CPIM_CONTENT_TYPE, LIST_CONTENT_TYPE } from '#shared/deferred/names.ts';
import { MsrpConnection } from '#shared/msrp/connection.ts';
import { newTransactionId, responseTo, serializeRequest, serializeResponse } from '#shared/msrp/framing.ts';
import { buildMsrpAnswer } from '#shared/sdp/msrp-sdp.ts';
import {
  createResponse,
  getHeader,
  parseMessage,
  parseNameAddr,
  serializeMessage,
  topVia,
} from '#shared/sip/messages/index.ts';
import type { SipRequest, SipResponse } from '#shared/sip/messages/types.ts';
import { PullLoad } from '../bench/pull-load.ts';
import { ALICE, BOB, sampleMessage } from '../unit/deferred/fixtures.ts';
import { ADMIN_AUTH, depositHttp, pendingOf, startTestEdge, type TestEdge } from './support.ts';

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

  it('pulls every message in a one-time fetch, done at the BYE with the mailbox empty', async () => {
    await deposit('sip:fetch@example.com', 3);
    const times = await load.pull('sip:fetch@example.com', 3, 10_000, 'fetch');
    expect(times.total).toBeGreaterThanOrEqual(times.toFirstNotify);
    expect((await pendingOf(edge.adminUrl, 'sip:fetch@example.com')).total).toBe(0);
    // Nothing left subscribed to send a NOTIFY of the emptied mailbox (RFC 6665 §4.4.3).
    const view = await fetch(`${edge.adminUrl}/api/user?user=${encodeURIComponent('sip:fetch@example.com')}`, {
      headers: ADMIN_AUTH,
    });
    expect(((await view.json()) as { subscriptions: unknown[] }).subscriptions).toEqual([]);
    expect(load.retransmissionsReceived).toBe(0);
  });

  it("fails a fetch whose NOTIFY does not end the subscription, and a lasting one's that does", async () => {
    for (const [flow, state] of [
      ['fetch', 'active;expires=600'],
      ['lasting', 'terminated;reason=timeout'],
    ] as const) {
      const service = await standIn(1, () => undefined, state);
      try {
        await expect(service.load.pull(ALICE, 1, 1_000, flow)).rejects.toThrow(
          `the ${flow} subscription's NOTIFY says Subscription-State: ${state}`,
        );
      } finally {
        service.close();
      }
    }
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
    let invite: SipRequest | undefined;
    let acked!: (ack: SipRequest) => void;
    const ack = new Promise<SipRequest>((resolve) => (acked = resolve));
    const service = await standIn(1, (req, send) => {
      if (req.method === 'INVITE') {
        invite = req;
        send(serializeMessage(createResponse(req, 503, { toTag: 'busy' })));
      } else if (req.method === 'ACK') acked(req);
    });
    try {
      await expect(service.load.pull(ALICE, 1)).rejects.toThrow(/INVITE 503/);
      const acked = await ack;
      // RFC 3261 §17.1.1.3: the INVITE's branch and Request-URI, the response's To tag.
      expect(topVia(acked)?.branch).toBe(topVia(invite!)?.branch);
      expect(acked.uri).toBe(invite!.uri);
      expect(getHeader(acked, 'To')).toMatch(/;tag=busy$/);
      expect(getHeader(acked, 'CSeq')).toBe('1 ACK');
    } finally {
      service.close();
    }
  });

  describe('fails a pull whose MSRP messages are not the ones listed', () => {
    const cpim = (to: string, id: string) =>
      wrapAsCpim({
        from: BOB,
        to,
        dateTime: new Date().toISOString(),
        messageId: id,
        contentType: 'text/plain;charset=UTF-8',
        body: Buffer.from(`message ${id}`),
      });
    it.each([
      ['another user', [cpim(ALICE, 'm1'), cpim(BOB, 'm2')], /message 2 is to sip:bob@example.net/],
      ['the same message twice', [cpim(ALICE, 'm1'), cpim(ALICE, 'm1')], /message 2 repeats m1/],
      ['a body that is not CPIM', [cpim(ALICE, 'm1'), Buffer.from('hello')], /message 2 is not CPIM/],
    ])('%s', async (_, bodies, why) => {
      const service = await msrpStandIn(bodies);
      try {
        await expect(service.load.pull(ALICE, 2)).rejects.toThrow(why);
      } finally {
        service.close();
      }
    });

    it('a BYE before the last one was answered', async () => {
      const service = await msrpStandIn([cpim(ALICE, 'm1'), cpim(ALICE, 'm2')], 2, { byeFirst: true });
      try {
        await expect(service.load.pull(ALICE, 2, 2_000)).rejects.toThrow(
          /BYE before the last MSRP message was answered/,
        );
      } finally {
        service.close();
      }
    });

    it('a message missing', async () => {
      const service = await msrpStandIn([cpim(ALICE, 'm1')], 2);
      try {
        await expect(service.load.pull(ALICE, 2, 1_000)).rejects.toThrow(/pull not done in 1000 ms/);
      } finally {
        service.close();
      }
    });

    it('none of them, when all are right', async () => {
      // The stand-in's pull stops at the BYE it never sends: the messages were accepted.
      const service = await msrpStandIn([cpim(ALICE, 'm1'), cpim(ALICE, 'm2')]);
      try {
        await expect(service.load.pull(ALICE, 2, 1_000)).rejects.toThrow(/pull not done in 1000 ms/);
        expect(service.delivered()).toBe(2);
      } finally {
        service.close();
      }
    });
  });
});

/**
 * A stand-in service on a loopback UDP port: a SUBSCRIBE is answered 200 and followed by a
 * NOTIFY listing `listed` messages; every other request goes to `onRequest`. With a PullLoad
 * of its own pointed at it.
 */
async function standIn(
  listed: number,
  onRequest: (req: SipRequest, send: (bytes: Buffer | string) => void) => void,
  subscriptionState = 'active;expires=600',
  onResponse: (res: SipResponse) => void = () => undefined,
): Promise<{ port: number; load: PullLoad; close: () => void }> {
  const service = createSocket('udp4');
  await new Promise<void>((resolve) => service.bind(0, '127.0.0.1', () => resolve()));
  const port = service.address().port;
  service.on('message', (data, from) => {
    const parsed = parseMessage(data);
    if (!parsed.ok) return;
    if (parsed.message.kind === 'response') return onResponse(parsed.message);
    const req = parsed.message;
    const send = (bytes: Buffer | string) => service.send(bytes, from.port, from.address);
    if (req.method !== 'SUBSCRIBE') return onRequest(req, send);
    send(serializeMessage(createResponse(req, 200, { toTag: 'svc' })));
    const entries = Array.from({ length: listed }, (_, i) => sampleMessage(i + 1));
    const body = encodeList({ version: 0, total: listed, entries });
    send(
      `NOTIFY sip:alice@127.0.0.1:${from.port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bKn1\r\n` +
        `Max-Forwards: 70\r\nFrom: <${ALICE}>;tag=svc\r\nTo: ${getHeader(req, 'From')}\r\n` +
        `Call-ID: ${getHeader(req, 'Call-ID')}\r\nCSeq: 1 NOTIFY\r\nContact: <sip:pf@127.0.0.1:${port}>\r\n` +
        `Event: deferred-messages\r\nSubscription-State: ${subscriptionState}\r\n` +
        `Content-Type: ${LIST_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  });
  const load = await PullLoad.open({ host: '127.0.0.1', port });
  return {
    port,
    load,
    close: () => {
      load.close();
      service.close();
    },
  };
}

/**
 * A stand-in service that lists `listed` messages and, once the INVITE for them is
 * answered and the client's MSRP connection bound (RFC 4975 §5.4), sends `bodies` as
 * message/cpim SENDs; it never sends the BYE after them. With `byeFirst`, it sends a BYE in the
 * INVITE's dialog once bound, and the SENDs when the client has answered it.
 */
async function msrpStandIn(
  bodies: Buffer[],
  listed = bodies.length,
  opts: { byeFirst?: boolean } = {},
): Promise<{ load: PullLoad; close: () => void; delivered: () => number }> {
  const connections = new Set<MsrpConnection>();
  let delivered = 0;
  let invite: SipRequest | undefined;
  let sendSip: (bytes: Buffer | string) => void = () => undefined;
  let byeAnswered: () => void = () => undefined;
  const msrp = createServer((socket) => {
    const connection: MsrpConnection = new MsrpConnection(socket, {
      onRequest: async (req) => {
        connection.write(serializeResponse(responseTo(req, 200)));
        if (opts.byeFirst && invite) {
          const answered = new Promise<void>((resolve) => (byeAnswered = resolve));
          sendSip(
            `BYE ${parseNameAddr(getHeader(invite, 'Contact')!)!.uri} SIP/2.0\r\n` +
              `Via: SIP/2.0/UDP 127.0.0.1:${service.port};branch=z9hG4bKbye1\r\nMax-Forwards: 70\r\n` +
              `From: ${getHeader(invite, 'To')};tag=svc\r\nTo: ${getHeader(invite, 'From')}\r\n` +
              `Call-ID: ${getHeader(invite, 'Call-ID')}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n`,
          );
          await answered;
        }
        bodies.forEach((body, i) => {
          const transactionId = newTransactionId(body);
          const frame = serializeRequest({
            transactionId,
            method: 'SEND',
            toPath: req.fromPath,
            fromPath: req.toPath,
            messageId: `msg${i}`,
            byteRange: { start: 1, end: body.length, total: body.length },
            contentType: CPIM_CONTENT_TYPE,
            body,
            continuation: '$',
          });
          void connection.transact(transactionId, frame, 1_000).then((status) => status === 200 && delivered++);
        });
      },
      onMalformed: () => undefined,
      onClose: () => connections.delete(connection),
    });
    connections.add(connection);
  });
  await new Promise<void>((resolve) => msrp.listen(0, '127.0.0.1', () => resolve()));
  const msrpPort = (msrp.address() as AddressInfo).port;
  const service = await standIn(
    listed,
    (req, send) => {
      if (req.method !== 'INVITE') return;
      invite = req;
      sendSip = send;
      const answer = buildMsrpAnswer({ host: '127.0.0.1', port: msrpPort, sessionId: 'standin' });
      send(
        serializeMessage(
          createResponse(req, 200, {
            toTag: 'svc',
            headers: [{ name: 'Contact', value: `<sip:pf@127.0.0.1:${service.port}>` }],
            body: Buffer.from(answer.sdp),
            contentType: 'application/sdp',
          }),
        ),
      );
    },
    'active;expires=600',
    (res) => {
      if (getHeader(res, 'CSeq') === '1 BYE' && res.status === 200) byeAnswered();
    },
  );
  return {
    load: service.load,
    delivered: () => delivered,
    close: () => {
      service.close();
      for (const c of connections) c.close();
      msrp.close();
    },
  };
}
