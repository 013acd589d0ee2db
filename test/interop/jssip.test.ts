/**
 * JsSIP 3.13 (a standard WebSocket SIP client, here in Node with `ws` as its WebSocket) through
 * Kamailio to the service: subscription to the deferred-messages list, a deposit by MESSAGE,
 * refresh and unsubscribe, a pull by `ua.call` (the multipart INVITE, ACK, MSRP delivery, the
 * service's BYE), all in-dialog requests routed by the route set (RFC 3261 §12).
 */
import JsSIP from 'jssip';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeActionList } from '#shared/deferred/actions.ts';
import { decodeList } from '#shared/deferred/list-codec.ts';
import { DEFERRED_ICSI, EVENT_PACKAGE, LIST_CONTENT_TYPE } from '#shared/deferred/names.ts';
import { connectMsrp } from '#shared/msrp/client.ts';
import { buildMsrpOffer, parseMsrpOffer } from '#shared/sdp/msrp-sdp.ts';
import { buildMultipart } from '#shared/sip/messages/index.ts';
import {
  depositHttp,
  eventually,
  pendingClientTransactions,
  sentCount,
  startTestEdge,
  type TestEdge,
} from '../e2e/support.ts';
import { Kamailio } from './kamailio.ts';

// JsSIP's WebSocketInterface uses the global WebSocket of a browser.
(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;

/**
 * A stand-in RTCPeerConnection for JsSIP's `ua.call`: its offer is an MSRP SDP (RFC 4975), which
 * no browser peer connection makes; the answer is only kept.
 */
let nextOffer = '';
class MsrpPeerConnection {
  localDescription: { type: string; sdp: string } | null = null;
  remoteDescription: { type: string; sdp: string } | null = null;
  iceGatheringState = 'complete';
  iceConnectionState = 'new';
  signalingState = 'stable';
  addEventListener(): void {}
  removeEventListener(): void {}
  getSenders(): unknown[] {
    return [];
  }
  getReceivers(): unknown[] {
    return [];
  }
  addTrack(): void {}
  close(): void {}
  createOffer(): Promise<{ type: string; sdp: string }> {
    return Promise.resolve({ type: 'offer', sdp: nextOffer });
  }
  setLocalDescription(d: { type: string; sdp: string }): Promise<void> {
    this.localDescription = d;
    return Promise.resolve();
  }
  setRemoteDescription(d: { type: string; sdp: string }): Promise<void> {
    this.remoteDescription = d;
    return Promise.resolve();
  }
}
const g = globalThis as Record<string, unknown>;
g.window ??= globalThis;
g.RTCPeerConnection ??= MsrpPeerConnection;
g.RTCSessionDescription ??= class {
  constructor(init: object) {
    Object.assign(this, init);
  }
};

type Notify = { isFinal: boolean; total: number };

/** A JsSIP user agent connected over WebSocket; resolves once the socket is up. */
async function userAgent(wsUrl: string, user: string): Promise<JsSIP.UA> {
  const ua = new JsSIP.UA({
    sockets: [new JsSIP.WebSocketInterface(wsUrl)],
    uri: user,
    register: false,
    session_timers: false,
  });
  const connected = new Promise<void>((resolve, reject) => {
    ua.once('connected', () => resolve());
    ua.once('disconnected', () => reject(new Error(`JsSIP could not connect to ${wsUrl}`)));
  });
  ua.start();
  await connected;
  return ua;
}

/** Every NOTIFY of a subscriber, waited on in order. */
type Subscriber = ReturnType<JsSIP.UA['subscribe']>;

function notifications(sub: Subscriber) {
  const seen: Notify[] = [];
  const waiters: (() => void)[] = [];
  sub.on('notify', (isFinal: boolean, _request: unknown, body: string | undefined) => {
    const list = decodeList(body ?? '');
    seen.push({ isFinal, total: list.ok ? list.total : -1 });
    for (const w of waiters.splice(0)) w();
  });
  let next = 0;
  return async (): Promise<Notify> => {
    while (seen.length <= next) await new Promise<void>((resolve) => waiters.push(resolve));
    return seen[next++]!;
  };
}

describe('JsSIP over WebSocket through Kamailio', () => {
  let edge: TestEdge;
  let proxy: Kamailio;
  const uas: JsSIP.UA[] = [];

  beforeAll(async () => {
    edge = await startTestEdge();
    proxy = await Kamailio.start({ service: { udp: edge.ports.udp!, tcp: edge.ports.tcp! } });
  }, 60_000);
  afterAll(async () => {
    // Nothing of the service's left in flight through the proxy when it goes: a NOTIFY whose
    // answer dies with the proxy would wait for Timer F (32 s) before the edge can stop.
    await eventually(async () => (await pendingClientTransactions(edge)) === 0, 'the last answers to the service');
    for (const ua of uas) ua.stop();
    await proxy?.stop();
    await edge?.close();
  }, 120_000);

  it('subscribes, sees a MESSAGE deposit, refreshes and unsubscribes', async () => {
    const user = 'sip:jssip@example.com';
    await depositHttp(edge.adminUrl, { to: user, from: 'sip:bob@example.net', body: 'stored before' });
    const ua = await userAgent(`ws://127.0.0.1:${proxy.ports.main}`, user);
    uas.push(ua);

    const sub = ua.subscribe(user, EVENT_PACKAGE, LIST_CONTENT_TYPE, { expires: 600, contentType: LIST_CONTENT_TYPE });
    const next = notifications(sub);
    const accepted = new Promise<void>((resolve) => sub.once('accepted', () => resolve()));
    sub.subscribe();
    await accepted;
    expect(await next()).toEqual({ isFinal: false, total: 1 });

    // A deposit by SIP MESSAGE from another JsSIP agent, through the proxy.
    const bob = await userAgent(`ws://127.0.0.1:${proxy.ports.main}`, 'sip:bob@example.net');
    uas.push(bob);
    const status = await new Promise<number>((resolve) => {
      bob.sendMessage(user, 'deposited over WebSocket', {
        contentType: 'text/plain',
        eventHandlers: {
          succeeded: (e) => resolve(e.response.status_code),
          failed: (e) => resolve(e.response?.status_code ?? 0),
        },
      });
    });
    expect(status).toBe(202);
    expect(await next()).toEqual({ isFinal: false, total: 2 });

    // Refresh (an in-dialog SUBSCRIBE through the proxy) earns a NOTIFY.
    sub.subscribe();
    expect(await next()).toEqual({ isFinal: false, total: 2 });

    const terminated = new Promise<number>((resolve) => sub.once('terminated', (code) => resolve(code)));
    sub.terminate();
    expect(await terminated).toBe(sub.C.FINAL_NOTIFY_RECEIVED);
  }, 60_000);

  it('pulls with ua.call: the INVITE with the multipart action list, ACK, MSRP delivery and the BYE', async () => {
    const user = 'sip:jssip-call@example.com';
    await depositHttp(edge.adminUrl, { to: user, from: 'sip:bob@example.net', body: 'pulled by JsSIP' });
    const ua = await userAgent(`ws://127.0.0.1:${proxy.ports.main}`, user);
    uas.push(ua);
    // JsSIP cannot fetch (it turns Expires 0 into 900): the subscription stays until terminated.
    const sub = ua.subscribe(user, EVENT_PACKAGE, LIST_CONTENT_TYPE, { expires: 600, contentType: LIST_CONTENT_TYPE });
    const listBody = new Promise<string>((resolve) =>
      sub.once('notify', (_f: boolean, _r: unknown, b?: string) => resolve(b ?? '')),
    );
    sub.subscribe();
    const list = decodeList(await listBody);
    if (!list.ok) throw new Error(list.reason);
    expect(list.total).toBe(1);

    const offer = buildMsrpOffer({ host: '127.0.0.1', port: 9, sessionId: 'jssip1' });
    nextOffer = offer.sdp;
    const boundary = 'jssipb1';
    const body = buildMultipart(
      [
        { headers: [{ name: 'Content-Type', value: 'application/sdp' }], body: Buffer.from(offer.sdp) },
        {
          headers: [
            { name: 'Content-Type', value: LIST_CONTENT_TYPE },
            { name: 'Content-Disposition', value: 'render;handling=required' },
          ],
          body: Buffer.from(encodeActionList([{ id: list.entries[0]!.id, action: 'retrieve' }])),
        },
      ],
      boundary,
    ).toString('utf8');

    let answer = '';
    let ended: Promise<string> = Promise.resolve('');
    const confirmed = new Promise<void>((resolve, reject) => {
      const session = ua.call(user, {
        mediaConstraints: { audio: false, video: false },
        extraHeaders: [
          `Accept-Contact: *;+g.3gpp.icsi-ref="${encodeURIComponent(DEFERRED_ICSI)}"`,
          `P-Preferred-Service: ${DEFERRED_ICSI}`,
        ],
        eventHandlers: {
          // The body is the multipart of SDP and action list (protocol.md "INVITE with actions").
          sending: (e: { request: { body: string; setHeader: (n: string, v: string) => void } }) => {
            e.request.body = body;
            e.request.setHeader('content-type', `multipart/mixed;boundary=${boundary}`);
          },
          confirmed: () => resolve(),
          failed: (e: { cause?: string }) => reject(new Error(`call failed: ${e.cause ?? '?'}`)),
        },
      });
      session.on('accepted', (e: { response?: { body?: string } }) => (answer = e.response?.body ?? ''));
      ended = new Promise<string>((resolveEnd) =>
        session.on('ended', (e: { originator: string }) => resolveEnd(e.originator)),
      );
    });
    await confirmed;
    const remote = parseMsrpOffer(answer);
    if (!remote.ok) throw new Error(remote.reason);
    const got = new Promise<Buffer>((resolve) => {
      void connectMsrp({ localPath: offer.path, remotePath: remote.path, onMessage: (m) => resolve(m.body) }).then(
        (msrp) => ended.finally(() => msrp.close()),
      );
    });
    expect((await got).toString()).toContain('pulled by JsSIP');
    // The service's BYE reaches JsSIP through the proxy once the delivery is done, and JsSIP's 200
    // (through the proxy, over the connection the BYE went on) completes the service's BYE
    // transaction: counted as answered 2xx, not a Timer F 408.
    expect(await ended).toBe('remote');
    await eventually(async () => (await sentCount(edge, 'BYE', '2xx')) === 1, "the 200 to the service's BYE");
    expect(await sentCount(edge, 'BYE', '4xx')).toBe(0);

    const terminated = new Promise<number>((resolve) => sub.once('terminated', (code) => resolve(code)));
    sub.terminate();
    expect(await terminated).toBe(sub.C.FINAL_NOTIFY_RECEIVED);
  }, 60_000);
});
