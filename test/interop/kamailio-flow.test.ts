/**
 * The service behind a real SIP/IP Core (issue 12): Kamailio record-routes and asserts identity;
 * the project's CPM client over UDP, TCP and WebSocket goes through it with no preloaded Route.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpmClient, type CpmClientOptions } from '#functions/edge/cpm-client.ts';
import { decodeList } from '#shared/deferred/list-codec.ts';
import { getHeader, getHeaders, parseVia } from '#shared/sip/messages/index.ts';
import type { SipRequest } from '#shared/sip/messages/types.ts';
import { depositHttp, eventually, firstDelivery, sentCount, startTestEdge, type TestEdge } from '../e2e/support.ts';
import { Kamailio } from './kamailio.ts';

const listOf = (notify: SipRequest) => {
  const l = decodeList(notify.body.toString('utf8'));
  if (!l.ok) throw new Error(l.reason);
  return l;
};

describe('through Kamailio', () => {
  let edge: TestEdge;
  let proxy: Kamailio;
  const clients: CpmClient[] = [];
  const client = async (user: string, transport: 'udp' | 'tcp' | 'ws', port = proxy.ports.main) => {
    const c = await CpmClient.connect({ transport, server: { host: '127.0.0.1', port }, user });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    edge = await startTestEdge();
    proxy = await Kamailio.start({ service: { udp: edge.ports.udp!, tcp: edge.ports.tcp! } });
  }, 60_000);
  afterAll(async () => {
    for (const c of clients) c.close();
    await proxy?.stop();
    await edge?.close();
  });

  for (const transport of ['udp', 'tcp', 'ws'] as const) {
    it(`${transport}: subscribe, pull, ACK and BYE routed, refresh and unsubscribe`, async () => {
      const user = `sip:flow-${transport}@example.com`;
      await depositHttp(edge.adminUrl, { to: user, from: 'sip:bob@example.net', body: `hello over ${transport}` });
      const c = await client(user, transport);
      const { response, dialog } = await c.subscribe({ expires: 600 });
      expect(response.status).toBe(200);
      expect(getHeaders(response, 'Record-Route').length).toBeGreaterThan(0);
      const n0 = await c.nextNotify(dialog);
      // The service reaches the proxy over UDP (for UDP clients) or TCP; its Contact says which.
      expect(getHeader(n0, 'Contact')).toMatch(transport === 'udp' ? /;transport=udp>$/ : /;transport=tcp>$/);
      const list = listOf(n0);
      expect(list.total).toBe(1);

      const inv = await c.invite([{ id: list.entries[0]!.id, action: 'retrieve' }]);
      expect(inv.response.status).toBe(200);
      const { body, msrp } = await firstDelivery(inv);
      expect(body.toString()).toContain(`hello over ${transport}`);
      // The BYE waits for the ACK of the 2xx (RFC 3261 §15): it comes only when the ACK was routed.
      const bye = await c.nextBye(inv.dialog, 20_000);
      expect(getHeader(bye, 'Contact') ?? '').toMatch(/transport=|^$/);
      msrp.close();

      for (;;) if (listOf(await c.nextNotify(dialog)).total === 0) break;
      const refreshed = await c.refresh(dialog, 1200);
      expect(refreshed.status).toBe(200);
      expect(getHeader(refreshed, 'Expires')).toBe('1200');
      await c.nextNotify(dialog);
      const ended = await c.refresh(dialog, 0);
      expect(ended.status).toBe(200);
      const last = await c.nextNotify(dialog);
      expect(getHeader(last, 'Subscription-State')).toBe('terminated;reason=timeout');
    }, 60_000);
  }
});

/** The edge's connection events, to wait on a connection to the proxy opening and closing. */
class ConnectionWatch {
  private readonly open = new Map<string, number>();
  private readonly closed = new Set<string>();
  private waiters: (() => void)[] = [];

