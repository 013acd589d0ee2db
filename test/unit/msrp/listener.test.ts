import { randomBytes, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectMsrp, type MsrpClient, type MsrpClientOptions, type ReceivedMsrpMessage } from '#shared/msrp/client.ts';
import {
  MsrpParser,
  serializeRequest,
  type MsrpMessage,
  type MsrpRequest,
  type MsrpResponse,
} from '#shared/msrp/framing.ts';
import { MsrpListener, type MsrpListenerOptions, type MsrpSessionEndReason } from '#shared/msrp/listener.ts';
import { certificateFingerprint } from '#shared/msrp/fingerprint.ts';
import { encodeRelayHeader } from '#shared/msrp/relay-header.ts';
import { selfSignedPair, type CertificatePair } from '../../support/certificates.ts';

const CLIENT_PATH = 'msrp://127.0.0.1:9/client-s1;tcp';

const listeners: MsrpListener[] = [];
const clients: MsrpClient[] = [];
const sockets: Socket[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const s of sockets.splice(0)) s.destroy();
  for (const l of listeners.splice(0)) await l.stop();
});

async function startListener(options: Partial<MsrpListenerOptions> = {}): Promise<MsrpListener> {
  const listener = new MsrpListener({
    host: '127.0.0.1',
    port: 0,
    transactionTimeoutMs: 2000,
    connectTimeoutMs: 2000,
    ...options,
  });
  listeners.push(listener);
  await listener.start();
  return listener;
}

