/**
 * The subscription's life over real sockets (protocol.md "SUBSCRIBE", "NOTIFY"): one-time
 * fetch, refresh, unsubscribe, expiry, NOTIFY on deposit, and two devices of one user.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpmClient } from '#functions/edge/cpm-client.ts';
import { decodeList } from '#shared/deferred/list-codec.ts';
import { getHeader, parseCSeq } from '#shared/sip/messages/index.ts';
import type { SipRequest } from '#shared/sip/messages/types.ts';
import { depositHttp, firstDelivery, startTestEdge, type TestEdge } from './support.ts';

const listOf = (notify: SipRequest) => {
  const l = decodeList(notify.body.toString('utf8'));
  if (!l.ok) throw new Error(l.reason);
  return l;
};

describe('subscriptions', () => {
  let edge: TestEdge;
  const clients: CpmClient[] = [];
  const client = async (user: string, transport: 'udp' | 'tcp' = 'udp') => {
    const port = transport === 'udp' ? edge.ports.udp! : edge.ports.tcp!;
    const c = await CpmClient.connect({ transport, server: { host: '127.0.0.1', port }, user });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    edge = await startTestEdge({ policy: { minExpires: 1 }, sweepIntervalMs: 200 });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await edge?.close();
  });

  it('Expires: 0 is a one-time fetch: 200, then one NOTIFY terminated;reason=timeout with the list', async () => {
    const user = 'sip:fetch@example.com';
    await depositHttp(edge.adminUrl, { to: user, from: 'sip:bob@example.net', body: 'hello', subject: 'Hi' });
    const c = await client(user);
    const { response, dialog } = await c.subscribe({ expires: 0 });
    expect(response.status).toBe(200);
    expect(getHeader(response, 'Expires')).toBe('0');
    const notify = await c.nextNotify(dialog);
    expect(getHeader(notify, 'Subscription-State')).toBe('terminated;reason=timeout');
    const list = listOf(notify);
    expect(list.total).toBe(1);
    expect(list.entries[0]?.subject).toBe('Hi');
    // The dialog is gone: a refresh is 481.
    expect((await c.refresh(dialog, 3600)).status).toBe(481);
  });

  it('grants 3600 when Expires is absent and caps at 86400', async () => {
    const c = await client('sip:grant@example.com');
    const absent = await c.subscribe();
    expect(getHeader(absent.response, 'Expires')).toBe('3600');
    const capped = await c.subscribe({ expires: 999_999 });
    expect(getHeader(capped.response, 'Expires')).toBe('86400');
  });

  it('refreshes, then unsubscribes with a final NOTIFY; CSeq and version rise', async () => {
    const user = 'sip:refresh@example.com';
    const c = await client(user, 'tcp');
    const { dialog } = await c.subscribe({ expires: 600 });
    const n0 = await c.nextNotify(dialog);
    expect(getHeader(n0, 'Subscription-State')).toMatch(/^active;expires=(600|599)$/);
    expect(listOf(n0).version).toBe(0);
    const refreshed = await c.refresh(dialog, 1200);
    expect(refreshed.status).toBe(200);
    expect(getHeader(refreshed, 'Expires')).toBe('1200');
    const n1 = await c.nextNotify(dialog);
    expect(getHeader(n1, 'Subscription-State')).toMatch(/^active;expires=(1200|1199)$/);
    expect(parseCSeq(getHeader(n1, 'CSeq')!)!.seq).toBeGreaterThan(parseCSeq(getHeader(n0, 'CSeq')!)!.seq);
    expect(listOf(n1).version).toBe(listOf(n0).version + 1);

    const ended = await c.refresh(dialog, 0);
    expect(ended.status).toBe(200);
    const last = await c.nextNotify(dialog);
    expect(getHeader(last, 'Subscription-State')).toBe('terminated;reason=timeout');
    expect((await c.refresh(dialog, 600)).status).toBe(481);
  });

  it('a NOTIFY answered 481 ends the subscription; one answered 401 does not', async () => {
    const gone = await CpmClient.connect({
      transport: 'udp',
      server: { host: '127.0.0.1', port: edge.ports.udp! },
      user: 'sip:gone@example.com',
      answer: (r) => (r.method === 'NOTIFY' ? 481 : 200),
    });
    clients.push(gone);
    const a = await gone.subscribe({ expires: 600 });
    await gone.nextNotify(a.dialog);
    let refreshed = await gone.refresh(a.dialog, 600);
    for (let i = 0; i < 20 && refreshed.status === 200; i++) refreshed = await gone.refresh(a.dialog, 600);
    expect(refreshed.status).toBe(481);

    const challenged = await CpmClient.connect({
      transport: 'udp',
      server: { host: '127.0.0.1', port: edge.ports.udp! },
      user: 'sip:challenged@example.com',
      answer: (r) => (r.method === 'NOTIFY' ? 401 : 200),
    });
    clients.push(challenged);
    const b = await challenged.subscribe({ expires: 600 });
    await challenged.nextNotify(b.dialog);
    expect((await challenged.refresh(b.dialog, 600)).status).toBe(200);
    await challenged.nextNotify(b.dialog);
    expect((await challenged.refresh(b.dialog, 600)).status).toBe(200);
  });

  it('a deposit while subscribed yields a NOTIFY with the new entry', async () => {
    const user = 'sip:watch@example.com';
    const c = await client(user);
    const { dialog } = await c.subscribe({ expires: 600 });
    expect(listOf(await c.nextNotify(dialog)).total).toBe(0);
    await depositHttp(edge.adminUrl, { to: user, from: 'sip:bob@example.net', body: 'ping', messageId: 'watch-1' });
    const n = await c.nextNotify(dialog, 5000);
    const list = listOf(n);
    expect(list.total).toBe(1);
    expect(list.entries[0]?.messageId).toBe('watch-1');
  });

  it('an expired subscription gets NOTIFY terminated;reason=timeout', async () => {
    const c = await client('sip:expiry@example.com');
    const { response, dialog } = await c.subscribe({ expires: 1 });
    expect(getHeader(response, 'Expires')).toBe('1');
    await c.nextNotify(dialog);
    const last = await c.nextNotify(dialog, 10_000);
    expect(getHeader(last, 'Subscription-State')).toBe('terminated;reason=timeout');
  });

  it('over UDP a NOTIFY over 1300 bytes goes over TCP; with no TCP at the client the list is cut to fit', async () => {
    const user = 'sip:bigudp@example.com';
    for (const i of [1, 2, 3, 4]) {
      await depositHttp(edge.adminUrl, {
        to: user,
        from: 'sip:bob@example.net',
        body: `message ${i}`,
        subject: `Subject ${i}`,
      });
    }
    const withTcp = await client(user, 'udp');
    const seen: { size: number; datagram: boolean }[] = [];
    withTcp.on('bytes', (b: { size: number; datagram: boolean }) => seen.push(b));
    const a = await withTcp.subscribe({ expires: 0 });
    const full = listOf(await withTcp.nextNotify(a.dialog));
    expect(full.entries).toHaveLength(4);
    expect(seen.some((b) => !b.datagram && b.size > 1300)).toBe(true);

    const udpOnly = await CpmClient.connect({
      transport: 'udp',
      server: { host: '127.0.0.1', port: edge.ports.udp! },
      user,
      tcpListener: false,
    });
    clients.push(udpOnly);
    const sizes: number[] = [];
    udpOnly.on('bytes', (b: { size: number }) => sizes.push(b.size));
    const b = await udpOnly.subscribe({ expires: 0 });
    const cut = listOf(await udpOnly.nextNotify(b.dialog));
    expect(cut.total).toBe(4);
    expect(cut.entries.length).toBeLessThan(4);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1300);
  });

  it('two devices of one user both get the updated NOTIFY after one retrieves', async () => {
    const user = 'sip:twodev@example.com';
    await depositHttp(edge.adminUrl, { to: user, from: 'sip:bob@example.net', body: 'first' });
    await depositHttp(edge.adminUrl, { to: user, from: 'sip:bob@example.net', body: 'second' });
    const phone = await client(user, 'udp');
    const laptop = await client(user, 'tcp');
    const p = await phone.subscribe({ expires: 600 });
    const l = await laptop.subscribe({ expires: 600 });
    const list = listOf(await phone.nextNotify(p.dialog));
    expect(list.total).toBe(2);
    expect(listOf(await laptop.nextNotify(l.dialog)).total).toBe(2);

    const inv = await phone.invite([{ id: list.entries[0]!.id, action: 'retrieve' }]);
    expect(inv.response.status).toBe(200);
    const { body, msrp } = await firstDelivery(inv);
    expect(body.toString()).toContain('first');
    await phone.nextBye(inv.dialog);
    msrp.close();

    const untilTotal = async (c: CpmClient, d: { callId: string }, total: number) => {
      for (;;) if (listOf(await c.nextNotify(d)).total === total) return true;
    };
    expect(await untilTotal(phone, p.dialog, 1)).toBe(true);
    expect(await untilTotal(laptop, l.dialog, 1)).toBe(true);
  });
});

describe('retention', () => {
  let edge: TestEdge;
  const clients: CpmClient[] = [];
  beforeAll(async () => {
    edge = await startTestEdge({ env: { RETENTION: '4s' }, sweepIntervalMs: 200 });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await edge?.close();
  });

  it('an expired message leaves the list, watchers get a NOTIFY, and a sender who asked gets an IMDN failed', async () => {
    const user = 'sip:away@example.com';
    // The sender is reachable at an address literal: the IMDN goes straight there (loopback).
    const sender = await CpmClient.connect({
      transport: 'udp',
      server: { host: '127.0.0.1', port: edge.ports.udp! },
      user: 'sip:bob@127.0.0.1',
    });
    clients.push(sender);
    const senderUri = `sip:bob@127.0.0.1:${sender.localPort}`;
    const dep = await depositHttp(edge.adminUrl, {
      to: user,
      from: senderUri,
      body: 'too late',
      messageId: 'expiring-1',
      dispositionNotification: 'positive-delivery, negative-delivery',
    });
    expect(dep.status).toBe(201);

    const watcher = await CpmClient.connect({
      transport: 'udp',
      server: { host: '127.0.0.1', port: edge.ports.udp! },
      user,
    });
    clients.push(watcher);
    const { dialog } = await watcher.subscribe({ expires: 600 });
    expect(listOf(await watcher.nextNotify(dialog)).total).toBe(1);

    const emptied = await watcher.nextNotify(dialog, 15_000);
    expect(listOf(emptied).total).toBe(0);

    const imdn = await sender.nextRequest((r) => r.method === 'MESSAGE', 15_000);
    expect(getHeader(imdn, 'Content-Type')).toBe('message/cpim');
    const text = imdn.body.toString('utf8');
    expect(text).toContain('<failed/>');
    expect(text).toContain('<message-id>expiring-1</message-id>');
    expect(text).toMatch(/Content-Disposition: notification/i);
  });
});