  readonly log = (_level: string, msg: string, extra?: object) => {
    const e = (extra ?? {}) as { connectionId?: string; remotePort?: number; outbound?: boolean };
    if (msg === 'connection open' && e.outbound && e.connectionId) this.open.set(e.connectionId, e.remotePort ?? 0);
    else if (msg === 'connection closed' && e.connectionId) this.closed.add(e.connectionId);
    else return;
    for (const w of this.waiters.splice(0)) w();
  };

  /** Connections the edge opened to `port`, in order. */
  openedTo(port: number): string[] {
    return [...this.open].filter(([, p]) => p === port).map(([id]) => id);
  }

  /**
   * Whether the edge opened a new connection to `port` after its first one closed, and it is
   * open. Kamailio's children die one by one after a kill, and one may still accept a connection
   * and drop it, so a retry can take more than one new connection.
   */
  reopened(port: number): boolean {
    const [first, ...later] = this.openedTo(port);
    return first !== undefined && this.isClosed(first) && later.length > 0 && !this.isClosed(later.at(-1)!);
  }

  async until(cond: () => boolean): Promise<void> {
    while (!cond()) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  isClosed(id: string): boolean {
    return this.closed.has(id);
  }
}

describe('through Kamailio, when connections to it go away', () => {
  let edge: TestEdge;
  const watch = new ConnectionWatch();
  const proxies: Kamailio[] = [];
  const clients: CpmClient[] = [];

  beforeAll(async () => {
    edge = await startTestEdge({ log: watch.log });
  }, 60_000);
  afterAll(async () => {
    for (const c of clients) c.close();
    for (const p of proxies) await p.stop();
    await edge?.close();
  });

  const start = async (idleSeconds: number) => {
    const p = await Kamailio.start({ service: { udp: edge.ports.udp!, tcp: edge.ports.tcp! }, idleSeconds });
    proxies.push(p);
    return p;
  };
  /**
   * A UDP client whose requests reach the service over TCP through `proxy`: the proxy-to-service
   * leg is the one these tests break; a UDP client needs no connection of its own to the proxy,
   * so a restarted proxy on the same address reaches it as before.
   */
  const udpClient = async (proxy: Kamailio, user: string, answer?: CpmClientOptions['answer']) => {
    const c = await CpmClient.connect({
      transport: 'udp',
      server: { host: '127.0.0.1', port: proxy.ports.tcpLeg },
      user,
      ...(answer ? { answer } : {}),
    });
    clients.push(c);
    return c;
  };
  const subscribed = async (proxy: Kamailio, user: string) => {
    const c = await udpClient(proxy, user);
    const { response, dialog } = await c.subscribe({ expires: 600 });
    expect(response.status).toBe(200);
    expect(listOf(await c.nextNotify(dialog)).total).toBe(0);
    return { c, dialog };
  };
  const answeredNotifies = () => sentCount(edge, 'NOTIFY', '2xx');
  const subscriptionsEnded = async () =>
    (await edge.metrics.subscriptionsEnded.get()).values.reduce((n, v) => n + v.value, 0);

  it('a proxy that closed its idle TCP connection gets the next NOTIFY on a new one', async () => {
    const proxy = await start(2);
    const user = 'sip:idle@example.com';
    const { c, dialog } = await subscribed(proxy, user);
    const [first] = watch.openedTo(proxy.ports.main);
    expect(first).toBeDefined();
    await watch.until(() => watch.isClosed(first!));
    await depositHttp(edge.adminUrl, { to: user, from: 'sip:bob@example.net', body: 'after idle' });
    expect(listOf(await c.nextNotify(dialog)).total).toBe(1);
    expect(watch.openedTo(proxy.ports.main).length).toBe(2);
  }, 60_000);

  it('a proxy killed and restarted between two NOTIFYs gets the second on a new connection', async () => {
    const proxy = await start(120);
    const user = 'sip:restart@example.com';
    const answered = await answeredNotifies();
    const { c, dialog } = await subscribed(proxy, user);
    // Between two NOTIFYs: the service has the 200 to the first before the proxy dies.
    await eventually(async () => (await answeredNotifies()) > answered, 'the 200 to the first NOTIFY');
    const [first] = watch.openedTo(proxy.ports.main);
    await proxy.restart({ crash: true });
    await watch.until(() => watch.isClosed(first!));
    await depositHttp(edge.adminUrl, { to: user, from: 'sip:bob@example.net', body: 'after restart' });
    const second = await c.nextNotify(dialog, 20_000);
    expect(listOf(second).total).toBe(1);
    // RFC 3261 §12.2.1.1, §18.1.1: to the route set's first URI, on a connection opened anew.
    expect(watch.reopened(proxy.ports.main)).toBe(true);
    expect(getHeaders(second, 'Route')).toHaveLength(0);
  }, 60_000);

  it('a proxy killed while the 200 to a NOTIFY is on its way gets that NOTIFY again after its restart; the subscription lives on', async () => {
    const proxy = await start(120);
    const user = 'sip:crash@example.com';
    let freezeOnNotify = true;
    // The proxy stops dead as the client answers the first NOTIFY: the 200 never reaches the service.
    const c = await udpClient(proxy, user, (req) => {
      if (req.method === 'NOTIFY' && freezeOnNotify) {
        freezeOnNotify = false;
        proxy.freeze();
      }
      return 200;
    });
    const ended = await subscriptionsEnded();
    const { response, dialog } = await c.subscribe({ expires: 600 });
    expect(response.status).toBe(200);
    const first = await c.nextNotify(dialog);
    const [connection] = watch.openedTo(proxy.ports.main);
    const answered = await answeredNotifies();
    await proxy.restart({ crash: true });
    await watch.until(() => watch.isClosed(connection!));
    // The same transaction (the service's Via, CSeq) once more, through the restarted proxy,
    // on a new connection (not a Timer F 408 after 32 s that would end the subscription).
    const again = await c.nextNotify(dialog, 20_000);
    expect(getHeader(again, 'CSeq')).toBe(getHeader(first, 'CSeq'));
    const serviceBranch = (n: SipRequest) => parseVia(getHeaders(n, 'Via').at(-1) ?? '')?.branch;
    expect(serviceBranch(again)).toBe(serviceBranch(first));
    await eventually(async () => (await answeredNotifies()) > answered, 'the 200 to the NOTIFY sent again');
    expect(watch.reopened(proxy.ports.main)).toBe(true);
    await depositHttp(edge.adminUrl, { to: user, from: 'sip:bob@example.net', body: 'after the crash' });
    expect(listOf(await c.nextNotify(dialog)).total).toBe(1);
    expect(await subscriptionsEnded()).toBe(ended);
  }, 60_000);

  it('a NOTIFY over 1,300 bytes to a UDP client goes over TCP to the proxy, whole', async () => {
    const proxy = await start(120);
    const user = 'sip:bigudp@example.com';
    for (const i of [1, 2, 3, 4]) {
      await depositHttp(edge.adminUrl, {
        to: user,
        from: 'sip:bob@example.net',
        body: `message ${i}`,
        subject: `A subject long enough to make the list grow past one datagram, number ${i}`,
      });
    }
    const c = await CpmClient.connect({
      transport: 'udp',
      server: { host: '127.0.0.1', port: proxy.ports.main },
      user,
      tcpListener: false,
    });
    clients.push(c);
    const sizes: number[] = [];
    c.on('bytes', (b: { size: number }) => sizes.push(b.size));
    const { dialog } = await c.subscribe({ expires: 0 });
    const list = listOf(await c.nextNotify(dialog));
    expect(list.total).toBe(4);
    expect(list.entries).toHaveLength(4);
    expect(Math.max(...sizes)).toBeGreaterThan(1300);
    expect(watch.openedTo(proxy.ports.main).length).toBe(1);
  }, 60_000);
});
