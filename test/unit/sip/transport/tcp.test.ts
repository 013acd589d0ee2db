import net from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createResponse, getHeader } from '#shared/sip/messages/index.ts';
import type { SipMessage, SipRequest, SipResponse } from '#shared/sip/messages/index.ts';
import { TransportLayer } from '#shared/sip/transport/index.ts';
import type { Source, TransportConfig } from '#shared/sip/transport/index.ts';
import { TcpPeer, delay, requestText, splitStream, tcpListener, until } from './peers.ts';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
  vi.restoreAllMocks();
});

/** A TCP transport whose application answers every request 200 over the transport. */
async function tcpTransport(extra: Partial<TransportConfig> = {}) {
  const transport = new TransportLayer({ host: '127.0.0.1', tcpPort: 0, ...extra });
  const ports = await transport.start();
  cleanup.push(() => transport.stop());
  const seen: Array<{ msg: SipMessage; source: Source }> = [];
  transport.onMessage((msg, source) => {
    seen.push({ msg, source });
    if (msg.kind === 'request') void transport.sendResponse(createResponse(msg, 200), source);
  });
  return { transport, port: ports.tcp!, seen };
}

async function client(port: number): Promise<TcpPeer> {
  const c = await TcpPeer.connect(port);
  cleanup.push(() => c.close());
  return c;
}

const statuses = (messages: SipMessage[]) => messages.map((m) => (m as SipResponse).status);

