/**
 * JsSIP 3.13 (a standard WebSocket SIP client, here in Node with `ws` as its WebSocket) through
 * Kamailio to the service: subscription to the deferred-messages list, a deposit by MESSAGE,
 * refresh and unsubscribe, all in-dialog requests routed by the route set (RFC 3261 §12).
 */
import JsSIP from 'jssip';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeList } from '#shared/deferred/list-codec.ts';
import { EVENT_PACKAGE, LIST_CONTENT_TYPE } from '#shared/deferred/names.ts';
import { depositHttp, startTestEdge, type TestEdge } from '../e2e/support.ts';
import { Kamailio } from './kamailio.ts';

// JsSIP's WebSocketInterface uses the global WebSocket of a browser.
(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;

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
    for (const ua of uas) ua.stop();
    await proxy?.stop();
    await edge?.close();
  });

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
});