async function client(
  listener: MsrpListener,
  sessionId: string,
  extra: Partial<MsrpClientOptions> = {},
): Promise<MsrpClient> {
  const c = await connectMsrp({
    localPath: CLIENT_PATH,
    remotePath: listener.localPath(sessionId),
    bindTimeoutMs: 2000,
    ...extra,
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

function collect(c: MsrpClient): ReceivedMsrpMessage[] {
  const received: ReceivedMsrpMessage[] = [];
  c.on('message', (m) => received.push(m));
  return received;
}

/** A raw TCP peer that writes frames and collects what the listener sends back. */
async function rawPeer(port: number, localAddress = '127.0.0.1') {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  sockets.push(socket);
  await once(socket, 'connect');
  const parser = new MsrpParser();
  const frames: MsrpMessage[] = [];
  const waiters: Array<() => void> = [];
  socket.on('data', (data: Buffer) => {
    for (const item of parser.push(data).items) if (item.kind !== 'malformed') frames.push(item);
    waiters.splice(0).forEach((w) => w());
  });
  return {
    socket,
    write: (frame: Buffer | string) => socket.write(frame),
    /** The response to `transactionId`, once it arrives. */
    async response(transactionId: string): Promise<MsrpResponse> {
      for (;;) {
        const found = frames.find((f): f is MsrpResponse => f.kind === 'response' && f.transactionId === transactionId);
        if (found) return found;
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
    frames,
  };
}

function bindFrame(toPath: string, transactionId: string, fromPath = CLIENT_PATH, method = 'SEND'): Buffer {
  return serializeRequest({ transactionId, method, toPath: [toPath], fromPath: [fromPath], messageId: 'bind0001' });
}

describe('MsrpListener', () => {
  it('binds a client that sends a bodiless SEND, answering 200', async () => {
    const listener = await startListener();
    listener.expect('sess1', CLIENT_PATH);
    expect(listener.isBound('sess1')).toBe(false);
    const bound = once(listener, 'bound');
    const peer = await rawPeer(listener.port);
    peer.write(bindFrame(listener.localPath('sess1'), 'bindtx01'));
    const response = await peer.response('bindtx01');
    expect(response.status).toBe(200);
    // RFC 4975 §7.2: the response goes back to the sender, from the URI it addressed.
    expect(response.toPath).toEqual([CLIENT_PATH]);
    expect(response.fromPath).toEqual([listener.localPath('sess1')]);
    expect(await bound).toEqual(['sess1']);
    expect(listener.isBound('sess1')).toBe(true);
  });

  it('binds an msrps session on the TLS-offload port, where a load balancer hands TLS it ended', async () => {
    const listener = await startListener({
      advertiseHost: 'nlb.example.net',
      advertisePort: 2855,
      tlsOffload: { port: 0, advertise: { host: 'nlb.example.net', port: 2856 } },
    });
    listener.expect('sesstls', CLIENT_PATH, { secure: true });
    expect(listener.localPath('sesstls', true)).toBe('msrps://nlb.example.net:2856/sesstls;tcp');
    const peer = await rawPeer(listener.tlsOffloadPort!);
    // The plain path of the same session is not ours: RFC 4975 §6.1 compares the scheme too.
    peer.write(bindFrame(listener.localPath('sesstls'), 'plaintx1'));
    expect((await peer.response('plaintx1')).status).toBe(481);
    peer.write(bindFrame('msrps://nlb.example.net:2856/sesstls;tcp', 'tlstx001'));
    expect((await peer.response('tlstx001')).status).toBe(200);
    expect(listener.isBound('sesstls')).toBe(true);
  });

  it('refuses an msrps session without an MSRP TLS listener', async () => {
    const listener = await startListener();
    expect(() => listener.expect('sessnotls', CLIENT_PATH, { secure: true })).toThrow(TypeError);
  });

  it('delivers two messages in call order, each as a message/cpim SEND, and resolves 200 for both', async () => {
    const listener = await startListener();
    listener.expect('sess2', CLIENT_PATH);
    const c = await client(listener, 'sess2');
    const received = collect(c);
    const chunks: MsrpRequest[] = [];
    c.on('chunk', (r) => chunks.push(r));
    const first = listener.deliver('sess2', { id: 'm1', cpim: cpim('first') });
    const second = listener.deliver('sess2', { id: 'm2', cpim: cpim('second') });
    expect(await first).toEqual({ status: 200 });
    expect(await second).toEqual({ status: 200 });
    expect(received.map((m) => m.body.toString())).toEqual([cpim('first').toString(), cpim('second').toString()]);
    expect(received.map((m) => m.contentType)).toEqual(['message/cpim', 'message/cpim']);
    expect(received[0]!.messageId).not.toBe(received[1]!.messageId);
    expect(chunks[0]).toMatchObject({
      toPath: [CLIENT_PATH],
      fromPath: [listener.localPath('sess2')],
      byteRange: { start: 1, end: cpim('first').length, total: cpim('first').length },
      continuation: '$',
    });
    // Defaults: no Success-Report, no Failure-Report, so every chunk is answered and nothing else.
    expect(chunks[0]!.successReport).toBeUndefined();
    expect(chunks[0]!.failureReport).toBeUndefined();
  });

  it("pipelines a session's deliveries: the next SEND goes out before the one before is answered, each gets its own status", async () => {
    const listener = await startListener();
    listener.expect('sesspipe', CLIENT_PATH);
    let chunks = 0;
    // The client sits on its answer to the first SEND (RFC 4975 §7.1: responses match by transaction id).
    const c = await client(listener, 'sesspipe', { respond: () => (++chunks === 1 ? null : 200) });
    const received = collect(c);
    let firstSettled = false;
    const first = listener.deliver('sesspipe', { id: 'm1', cpim: cpim('first') });
    void first.then(() => (firstSettled = true));
    const second = listener.deliver('sesspipe', { id: 'm2', cpim: cpim('second') });
    expect(await second).toEqual({ status: 200 });
    expect(firstSettled).toBe(false);
    expect(received.map((m) => m.body.toString())).toEqual([cpim('first').toString(), cpim('second').toString()]);
    // The unanswered one ends with 408 after the transaction timeout.
    expect(await first).toEqual({ status: 408 });
  });

  it('chunks a 200 KiB message into 64 KiB SENDs, one transaction each, under one Message-ID', async () => {
    const listener = await startListener({ chunkBytes: 64 * 1024 });
    listener.expect('sess3', CLIENT_PATH);
    const c = await client(listener, 'sess3');
    const received = collect(c);
    const chunks: MsrpRequest[] = [];
    c.on('chunk', (r) => chunks.push(r));
    const body = randomBytes(200 * 1024);
    expect(await listener.deliver('sess3', { id: 'big', cpim: body })).toEqual({ status: 200 });
    expect(chunks.map((r) => r.headers.find((h) => h.name === 'Byte-Range')?.value)).toEqual([
      '1-65536/204800',
      '65537-131072/204800',
      '131073-196608/204800',
      '196609-204800/204800',
    ]);
    expect(chunks.map((r) => r.continuation)).toEqual(['+', '+', '+', '$']);
    expect(new Set(chunks.map((r) => r.transactionId)).size).toBe(4);
    expect(new Set(chunks.map((r) => r.messageId)).size).toBe(1);
    expect(received).toHaveLength(1);
    expect(received[0]!.body.equals(body)).toBe(true);
  });

  it('resolves with the client status when the client answers 486', async () => {
    const listener = await startListener();
    listener.expect('sess4', CLIENT_PATH);
    const c = await client(listener, 'sess4', { respond: () => 486 });
    const received = collect(c);
    expect(await listener.deliver('sess4', { id: 'm1', cpim: cpim('nope') })).toEqual({ status: 486 });
    expect(received).toEqual([]);
  });

  it('stops a chunked message at the first refused chunk', async () => {
    const listener = await startListener({ chunkBytes: 1000 });
    listener.expect('sess4b', CLIENT_PATH);
    let seen = 0;
    await client(listener, 'sess4b', { respond: () => (++seen === 2 ? 413 : 200) });
    expect(await listener.deliver('sess4b', { id: 'm1', cpim: randomBytes(5000) })).toEqual({ status: 413 });
    expect(seen).toBe(2);
  });

  it('resolves 408 when the client never answers within the transaction timeout', async () => {
    const listener = await startListener({ transactionTimeoutMs: 40 });
    listener.expect('sess5', CLIENT_PATH);
    await client(listener, 'sess5', { respond: () => null });
    expect(await listener.deliver('sess5', { id: 'm1', cpim: cpim('hello?') })).toEqual({ status: 408 });
    // The session is still usable: the next message gets its own chance.
    expect(listener.isBound('sess5')).toBe(true);
  });

  it('resolves 408 when the client closes the connection mid-delivery, and reports the session closed', async () => {
    const listener = await startListener({ chunkBytes: 1000 });
    listener.expect('sess6', CLIENT_PATH);
    const c = await client(listener, 'sess6', {
      respond: (request) => {
        if (request.byteRange?.start === 1) return 200;
        void c.close();
        return null;
      },
    });
    const closed = once(listener, 'closed');
    expect(await listener.deliver('sess6', { id: 'm1', cpim: randomBytes(3000) })).toEqual({ status: 408 });
    expect(await closed).toEqual(['sess6', 'connection-closed' satisfies MsrpSessionEndReason]);
    expect(listener.isBound('sess6')).toBe(false);
    // Later deliveries to the ended session fail at once, without waiting for a connection.
    expect(await listener.deliver('sess6', { id: 'm2', cpim: cpim('after') })).toEqual({ status: 408 });
  });

  it('resolves 408 after the connect timeout when nobody connects', async () => {
    const listener = await startListener({ connectTimeoutMs: 40 });
    listener.expect('sess7', CLIENT_PATH);
    const closed = once(listener, 'closed');
    const results = await Promise.all([
      listener.deliver('sess7', { id: 'm1', cpim: cpim('one') }),
      listener.deliver('sess7', { id: 'm2', cpim: cpim('two') }),
    ]);
    expect(results).toEqual([{ status: 408 }, { status: 408 }]);
    expect(await closed).toEqual(['sess7', 'connect-timeout']);
    // A client arriving after the timeout finds no session.
    const peer = await rawPeer(listener.port);
    peer.write(bindFrame(listener.localPath('sess7'), 'latetx01'));
    expect((await peer.response('latetx01')).status).toBe(481);
  });

  it('waits for a client that connects after deliver() was called', async () => {
    const listener = await startListener();
    listener.expect('sess8', CLIENT_PATH);
    const pending = listener.deliver('sess8', { id: 'm1', cpim: cpim('early') });
    const received: ReceivedMsrpMessage[] = [];
    const c = await client(listener, 'sess8', { onMessage: (m) => received.push(m) });
    expect(await pending).toEqual({ status: 200 });
    expect(received.map((m) => m.body.toString())).toEqual([cpim('early').toString()]);
    expect(c.received).toEqual(received);
  });

  it('answers 481 to a SEND for an unknown session', async () => {
    const listener = await startListener();
    await expect(
      connectMsrp({ localPath: CLIENT_PATH, remotePath: listener.localPath('nosuch'), bindTimeoutMs: 2000 }),
    ).rejects.toThrow(/481/);
  });

  it('answers 481 when the To-Path is not our URI or the sender is not the announced client', async () => {
    const listener = await startListener();
    listener.expect('sess9', CLIENT_PATH);
    const peer = await rawPeer(listener.port);
    const wrongHost = listener.localPath('sess9').replace('127.0.0.1', '127.0.0.2');
    peer.write(bindFrame(wrongHost, 'wrong001'));
    peer.write(bindFrame(listener.localPath('sess9'), 'wrong002', 'msrp://127.0.0.1:9/someone-else;tcp'));
    peer.write(bindFrame(listener.localPath('SESS9'), 'wrong003'));
    expect((await peer.response('wrong001')).status).toBe(481);
    expect((await peer.response('wrong002')).status).toBe(481);
    expect((await peer.response('wrong003')).status).toBe(481);
    expect(listener.isBound('sess9')).toBe(false);
  });

  it('answers deliver() for an unknown session with 481', async () => {
    const listener = await startListener();
    expect(await listener.deliver('never-announced', { id: 'm1', cpim: cpim('x') })).toEqual({ status: 481 });
  });

  it('answers 506 to a second connection for a bound session, 501 to unknown methods, nothing to REPORT', async () => {
    const listener = await startListener();
    listener.expect('sess10', CLIENT_PATH);
    await client(listener, 'sess10');
    const peer = await rawPeer(listener.port);
    peer.write(bindFrame(listener.localPath('sess10'), 'second01'));
    expect((await peer.response('second01')).status).toBe(506);
    peer.write(bindFrame(listener.localPath('sess10'), 'report01', CLIENT_PATH, 'REPORT'));
    peer.write(bindFrame(listener.localPath('sess10'), 'other001', CLIENT_PATH, 'FETCH'));
    expect((await peer.response('other001')).status).toBe(501);
    expect(peer.frames.some((f) => f.transactionId === 'report01')).toBe(false);
  });

  it('answers 400 to a malformed request and closes a connection that sends garbage', async () => {
    const listener = await startListener();
    listener.expect('sess11', CLIENT_PATH);
    const peer = await rawPeer(listener.port);
    peer.write(
      `MSRP bad00001 SEND\r\nTo-Path: ${listener.localPath('sess11')}\r\nFrom-Path: ${CLIENT_PATH}\r\nByte-Range: x\r\n-------bad00001$\r\n`,
    );
    expect((await peer.response('bad00001')).status).toBe(400);
    const closed = once(peer.socket, 'close');
    peer.write('GET / HTTP/1.1\r\n\r\n');
    await closed;
    expect(listener.isBound('sess11')).toBe(false);
  });

  it('closes the connection on closeSession and then no longer knows the session', async () => {
    const listener = await startListener();
    listener.expect('sess12', CLIENT_PATH);
    const c = await client(listener, 'sess12');
    const clientClosed = once(c, 'closed');
    const listenerClosed = once(listener, 'closed');
    listener.closeSession('sess12');
    await clientClosed;
    expect(await listenerClosed).toEqual(['sess12', 'closed-locally']);
    expect(await listener.deliver('sess12', { id: 'm1', cpim: cpim('gone') })).toEqual({ status: 481 });
  });

  it("ends a closed session's SEND in flight with 408 at once; its connection stays for the other session", async () => {
    const listener = await startListener({ transactionTimeoutMs: 60_000 });
    const otherPath = 'msrp://127.0.0.1:9/client-s2;tcp';
    listener.expect('sess14', CLIENT_PATH);
    listener.expect('sess15', otherPath);
    // RFC 4975 §5.4: one connection may carry several sessions.
    const peer = await rawPeer(listener.port);
    peer.write(bindFrame(listener.localPath('sess14'), 'bindA001'));
    peer.write(bindFrame(listener.localPath('sess15'), 'bindB001', otherPath));
    expect((await peer.response('bindA001')).status).toBe(200);
    expect((await peer.response('bindB001')).status).toBe(200);
    // The peer never answers this SEND: only the end of its session ends the wait (not the 60 s).
    const unanswered = listener.deliver('sess14', { id: 'm1', cpim: cpim('never answered') });
    listener.closeSession('sess14');
    expect(await unanswered).toEqual({ status: 408 });
    const answered = listener.deliver('sess15', { id: 'm2', cpim: cpim('still here') });
    for (;;) {
      const send = peer.frames.find(
        (f): f is MsrpRequest => f.kind === 'request' && f.toPath[0] === otherPath && f.method === 'SEND',
      );
      if (send) {
        peer.write(
          `MSRP ${send.transactionId} 200 OK\r\nTo-Path: ${send.fromPath[0]}\r\nFrom-Path: ${otherPath}\r\n-------${send.transactionId}$\r\n`,
        );
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(await answered).toEqual({ status: 200 });
  });

  it('resolves waiting deliveries with 408 when the listener stops', async () => {
    const listener = await startListener();
    listener.expect('sess13', CLIENT_PATH);
    const pending = listener.deliver('sess13', { id: 'm1', cpim: cpim('x') });
    await listener.stop();
    expect(await pending).toEqual({ status: 408 });
  });

  it('binds without answering when the client asks for no failure reports', async () => {
    const listener = await startListener();
    listener.expect('sess14', CLIENT_PATH);
    const bound = once(listener, 'bound');
    const peer = await rawPeer(listener.port);
    const toPath = [listener.localPath('sess14')];
    peer.write(
      serializeRequest({
        transactionId: 'quiet001',
        method: 'SEND',
        toPath,
        fromPath: [CLIENT_PATH],
        messageId: 'bind0001',
        failureReport: 'no',
      }),
    );
    peer.write(bindFrame('msrp://127.0.0.1:1/nosuch;tcp', 'probe001'));
    await bound;
    // The probe's 481 arrives after anything the first SEND could have caused.
    expect((await peer.response('probe001')).status).toBe(481);
    expect(peer.frames.map((f) => f.transactionId)).toEqual(['probe001']);
  });

  it('closes a connection that binds no session within the connect timeout', async () => {
    const listener = await startListener({ connectTimeoutMs: 40 });
    const peer = await rawPeer(listener.port);
    await once(peer.socket, 'close');
    expect(peer.frames).toEqual([]);
  });

  it('drops connections beyond maxConnections', async () => {
    const listener = await startListener({ maxConnections: 1 });
    listener.expect('sess15', CLIENT_PATH);
    await client(listener, 'sess15');
    const extra = await rawPeer(listener.port);
    await once(extra.socket, 'close');
    expect(listener.isBound('sess15')).toBe(true);
  });

  it('advertises the configured host and port in its a=path', async () => {
    const listener = new MsrpListener({
      host: '127.0.0.1',
      port: 0,
      advertiseHost: 'pf.example.com',
      advertisePort: 2855,
    });
    expect(listener.localPath('s-7c41')).toBe('msrp://pf.example.com:2855/s-7c41;tcp');
    expect(() => listener.localPath('bad;id')).toThrow(TypeError);
  });
});

// Issue 11 item 5: knowing a session's two paths must not let another host take its messages.
describe('MsrpListener: only the client named by the offer binds its session', () => {
  const FOREIGN = '127.0.0.2';

  it('answers 403 to a connection from another host, which gets nothing; the client still binds and receives', async () => {
    const listener = await startListener();
    listener.expect('own1', CLIENT_PATH);
    const foreign = await rawPeer(listener.port, FOREIGN);
    foreign.write(bindFrame(listener.localPath('own1'), 'steal001'));
    expect((await foreign.response('steal001')).status).toBe(403);
    expect(listener.isBound('own1')).toBe(false);

    const pending = listener.deliver('own1', { id: 'm1', cpim: cpim('for the owner') });
    const received: ReceivedMsrpMessage[] = [];
    await client(listener, 'own1', { onMessage: (m) => received.push(m) });
    expect(await pending).toEqual({ status: 200 });
    expect(received.map((m) => m.body.toString())).toEqual([cpim('for the owner').toString()]);
    // The refused connection was never sent the message (nor anything but its 403).
    expect(foreign.frames.map((f) => (f.kind === 'response' ? f.status : f.kind))).toEqual([403]);
  });

  it("refuses a direct client's session from an address other than its INVITE's source", async () => {
    const listener = await startListener();
    // The offer names 127.0.0.2, the INVITE came from 127.0.0.1: neither host alone may bind.
    const path = 'msrp://127.0.0.2:9/client-s1;tcp';
    listener.expect('own2', path, { clientAddress: '127.0.0.1' });
    const fromPathHost = await rawPeer(listener.port, FOREIGN);
    fromPathHost.write(bindFrame(listener.localPath('own2'), 'steal002', path));
    expect((await fromPathHost.response('steal002')).status).toBe(403);
    const fromSource = await rawPeer(listener.port, '127.0.0.1');
    fromSource.write(bindFrame(listener.localPath('own2'), 'steal003', path));
    expect((await fromSource.response('steal003')).status).toBe(403);
    expect(listener.isBound('own2')).toBe(false);

    // Where path host and INVITE source agree, the client binds.
    listener.expect('own3', CLIENT_PATH, { clientAddress: '127.0.0.1' });
    const own = await rawPeer(listener.port, '127.0.0.1');
    own.write(bindFrame(listener.localPath('own3'), 'owner003'));
    expect((await own.response('owner003')).status).toBe(200);
    expect(listener.isBound('own3')).toBe(true);
  });

  it('takes the client from the relay header of an allowed edge task, so the source check still applies', async () => {
    const self = { address: '127.0.0.1', port: 1 };
    const owner = await startListener({ relay: { allow: (a) => a === FOREIGN, self } });
    const local = { address: FOREIGN, port: 2855 };
    // The edge task relays the session's own client (127.0.0.1, the host its path names): bound.
    owner.expect('own4', CLIENT_PATH);
    const relay = await rawPeer(owner.port, FOREIGN);
    relay.write(encodeRelayHeader({ address: '127.0.0.1', port: 40000, tls: false }, local));
    relay.write(bindFrame(owner.localPath('own4'), 'relay004'));
    expect((await relay.response('relay004')).status).toBe(200);
    expect(owner.isBound('own4')).toBe(true);

    // It relays a client elsewhere that learned both paths: refused like that client directly.
    owner.expect('own5', CLIENT_PATH);
    const stranger = await rawPeer(owner.port, FOREIGN);
    stranger.write(
      Buffer.concat([
        encodeRelayHeader({ address: '127.0.0.3', port: 40001, tls: false }, local),
        bindFrame(owner.localPath('own5'), 'relay005'),
      ]),
    );
    expect((await stranger.response('relay005')).status).toBe(403);
    // Without a header the edge task is a host like any other, not the session's client.
    const bare = await rawPeer(owner.port, FOREIGN);
    bare.write(bindFrame(owner.localPath('own5'), 'relay006'));
    expect((await bare.response('relay006')).status).toBe(403);
    expect(owner.isBound('own5')).toBe(false);
  });

  it('stops at once while an edge task has connected and sent nothing yet', async () => {
    const self = { address: '127.0.0.1', port: 1 };
    const owner = await startListener({ connectTimeoutMs: 60_000, relay: { allow: (a) => a === FOREIGN, self } });
    const silent = await rawPeer(owner.port, FOREIGN);
    const closed = once(silent.socket, 'close');
    await owner.stop();
    await closed;
  }, 5_000);

  it('reads no relay header from a host outside the allowed edge tasks', async () => {
    const self = { address: '127.0.0.1', port: 1 };
    const strict = await startListener({ relay: { allow: (a) => a === '10.0.0.1', self } });
    strict.expect('own6', 'msrp://127.0.0.2:9/client-s1;tcp');
    // 127.0.0.1 claims to relay the session's client 127.0.0.2: the header is not honoured.
    const forger = await rawPeer(strict.port, '127.0.0.1');
    forger.write(encodeRelayHeader({ address: FOREIGN, port: 40002, tls: false }, { address: '127.0.0.1', port: 1 }));
    forger.write(bindFrame(strict.localPath('own6'), 'relay007', 'msrp://127.0.0.2:9/client-s1;tcp'));
    await once(forger.socket, 'close');
    expect(forger.frames).toEqual([]);
    expect(strict.isBound('own6')).toBe(false);
  });
});

// RFC 4975 §15 (msrps) and RFC 8122 §5: TLS ended by the listener; the offer's a=fingerprint
// names the certificate the client presents.
describe('MsrpListener over TLS', () => {
  const TLS_CLIENT_PATH = 'msrps://127.0.0.1:9/client-t1;tcp';
  let server: CertificatePair;
  let mine: CertificatePair;
  let other: CertificatePair;
  beforeAll(async () => {
    [server, mine, other] = await Promise.all([selfSignedPair('pf.test'), selfSignedPair('a'), selfSignedPair('b')]);
  });

  const tlsListener = () => startListener({ tls: { port: 0, key: server.key, cert: server.cert } });
  const tlsClient = (listener: MsrpListener, sessionId: string, pair?: CertificatePair, extra = {}) =>
    connectMsrp({
      localPath: TLS_CLIENT_PATH,
      remotePath: listener.localPath(sessionId, true),
      bindTimeoutMs: 2000,
      tls: { ...(pair ?? {}), serverFingerprint: listener.fingerprint! },
      ...extra,
    }).then((c) => {
      clients.push(c);
      return c;
    });

  it('names its TLS port in msrps: paths and the sha-256 fingerprint of its certificate', async () => {
    const listener = await tlsListener();
    expect(listener.localPath('t0', true)).toBe(`msrps://127.0.0.1:${listener.tlsPort}/t0;tcp`);
    expect(listener.fingerprint).toEqual({ hash: 'sha-256', value: new X509Certificate(server.cert).fingerprint256 });
    expect(listener.secureEndpoint()).toEqual({
      host: '127.0.0.1',
      port: listener.tlsPort,
      fingerprint: listener.fingerprint,
    });
  });

  it('binds the client whose certificate has the offered fingerprint and delivers over TLS', async () => {
    const listener = await tlsListener();
    listener.expect('t1', TLS_CLIENT_PATH, { secure: true, clientFingerprint: certificateFingerprint(mine.cert) });
    const received: ReceivedMsrpMessage[] = [];
    await tlsClient(listener, 't1', mine, { onMessage: (m: ReceivedMsrpMessage) => received.push(m) });
    expect(listener.isBound('t1')).toBe(true);
    expect(await listener.deliver('t1', { id: 'm1', cpim: cpim('secret') })).toEqual({ status: 200 });
    expect(received.map((m) => m.body.toString())).toEqual([cpim('secret').toString()]);
  });

  it('refuses (403) a certificate other than the offered one; the session waits for its client', async () => {
    const listener = await tlsListener();
    listener.expect('t2', TLS_CLIENT_PATH, { secure: true, clientFingerprint: certificateFingerprint(mine.cert) });
    await expect(tlsClient(listener, 't2', other)).rejects.toThrow('status 403');
    expect(listener.isBound('t2')).toBe(false);
    const pending = listener.deliver('t2', { id: 'm2', cpim: cpim('kept') });
    const received: ReceivedMsrpMessage[] = [];
    await tlsClient(listener, 't2', mine, { onMessage: (m: ReceivedMsrpMessage) => received.push(m) });
    expect(await pending).toEqual({ status: 200 });
    expect(received).toHaveLength(1);
  });

  it('binds a client that presents no certificate (RFC 8122 checks only one presented)', async () => {
    const listener = await tlsListener();
    listener.expect('t3', TLS_CLIENT_PATH, { secure: true, clientFingerprint: certificateFingerprint(mine.cert) });
    await tlsClient(listener, 't3');
    expect(listener.isBound('t3')).toBe(true);
  });

  it('refuses an msrps session to a connection in clear on the plain port', async () => {
    const listener = await tlsListener();
    listener.expect('t4', TLS_CLIENT_PATH, { secure: true });
    const peer = await rawPeer(listener.port);
    peer.write(bindFrame(listener.localPath('t4', true), 'clear001', TLS_CLIENT_PATH));
    const response = await peer.response('clear001');
    expect([response.status, response.comment]).toEqual([403, 'Forbidden - msrps session needs TLS']);
    expect(listener.isBound('t4')).toBe(false);
  });

  it('refuses to connect when the service certificate is not the answered fingerprint', async () => {
    const listener = await tlsListener();
    listener.expect('t5', TLS_CLIENT_PATH, { secure: true });
    await expect(
      connectMsrp({
        localPath: TLS_CLIENT_PATH,
        remotePath: listener.localPath('t5', true),
        bindTimeoutMs: 2000,
        tls: { serverFingerprint: certificateFingerprint(other.cert) },
      }),
    ).rejects.toThrow('certificate does not match a=fingerprint');
    expect(listener.isBound('t5')).toBe(false);
  });
});
