/**
 * Several listeners behind one load balancer: a client's connection for a session held by
 * another listener is piped to that listener (the owner named in the session id).
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, makeTrustCheck } from '#shared/config.ts';
import { connectMsrp, type MsrpClient, type ReceivedMsrpMessage } from '#shared/msrp/client.ts';
import { MsrpParser, serializeRequest, type MsrpResponse } from '#shared/msrp/framing.ts';
import { MsrpListener, type MsrpListenerOptions } from '#shared/msrp/listener.ts';
import { certificateFingerprint } from '#shared/msrp/fingerprint.ts';
import { encodeSessionId } from '#shared/msrp/session-owner.ts';
import { selfSignedPair } from '../../support/certificates.ts';

const CLIENT_PATH = 'msrp://127.0.0.1:9/client-r1;tcp';
const LOOPBACK = makeTrustCheck(['127.0.0.0/8']);

const listeners: MsrpListener[] = [];
const clients: MsrpClient[] = [];
const sockets: Socket[] = [];
const servers: Server[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const s of sockets.splice(0)) s.destroy();
  for (const l of listeners.splice(0)) await l.stop();
  for (const s of servers.splice(0)) await new Promise((resolve) => s.close(resolve));
});

/**
 * A listener as a task behind the NLB: every task advertises the load balancer's address, and
 * relays (unless told not to) to owners the allow check accepts.
 */
async function task(
  allow: ((address: string) => boolean) | null = LOOPBACK,
  extra: Partial<MsrpListenerOptions> = {},
): Promise<MsrpListener> {
  const options: MsrpListenerOptions = {
    ...extra,
    host: '127.0.0.1',
    port: 0,
    advertiseHost: 'nlb.example.net',
    advertisePort: 2855,
    transactionTimeoutMs: 2000,
    connectTimeoutMs: 2000,
  };
  const listener: MsrpListener = new MsrpListener({
    ...options,
    ...(allow
      ? {
          relay: {
            allow,
            self: {
              address: '127.0.0.1',
              get port() {
                return listener.port;
              },
            },
          },
        }
      : {}),
  });
  listeners.push(listener);
  await listener.start();
  return listener;
}

/** A session id owned by `port` on 127.0.0.1. */
function ownedBy(port: number): string {
  return encodeSessionId({ address: '127.0.0.1', port }, randomBytes(12).toString('base64url'));
}

/** The MSRP client, connected to `via` (as the NLB might pick it) for the session `sessionId` of `owner`. */
async function clientVia(via: MsrpListener, owner: MsrpListener, sessionId: string): Promise<MsrpClient> {
  const c = await connectMsrp({
    localPath: CLIENT_PATH,
    remotePath: owner.localPath(sessionId),
    connectTo: { host: '127.0.0.1', port: via.port },
    bindTimeoutMs: 2000,
  });
  clients.push(c);
  return c;
}

function cpim(text: string): Buffer {
  return Buffer.from(
    `From: <sip:bob@example.net>\r\nTo: <sip:alice@example.com>\r\nDateTime: 2026-11-23T10:00:00.000Z\r\n\r\n` +
      `Content-Type: text/plain;charset=UTF-8\r\n\r\n${text}`,
  );
}

