import { createSocket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { CpmClient } from '#functions/edge/cpm-client.ts';
import { createResponse, parseMessage, serializeMessage } from '#shared/sip/messages/index.ts';
import type { SipRequest } from '#shared/sip/messages/types.ts';

/** A bare UDP peer standing in for the service: sends what it is told, keeps what it receives. */
async function fakeService() {
  const sock = createSocket('udp4');
  const received: Buffer[] = [];
  sock.on('message', (data) => received.push(data));
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()));
  return { sock, received, port: sock.address().port };
}

const notify = (port: number, branch: string): SipRequest => ({
  kind: 'request',
  method: 'NOTIFY',
  uri: `sip:alice@127.0.0.1:${port}`,
  headers: [
    { name: 'Via', value: `SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK${branch}` },
    { name: 'Max-Forwards', value: '70' },
    { name: 'From', value: '<sip:alice@example.com>;tag=svc' },
    { name: 'To', value: '<sip:alice@example.com>;tag=cli' },
    { name: 'Call-ID', value: 'c1@127.0.0.1' },
    { name: 'CSeq', value: '2 NOTIFY' },
    { name: 'Event', value: 'deferred-messages' },
    { name: 'Subscription-State', value: 'active;expires=600' },
  ],
  body: Buffer.alloc(0),
});

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
};

describe('CpmClient retransmissions received', () => {
  const closers: (() => void)[] = [];
  afterEach(() => {
    for (const close of closers.splice(0)) close();
  });

  /** A fake service and a UDP client of it, both closed after the test. */
  const connected = async () => {
    const svc = await fakeService();
    closers.push(() => svc.sock.close());
    const client = await CpmClient.connect({
      transport: 'udp',
      server: { host: '127.0.0.1', port: svc.port },
      user: 'sip:alice@example.com',
      tcpListener: false,
    });
    closers.push(() => client.close());
    return { svc, client };
  };

  it('counts a request the service sends again (same transaction) and answers each copy, but not a new one', async () => {
    const { svc, client } = await connected();
    const send = (req: SipRequest) => svc.sock.send(serializeMessage(req), client.localPort, '127.0.0.1');

    send(notify(client.localPort, 'a1'));
    await until(() => svc.received.length === 1);
    expect(client.retransmissionsReceived).toBe(0);
    // RFC 3261 §17.1.2.2: the same NOTIFY again after T1, as if the 200 were late.
    send(notify(client.localPort, 'a1'));
    await until(() => svc.received.length === 2);
    expect(client.retransmissionsReceived).toBe(1);
    // A new transaction (another branch) is not a retransmission.
    send(notify(client.localPort, 'b2'));
    await until(() => svc.received.length === 3);
    expect(client.retransmissionsReceived).toBe(1);
    expect(
      svc.received.map((b) => (parseMessage(b, { datagram: true }) as { message: { status?: number } }).message.status),
    ).toEqual([200, 200, 200]);
  });

  it('counts a final response no request waits for (a retransmitted final)', async () => {
    const { svc, client } = await connected();
    svc.sock.on('message', (data) => {
      const parsed = parseMessage(data, { datagram: true });
      if (!parsed.ok || parsed.message.kind !== 'request') return;
      const ok = serializeMessage(createResponse(parsed.message, 200));
      // The final twice: the second finds no waiting request.
      svc.sock.send(ok, client.localPort, '127.0.0.1');
      svc.sock.send(ok, client.localPort, '127.0.0.1');
    });
    const res = await client.request(client.buildRequest('OPTIONS'));
    expect(res.status).toBe(200);
    await until(() => client.retransmissionsReceived > 0);
    expect(client.retransmissionsReceived).toBe(1);
  });
});
