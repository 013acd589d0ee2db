import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { createResponse, getHeader, topVia } from '#shared/sip/messages/index.ts';
import type { SipMessage, SipRequest } from '#shared/sip/messages/index.ts';
import { TransportLayer } from '#shared/sip/transport/index.ts';
import type { Source, TransportConfig } from '#shared/sip/transport/index.ts';
import { UdpPeer, delay, requestText, until } from './peers.ts';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function udpTransport(extra: Partial<TransportConfig> = {}) {
  const transport = new TransportLayer({ host: '127.0.0.1', udpPort: 0, ...extra });
  const ports = await transport.start();
  cleanup.push(() => transport.stop());
  const seen: Array<{ msg: SipMessage; source: Source }> = [];
  transport.onMessage((msg, source) => seen.push({ msg, source }));
  return { transport, port: ports.udp!, seen };
}

async function peer(): Promise<UdpPeer> {
  const p = await UdpPeer.open();
  cleanup.push(() => p.close());
  return p;
}

/** What Linux grants a socket asking for `bytes` of receive buffer: twice it, up to twice rmem_max. */
const granted = (bytes: number) =>
  2 * Math.min(bytes, Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8').trim()));

describe('UDP transport', () => {
  it('asks the kernel for a 4 MiB receive buffer (or the size configured), not the 208 KiB default', async () => {
    const defaults = await udpTransport();
    expect(defaults.transport.udpReceiveBuffer).toBe(granted(4 * 1024 * 1024));
    expect(defaults.transport.udpReceiveBuffer).toBeGreaterThan(
      Number(readFileSync('/proc/sys/net/core/rmem_default', 'utf8').trim()),
    );
    const configured = await udpTransport({ udpReceiveBufferBytes: 256 * 1024 });
    expect(configured.transport.udpReceiveBuffer).toBe(granted(256 * 1024));
  });

  it('times how long each datagram waited between its read and its handling, and keeps reading meanwhile', async () => {
    const transport = new TransportLayer({ host: '127.0.0.1', udpPort: 0 });
    const port = (await transport.start()).udp!;
    cleanup.push(() => transport.stop());
    const waits: number[] = [];
    transport.onMessage(() => {
      waits.push(transport.receiveDelayMs);
      const until = performance.now() + 30; // a slow handler: 30 ms each
      while (performance.now() < until);
    });
    const client = await peer();
    for (let i = 0; i < 10; i++)
      await client.send(requestText({ method: 'OPTIONS', branch: `z9hG4bK-wait-${i}` }), port);
    await until(() => waits.length === 10);
    // Read before the first was handled (or during its 30 ms): the tenth waited for eight or nine.
    expect(waits[9]).toBeGreaterThanOrEqual(200);
    expect(transport.receiveDelayMs).toBe(0);
  });

  it('drops unread a datagram that waited past maxReceiveWaitMs (T1: its sender has retransmitted)', async () => {
    const { transport, port, seen } = await udpTransport({ maxReceiveWaitMs: 50 });
    transport.onMessage(() => {
      const until = performance.now() + 100; // the first one's handling outlasts the others' wait
      while (performance.now() < until);
    });
    const client = await peer();
    const options = (i: number) => requestText({ method: 'OPTIONS', branch: `z9hG4bK-stale-${i}` });
    // Sent together, read in one turn: the second and third wait behind the first.
    await Promise.all([0, 1, 2].map((i) => client.send(options(i), port)));
    await delay(200);
    expect(seen.map(({ msg }) => topVia(msg)!.branch)).toEqual(['z9hG4bK-stale-0']);
    // A retransmission read now is handled.
    await client.send(options(1), port);
    await until(() => seen.length === 2);
    expect(topVia(seen[1]!.msg)!.branch).toBe('z9hG4bK-stale-1');
  });

  it('hands a request up with received/rport and sends the response to the source port (RFC 3581)', async () => {
    const { transport, port, seen } = await udpTransport();
    const client = await peer();
    // The sent-by names a port nobody listens on: only rport brings the answer back.
    await client.send(requestText({ method: 'OPTIONS', sentBy: 'client.invalid:5999', rport: true }), port);
    await until(() => seen.length === 1);
    const { msg, source } = seen[0]!;
    const via = topVia(msg)!;
    expect(via.received).toBe('127.0.0.1');
    expect(via.rport).toBe(client.port);
    expect(source).toMatchObject({
      transport: 'udp',
      remoteAddress: '127.0.0.1',
      remotePort: client.port,
      localPort: port,
    });

    await transport.sendResponse(createResponse(msg as SipRequest, 200), source);
    const res = await client.waitFor(1);
    expect(res).toMatchObject({ kind: 'response', status: 200 });
    expect(getHeader(res, 'Via')).toContain(`rport=${client.port}`);
    expect(getHeader(res, 'Via')).toContain('received=127.0.0.1');
  });

  it('without rport answers to the sent-by port of the top Via (RFC 3261 §18.2.2)', async () => {
    const { transport, port, seen } = await udpTransport();
    const sender = await peer();
    const viaTarget = await peer();
    await sender.send(requestText({ method: 'OPTIONS', sentBy: `127.0.0.1:${viaTarget.port}` }), port);
    await until(() => seen.length === 1);
    const { msg, source } = seen[0]!;
    expect(topVia(msg)!.received).toBeUndefined();
    await transport.sendResponse(createResponse(msg as SipRequest, 200), source);
    expect(await viaTarget.waitFor(1)).toMatchObject({ status: 200 });
    expect(sender.received).toHaveLength(0);
  });

  it('answers a malformed request itself with 400 naming the fault, never handing it up', async () => {
    const { port, seen } = await udpTransport();
    const client = await peer();
    await client.send(requestText({ method: 'OPTIONS', omit: ['CSeq'], rport: true }), port);
    const res = await client.waitFor(1);
    expect(res.kind).toBe('response');
    if (res.kind !== 'response') return;
    expect(res.status).toBe(400);
    expect(res.reason).toMatch(/CSeq/i);
    expect(seen).toHaveLength(0);
  });

  it('answers an oversize request with 513', async () => {
    const { port, seen } = await udpTransport({ maxMessageBytes: 800 });
    const client = await peer();
    await client.send(requestText({ method: 'MESSAGE', body: 'x'.repeat(1200), rport: true }), port);
    const res = await client.waitFor(1);
    expect(res).toMatchObject({ kind: 'response', status: 513 });
    expect(seen).toHaveLength(0);
  });

  it('refuses a request with more header fields than allowed', async () => {
    const { port, seen } = await udpTransport({ maxHeaders: 12 });
    const client = await peer();
    const extra = Array.from({ length: 20 }, (_, i) => `X-Filler-${i}: ${i}`);
    await client.send(requestText({ method: 'OPTIONS', extraHeaders: extra, rport: true }), port);
    const res = await client.waitFor(1);
    expect(res.kind).toBe('response');
    if (res.kind === 'response') expect(res.status).toBeGreaterThanOrEqual(400);
    expect(seen).toHaveLength(0);
  });

  it('drops a malformed response silently and still delivers a good one', async () => {
    const { port, seen } = await udpTransport();
    const client = await peer();
    await client.send('SIP/2.0 2x0 Nonsense\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\n\r\n', port);
    const good =
      'SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKgood\r\nFrom: <sip:a@example.com>;tag=1\r\n' +
      'To: <sip:b@example.com>;tag=2\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n';
    await client.send(good, port);
    await until(() => seen.length === 1);
    expect(seen[0]!.msg).toMatchObject({ kind: 'response', status: 200 });
    await delay(50);
    expect(seen).toHaveLength(1);
    expect(client.received).toHaveLength(0);
  });

  it('sends a request to an allowed destination and refuses the others without sending', async () => {
    const asked: string[] = [];
    const { transport } = await udpTransport({
      allowDestination: (address) => {
        asked.push(address);
        return address === '127.0.0.1';
      },
    });
    const client = await peer();
    const req: SipRequest = {
      kind: 'request',
      method: 'OPTIONS',
      uri: 'sip:client@127.0.0.1',
      headers: [
        { name: 'Via', value: 'SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKallow' },
        { name: 'From', value: '<sip:pf@example.com>;tag=a' },
        { name: 'To', value: '<sip:client@example.com>' },
        { name: 'Call-ID', value: 'allow-1' },
        { name: 'CSeq', value: '1 OPTIONS' },
        { name: 'Max-Forwards', value: '70' },
      ],
      body: Buffer.alloc(0),
    };
    await expect(transport.sendRequest(req, { transport: 'udp', address: '192.0.2.1', port: 5060 })).rejects.toThrow(
      /not allowed/,
    );
    expect(asked).toContain('192.0.2.1');

    const source = await transport.sendRequest(req, { transport: 'udp', address: '127.0.0.1', port: client.port });
    expect(source).toMatchObject({ transport: 'udp', remotePort: client.port });
    expect(await client.waitFor(1)).toMatchObject({ kind: 'request', method: 'OPTIONS' });
  });

  it('sends nothing at all when the allow-list refuses a loopback peer', async () => {
    const { transport } = await udpTransport({ allowDestination: () => false });
    const client = await peer();
    const req: SipRequest = {
      kind: 'request',
      method: 'OPTIONS',
      uri: 'sip:client@127.0.0.1',
      headers: [
        { name: 'Via', value: 'SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKdeny' },
        { name: 'From', value: '<sip:pf@example.com>;tag=a' },
        { name: 'To', value: '<sip:client@example.com>' },
        { name: 'Call-ID', value: 'deny-1' },
        { name: 'CSeq', value: '1 OPTIONS' },
      ],
      body: Buffer.alloc(0),
    };
    await expect(
      transport.sendRequest(req, { transport: 'udp', address: '127.0.0.1', port: client.port }),
    ).rejects.toThrow(/not allowed/);
    await delay(50);
    expect(client.received).toHaveLength(0);
  });
});
