/**
 * RFC 3261 dialog routing over real sockets, with a stand-in proxy hop that record-routes: the
 * 2xx copies Record-Route (§12.1.1), NOTIFYs go to the route set's first URI with Route headers
 * (§12.2.1.1, §8.1.2), a new connection is opened when the old one is gone, and the Contact of the
 * NOTIFY carries the dialog's transport. Final responses outside a dialog carry a To tag (§8.2.6.2).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpmClient, toTagOf } from '#functions/edge/cpm-client.ts';
import {
  createResponse,
  frameStream,
  getHeader,
  getHeaders,
  parseMessage,
  serializeMessage,
} from '#shared/sip/messages/index.ts';
import type { SipRequest } from '#shared/sip/messages/types.ts';
import { depositHttp, startTestEdge, type TestEdge } from './support.ts';

/** A TCP listener standing for the proxy's record-routed address: it answers 200 to what it gets. */
class Hop {
  readonly requests: { req: SipRequest; socket: Socket }[] = [];
  readonly sockets = new Set<Socket>();
  private waiters: (() => void)[] = [];
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(): Promise<Hop> {
    let hop: Hop | undefined;
    const server = createServer((socket) => hop!.accept(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const address = server.address();
    hop = new Hop(server, typeof address === 'object' && address ? address.port : 0);
    return hop;
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffer: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const framed = frameStream(buffer, 1 << 20);
        if (framed.kind !== 'message') break;
        buffer = framed.rest;
        const parsed = parseMessage(framed.bytes);
        if (!parsed.ok || parsed.message.kind !== 'request') continue;
        socket.write(serializeMessage(createResponse(parsed.message, 200, { toTag: 'ignored' })));
        this.requests.push({ req: parsed.message, socket });
        for (const w of this.waiters.splice(0)) w();
      }
    });
  }

  /** The `n`-th request received (0-based), waiting for it. */
  async nth(n: number): Promise<{ req: SipRequest; socket: Socket }> {
    while (this.requests.length <= n) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.requests[n]!;
  }

  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  close(): Promise<void> {
    this.dropConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe('dialog routing (RFC 3261 §12)', () => {
  let edge: TestEdge;
  let hop: Hop;
  const clients: CpmClient[] = [];

  beforeAll(async () => {
    edge = await startTestEdge();
    hop = await Hop.start();
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await hop?.close();
    await edge?.close();
  });

  it('copies Record-Route into the 2xx and sends NOTIFYs to the first route, reconnecting when it closed', async () => {
    const user = 'sip:routed@example.com';
    const c = await CpmClient.connect({ transport: 'tcp', server: { host: '127.0.0.1', port: edge.ports.tcp! }, user });
    clients.push(c);
    const rr = [`<sip:127.0.0.1:${hop.port};transport=tcp;lr;ftag=x1>`, '<sip:10.0.0.1;lr>'];
    const { response } = await c.subscribe({
      expires: 600,
      headers: rr.map((value) => ({ name: 'Record-Route', value })),
    });
    expect(response.status).toBe(200);
    expect(getHeaders(response, 'Record-Route')).toEqual(rr);
    expect(getHeader(response, 'Contact')).toMatch(/;transport=tcp>$/);

    const first = await hop.nth(0);
    expect(first.req.method).toBe('NOTIFY');
    expect(first.req.uri).toBe(`sip:routed@127.0.0.1:${c.localPort};transport=tcp`);
    expect(getHeaders(first.req, 'Route')).toEqual(rr);
    expect(getHeader(first.req, 'Contact')).toMatch(/;transport=tcp>$/);

    // The proxy closed its connection (idle, or restarted): the next NOTIFY opens a new one.
    hop.dropConnections();
    await depositHttp(edge.adminUrl, { to: user, from: 'sip:bob@example.net', body: 'after close' });
    const second = await hop.nth(1);
    expect(second.req.method).toBe('NOTIFY');
    expect(second.socket).not.toBe(first.socket);
    expect(second.req.body.toString()).toContain('total="1"');
  });

  it('gives final responses outside a dialog a To tag (§8.2.6.2)', async () => {
    const c = await CpmClient.connect({
      transport: 'udp',
      server: { host: '127.0.0.1', port: edge.ports.udp! },
      user: 'sip:tags@example.com',
    });
    clients.push(c);
    for (const method of ['OPTIONS', 'REGISTER', 'FROBNICATE']) {
      const res = await c.request(c.buildRequest(method));
      expect(res.status).toBeGreaterThanOrEqual(200);
      expect(toTagOf(res), method).toMatch(/^[0-9a-f]{16}$/);
    }
  });
});