describe('TCP transport', () => {
  it('frames two messages arriving in one write', async () => {
    const { port, seen } = await tcpTransport();
    const c = await client(port);
    const one = requestText({ method: 'OPTIONS', transport: 'TCP', branch: 'z9hG4bK-a', cseq: 1 });
    const two = requestText({ method: 'OPTIONS', transport: 'TCP', branch: 'z9hG4bK-b', cseq: 2 });
    await c.write(one + two);
    const answers = await c.waitForMessages(2);
    expect(statuses(answers)).toEqual([200, 200]);
    expect(answers.map((m) => getHeader(m, 'CSeq'))).toEqual(['1 OPTIONS', '2 OPTIONS']);
    expect(seen.map((s) => s.source.connectionId)).toEqual([
      seen[0]!.source.connectionId,
      seen[0]!.source.connectionId,
    ]);
  });

  it('frames one message split over three writes, body included', async () => {
    const { port, seen } = await tcpTransport();
    const c = await client(port);
    const text = requestText({
      method: 'MESSAGE',
      transport: 'TCP',
      body: 'hello over three writes',
      extraHeaders: ['Content-Type: text/plain'],
    });
    const cut1 = 20;
    const cut2 = text.length - 8;
    await c.write(text.slice(0, cut1));
    await delay(15);
    await c.write(text.slice(cut1, cut2));
    await delay(15);
    expect(seen).toHaveLength(0);
    await c.write(text.slice(cut2));
    await until(() => seen.length === 1);
    expect(seen[0]!.msg.body.toString()).toBe('hello over three writes');
    expect(statuses(await c.waitForMessages(1))).toEqual([200]);
  });

  it('answers a double-CRLF keep-alive ping with a single CRLF pong (RFC 5626 §3.5.1)', async () => {
    const { port, seen } = await tcpTransport();
    const c = await client(port);
    await c.write('\r\n\r\n');
    await until(() => c.raw.length >= 2);
    await delay(30);
    expect(c.raw.toString()).toBe('\r\n');
    // The connection still carries SIP afterwards.
    await c.write(requestText({ method: 'OPTIONS', transport: 'TCP' }));
    await until(() => seen.length === 1);
    expect(c.closed).toBe(false);
  });

  it('answers a framing error with 400 and closes the connection', async () => {
    const { port, seen } = await tcpTransport();
    const c = await client(port);
    await c.write(requestText({ method: 'OPTIONS', transport: 'TCP', omit: ['Content-Length'] }));
    await c.waitForClose();
    const answers = c.messages();
    expect(statuses(answers)).toEqual([400]);
    expect((answers[0] as SipResponse).reason).toMatch(/content-length/i);
    expect(seen).toHaveLength(0);
  });

  it('answers an oversize message with 513 and closes the connection', async () => {
    const { port, seen } = await tcpTransport({ maxMessageBytes: 1000 });
    const c = await client(port);
    await c.write(requestText({ method: 'MESSAGE', transport: 'TCP', body: 'y'.repeat(2000) }));
    await c.waitForClose();
    expect(statuses(c.messages())).toEqual([513]);
    expect(seen).toHaveLength(0);
  });

  it('refuses connections beyond maxConnections', async () => {
    const { port, transport } = await tcpTransport({ maxConnections: 1 });
    const first = await client(port);
    await first.write(requestText({ method: 'OPTIONS', transport: 'TCP' }));
    await first.waitForMessages(1);
    const second = await client(port);
    await second.waitForClose();
    expect(first.closed).toBe(false);
    expect(transport.connectionCount).toBe(1);
  });

  it('closes a connection that stays idle', async () => {
    const { port } = await tcpTransport({ idleTimeoutMs: 60 });
    const c = await client(port);
    await c.waitForClose();
  });

  it('sends a response over a new connection to the sent-by when the request connection is gone (§18.2.2)', async () => {
    const transport = new TransportLayer({ host: '127.0.0.1', tcpPort: 0 });
    const { tcp } = await transport.start();
    cleanup.push(() => transport.stop());
    const seen: Array<{ msg: SipMessage; source: Source }> = [];
    transport.onMessage((msg, source) => seen.push({ msg, source }));

    const hop = await tcpListener();
    cleanup.push(() => hop.close());
    const { port: listenPort, peers: accepted } = hop;

    const c = await client(tcp!);
    await c.write(requestText({ method: 'OPTIONS', transport: 'TCP', sentBy: `127.0.0.1:${listenPort}` }));
    await until(() => seen.length === 1);
    c.close();
    await until(() => !transport.connectionOpen(seen[0]!.source.connectionId!));
    await transport.sendResponse(createResponse(seen[0]!.msg as SipRequest, 200), seen[0]!.source);
    await until(() => accepted.length === 1);
    expect(statuses(await accepted[0]!.waitForMessages(1))).toEqual([200]);
  });

  it('sends requests over TCP, reusing the open connection to the same peer', async () => {
    const { transport } = await tcpTransport();
    const hop = await tcpListener();
    cleanup.push(() => hop.close());
    const { port, peers: accepted } = hop;

    const req = (n: number): SipRequest => ({
      kind: 'request',
      method: 'NOTIFY',
      uri: `sip:client@127.0.0.1:${port};transport=tcp`,
      headers: [
        { name: 'Via', value: `SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKn${n}` },
        { name: 'From', value: '<sip:pf@example.com>;tag=a' },
        { name: 'To', value: '<sip:client@example.com>;tag=b' },
        { name: 'Call-ID', value: 'n-1' },
        { name: 'CSeq', value: `${n} NOTIFY` },
      ],
      body: Buffer.from('body'),
    });
    const first = await transport.sendRequest(req(1), { transport: 'tcp', address: '127.0.0.1', port });
    const second = await transport.sendRequest(req(2), { transport: 'tcp', address: '127.0.0.1', port });
    expect(first.connectionId).toBeDefined();
    expect(second.connectionId).toBe(first.connectionId);
    await until(() => accepted.length === 1 && splitStream(accepted[0]!.raw).messages.length === 2);
    expect(accepted).toHaveLength(1);
    expect(accepted[0]!.messages().map((m) => getHeader(m, 'CSeq'))).toEqual(['1 NOTIFY', '2 NOTIFY']);
  });

  it('handles a read of many messages in slices: the loop turns between them, the answers keep their order', async () => {
    const transport = new TransportLayer({ host: '127.0.0.1', tcpPort: 0 });
    const { tcp: port } = await transport.start();
    cleanup.push(() => transport.stop());
    let handled = 0;
    let loopTurnedAt: number | undefined;
    transport.onMessage((msg, source) => {
      if (handled++ === 0) setImmediate(() => (loopTurnedAt = handled));
      // About 0.2 ms of work per request: 300 of them hold the loop 60 ms when handled in one go.
      const end = performance.now() + 0.2;
      while (performance.now() < end);
      if (msg.kind === 'request') void transport.sendResponse(createResponse(msg, 200), source);
    });
    const c = await client(port!);
    const n = 300;
    const all = Array.from({ length: n }, (_, i) =>
      requestText({ method: 'OPTIONS', transport: 'TCP', branch: `z9hG4bK-s${i}`, cseq: i + 1 }),
    ).join('');
    await c.write(all);
    const answers = await c.waitForMessages(n, 10_000);
    expect(answers.map((m) => getHeader(m, 'CSeq'))).toEqual(Array.from({ length: n }, (_, i) => `${i + 1} OPTIONS`));
    // The check phase ran within a slice or two (2 ms each), not after the whole read.
    expect(loopTurnedAt).toBeLessThan(50);
  });

  it('sends what is answered in one turn in one write (a 200 and its NOTIFY: one segment)', async () => {
    const transport = new TransportLayer({ host: '127.0.0.1', tcpPort: 0 });
    const { tcp: port } = await transport.start();
    cleanup.push(() => transport.stop());
    transport.onMessage((msg, source) => {
      if (msg.kind !== 'request') return;
      void transport.sendResponse(createResponse(msg, 200), source);
      void transport.sendRequest(
        {
          kind: 'request',
          method: 'NOTIFY',
          uri: 'sip:client@127.0.0.1;transport=tcp',
          headers: [
            { name: 'Via', value: 'SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKn1' },
            { name: 'From', value: '<sip:pf@example.com>;tag=a' },
            { name: 'To', value: '<sip:client@example.com>;tag=b' },
            { name: 'Call-ID', value: 'n-1' },
            { name: 'CSeq', value: '1 NOTIFY' },
          ],
          body: Buffer.alloc(0),
        },
        { transport: 'tcp', address: source.remoteAddress, port: source.remotePort, connectionId: source.connectionId },
      );
    });
    const c = await client(port!);
    const socketWrites: number[] = [];
    const count = (name: '_write' | '_writev') => {
      const real = net.Socket.prototype[name] as (...args: unknown[]) => unknown;
      vi.spyOn(net.Socket.prototype, name).mockImplementation(function (this: net.Socket, ...args: unknown[]) {
        if (this.localPort === port) socketWrites.push(name === '_writev' ? (args[0] as unknown[]).length : 1);
        return real.apply(this, args);
      });
    };
    count('_write');
    count('_writev');
    await c.write(requestText({ method: 'SUBSCRIBE', transport: 'TCP', extraHeaders: ['Event: deferred-messages'] }));
    const [answer, notify] = await c.waitForMessages(2);
    expect((answer as SipResponse).status).toBe(200);
    expect((notify as SipRequest).method).toBe('NOTIFY');
    expect(socketWrites).toEqual([2]); // one writev of both messages
  });
});
