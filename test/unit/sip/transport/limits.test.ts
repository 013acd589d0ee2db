/**
 * Connection limits (issue 11 item 2): one source cannot take every connection, known peers
 * (the SIP/IP Core) keep a reserve, and a half-sent message cannot hold a connection. Real TCP
 * on loopback; 127.0.0.1 plays an unknown source, 127.0.0.2 the known peer.
 */
import net from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { createResponse } from '#shared/sip/messages/index.ts';
import { TransportLayer, type TransportConfig } from '#shared/sip/transport/index.ts';
import { requestText, until } from './peers.ts';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function transport(extra: Partial<TransportConfig>) {
  const layer = new TransportLayer({ host: '127.0.0.1', tcpPort: 0, isKnownPeer: (a) => a === '127.0.0.2', ...extra });
  const ports = await layer.start();
  cleanup.push(() => layer.stop());
  const received: string[] = [];
  layer.onMessage((msg) => received.push(msg.kind));
  return { layer, port: ports.tcp!, received };
}

/** Open a connection from `from`; resolves with whether the server kept it (not closed within a round trip). */
async function open(port: number, from: string): Promise<{ socket: net.Socket; closed: () => boolean }> {
  const socket = net.connect({ host: '127.0.0.1', port, localAddress: from });
  cleanup.push(() => socket.destroy());
  let closed = false;
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  return { socket, closed: () => closed };
}

describe('stream connection limits', () => {
  it('refuses an unknown source beyond its per-source limit, not a known peer', async () => {
    const { layer, port } = await transport({ maxConnectionsPerSource: 3 });
    const unknown: Awaited<ReturnType<typeof open>>[] = [];
    for (let i = 0; i < 5; i++) unknown.push(await open(port, '127.0.0.1'));
    await until(() => unknown.filter((c) => c.closed()).length === 2);
    expect(unknown.map((c) => c.closed())).toEqual([false, false, false, true, true]);
    for (let i = 0; i < 5; i++) await open(port, '127.0.0.2');
    await until(() => layer.connectionCount === 8);
    expect(layer.connectionCount).toBe(8);
  });

  it('keeps the last connections for known peers when the total is nearly used up', async () => {
    const { layer, port } = await transport({ maxConnections: 4, knownPeerReserve: 2 });
    const unknown: Awaited<ReturnType<typeof open>>[] = [];
    for (let i = 0; i < 3; i++) unknown.push(await open(port, '127.0.0.1'));
    await until(() => unknown[2]!.closed());
    const known = [await open(port, '127.0.0.2'), await open(port, '127.0.0.2')];
    await until(() => layer.connectionCount === 4);
    expect(known.map((c) => c.closed())).toEqual([false, false]);
    expect(unknown.map((c) => c.closed())).toEqual([false, false, true]);
  });

  it('closes a connection whose message stays incomplete past the deadline, however slowly it trickles', async () => {
    const { layer, port, received } = await transport({ messageTimeoutMs: 300 });
    const slow = await open(port, '127.0.0.1');
    const whole = await open(port, '127.0.0.1');
    const text = requestText({ method: 'OPTIONS', transport: 'TCP', branch: 'z9hG4bK-slow', cseq: 1 });
    // One byte every 50 ms: each restarts no clock; the message would need far longer than 300 ms.
    const drip = setInterval(() => slow.socket.write(text[0]!), 50);
    cleanup.push(() => clearInterval(drip));
    whole.socket.write(text);
    await until(() => slow.closed(), 3000);
    expect(whole.closed()).toBe(false);
    expect(received).toEqual(['request']);
    expect(layer.connectionCount).toBe(1);
  });

  it('answers a CRLF CRLF keep-alive with CRLF (RFC 5626 §3.5.1) and keeps the connection', async () => {
    const { port } = await transport({ messageTimeoutMs: 300 });
    const c = await open(port, '127.0.0.1');
    c.socket.write('\r\n\r\n');
    const [pong] = (await once(c.socket, 'data')) as [Buffer];
    expect(pong.toString()).toBe('\r\n');
    await new Promise((r) => setTimeout(r, 500));
    expect(c.closed()).toBe(false);
  });
});

describe('a peer that does not read its responses', () => {
  it('is disconnected once its unsent responses pass 16 maximum-size messages; others keep theirs', async () => {
    const { layer, port } = await transport({ maxMessageBytes: 4096 });
    // Every request gets a 3 KB response (the size of a NOTIFY with a long list).
    layer.onMessage((msg, source) => {
      if (msg.kind !== 'request') return;
      const res = createResponse(msg, 200, { body: Buffer.alloc(3000, 'x'), contentType: 'text/plain' });
      void layer.sendResponse(res, source).catch(() => undefined);
    });
    const deaf = await open(port, '127.0.0.1');
    deaf.socket.pause();
    const reader = await open(port, '127.0.0.1');
    let answers = 0;
    reader.socket.on('data', (b: Buffer) => (answers += b.toString('latin1').split('SIP/2.0 200').length - 1));
    const text = requestText({ method: 'OPTIONS', transport: 'TCP', branch: 'z9hG4bK-deaf' });
    // Far more than the loopback socket buffers hold, so the rest waits in the edge's memory.
    for (let i = 0; i < 8000 && !deaf.closed(); i++) {
      deaf.socket.write(text);
      if (i % 200 === 199) await new Promise((r) => setTimeout(r, 5));
    }
    await until(() => deaf.closed(), 5000, 'the deaf peer disconnected');
    reader.socket.write(text);
    await until(() => answers === 1, 3000, 'the reading peer answered');
  });
});