/** A TCP server on 127.0.0.1 that counts connections and holds them open. */
async function countingServer(): Promise<{ port: number; connections: () => number }> {
  let count = 0;
  const server = createServer((socket) => {
    count++;
    sockets.push(socket);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, connections: () => count };
}

/** A port on 127.0.0.1 nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Write a bodiless binding SEND on a raw connection; resolve with the response to it. */
async function rawBind(
  port: number,
  toPath: string,
  localAddress = '127.0.0.1',
): Promise<{ response: MsrpResponse; socket: Socket }> {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  sockets.push(socket);
  await once(socket, 'connect');
  const parser = new MsrpParser();
  const response = new Promise<MsrpResponse>((resolve) => {
    socket.on('data', (data: Buffer) => {
      for (const item of parser.push(data).items) if (item.kind === 'response') resolve(item);
    });
  });
  socket.write(
    serializeRequest({
      transactionId: 'rbind001',
      method: 'SEND',
      toPath: [toPath],
      fromPath: [CLIENT_PATH],
      messageId: 'rbindmsg1',
    }),
  );
  return { response: await response, socket };
}

// Short: a relay loop or a missing answer must fail fast, not at the suite's 30 s.
describe('MsrpListener relay', { timeout: 10_000 }, () => {
  it("binds a client that reached another task to the owner's session, and delivers through it intact", async () => {
    const a = await task();
    const b = await task();
    const sessionId = ownedBy(b.port);
    b.expect(sessionId, CLIENT_PATH);
    const bound = once(b, 'bound');
    const c = await clientVia(a, b, sessionId);
    expect(await bound).toEqual([sessionId]);
    expect(b.isBound(sessionId)).toBe(true);
    expect(a.isBound(sessionId)).toBe(false);

    const received: ReceivedMsrpMessage[] = [];
    c.on('message', (m) => received.push(m));
    expect(await b.deliver(sessionId, { id: 'm1', cpim: cpim('Lunch?') })).toEqual({ status: 200 });
    expect(received.map((m) => [m.contentType, m.body.toString()])).toEqual([
      ['message/cpim', cpim('Lunch?').toString()],
    ]);
  });

  it('carries a message above 64 KiB in chunks, byte for byte', async () => {
    const a = await task();
    const b = await task();
    const sessionId = ownedBy(b.port);
    b.expect(sessionId, CLIENT_PATH);
    const c = await clientVia(a, b, sessionId);
    let chunks = 0;
    c.on('chunk', () => chunks++);
    const received: ReceivedMsrpMessage[] = [];
    c.on('message', (m) => received.push(m));
    const big = Buffer.concat([cpim(''), randomBytes(200 * 1024)]);
    expect(await b.deliver(sessionId, { id: 'big', cpim: big })).toEqual({ status: 200 });
    expect(chunks).toBe(Math.ceil(big.length / (64 * 1024)));
    expect(received).toHaveLength(1);
    expect(received[0]!.body.equals(big)).toBe(true);
  });

  it('answers 481 itself, never connecting, when the owner is outside the allowed ranges', async () => {
    const owner = await countingServer();
    const a = await task(makeTrustCheck(['10.0.0.0/8']));
    const sessionId = ownedBy(owner.port);
    const { response } = await rawBind(a.port, `msrp://nlb.example.net:2855/${sessionId};tcp`);
    expect(response.status).toBe(481);
    expect(owner.connections()).toBe(0);
  });

  it('answers 481 without a relay configured, as a single task does', async () => {
    const a = await task(null);
    const b = await task();
    const sessionId = ownedBy(b.port);
    b.expect(sessionId, CLIENT_PATH);
    await expect(clientVia(a, b, sessionId)).rejects.toThrow(/481/);
    expect(b.isBound(sessionId)).toBe(false);
  });

  it('answers 481 for a session it names as its own owner but does not hold, instead of looping', async () => {
    const a = await task();
    const sessionId = ownedBy(a.port);
    const { response } = await rawBind(a.port, `msrp://nlb.example.net:2855/${sessionId};tcp`);
    expect(response.status).toBe(481);
  });

  it('answers 481 and closes the connection when the owner refuses connections', async () => {
    const a = await task();
    const sessionId = ownedBy(await closedPort());
    const { response, socket } = await rawBind(a.port, `msrp://nlb.example.net:2855/${sessionId};tcp`);
    expect(response.status).toBe(481);
    expect(response.toPath).toEqual([CLIENT_PATH]);
    if (!socket.closed) await once(socket, 'close');
  });

  it("closes the owner's connection when the client closes: the owner's delivery ends 408", async () => {
    const a = await task();
    const b = await task();
    const sessionId = ownedBy(b.port);
    b.expect(sessionId, CLIENT_PATH);
    const c = await clientVia(a, b, sessionId);
    const closed = once(b, 'closed');
    await c.close();
    expect(await closed).toEqual([sessionId, 'connection-closed']);
    expect(await b.deliver(sessionId, { id: 'late', cpim: cpim('late') })).toEqual({ status: 408 });
  });

  it('closes the client when the owner ends the session', async () => {
    const a = await task();
    const b = await task();
    const sessionId = ownedBy(b.port);
    b.expect(sessionId, CLIENT_PATH);
    const c = await clientVia(a, b, sessionId);
    const gone = once(c, 'closed');
    b.closeSession(sessionId);
    await gone;
    expect(c.closed).toBe(true);
  });
});

// Issue 11 item 5: the owner checks the relayed client, not the edge task relaying it.
describe('MsrpListener relay: the owner checks the client the relay names', { timeout: 10_000 }, () => {
  it('refuses (403) a client from another host than its path names, relayed as directly', async () => {
    const a = await task();
    const b = await task();
    const sessionId = ownedBy(b.port);
    b.expect(sessionId, CLIENT_PATH);
    // 127.0.0.2 knows both paths and reaches task a; a is an allowed edge task for b.
    const { response } = await rawBind(a.port, b.localPath(sessionId), '127.0.0.2');
    expect(response.status).toBe(403);
    expect(b.isBound(sessionId)).toBe(false);
    // The session's own client, through the same task, binds.
    await clientVia(a, b, sessionId);
    expect(b.isBound(sessionId)).toBe(true);
  });

  it("carries a TLS client's certificate: the owner binds only the one the offer's fingerprint names", async () => {
    const [server, mine, other] = await Promise.all([
      selfSignedPair('nlb.example.net'),
      selfSignedPair(),
      selfSignedPair(),
    ]);
    const tls = { port: 0, ...server, advertise: { host: 'nlb.example.net', port: 2856 } };
    const a = await task(LOOPBACK, { tls });
    const b = await task(LOOPBACK, { tls });
    const sessionId = ownedBy(b.port);
    const clientPath = 'msrps://127.0.0.1:9/client-r2;tcp';
    b.expect(sessionId, clientPath, { secure: true, clientFingerprint: certificateFingerprint(mine.cert) });
    const viaTls = (pair: { key: string; cert: string }) =>
      connectMsrp({
        localPath: clientPath,
        remotePath: b.localPath(sessionId, true),
        connectTo: { host: '127.0.0.1', port: a.tlsPort! },
        bindTimeoutMs: 2000,
        tls: { ...pair, serverFingerprint: a.fingerprint! },
      });
    await expect(viaTls(other)).rejects.toThrow('status 403');
    expect(b.isBound(sessionId)).toBe(false);
    const c = await viaTls(mine);
    clients.push(c);
    const received: ReceivedMsrpMessage[] = [];
    c.on('message', (m) => received.push(m));
    expect(await b.deliver(sessionId, { id: 'm1', cpim: cpim('over tls') })).toEqual({ status: 200 });
    expect(received).toHaveLength(1);
  });
});

describe('MSRP_RELAY_ALLOW', () => {
  it('relays nothing by default and stops the start naming the variable on a bad range', () => {
    expect(loadConfig({}).msrpRelayAllow).toEqual([]);
    expect(loadConfig({ MSRP_RELAY_ALLOW: '10.0.0.0/16, 10.1.0.0/16' }).msrpRelayAllow).toEqual([
      '10.0.0.0/16',
      '10.1.0.0/16',
    ]);
    expect(() => loadConfig({ MSRP_RELAY_ALLOW: '10.0.0.0/40' })).toThrow(ConfigError);
    expect(() => loadConfig({ MSRP_RELAY_ALLOW: 'edge.internal' })).toThrow(/^MSRP_RELAY_ALLOW: /);
  });
});
