import { describe, expect, it } from 'vitest';
import { decodeList } from '#shared/deferred/list-codec.ts';
import { buildNotifyContent } from '#shared/deferred/notify.ts';
import { subscriptionStateHeader } from '#shared/sip/subscription/index.ts';
import { sampleMessage } from './fixtures.ts';

describe('buildNotifyContent', () => {
  it('uses the list MIME type', () => {
    const c = buildNotifyContent({ messages: [], total: 0, version: 0, maxEntries: 50 });
    expect(c.contentType).toBe('application/vnd.oma.im.deferred-list+xml');
    expect(decodeList(c.body)).toMatchObject({ ok: true, total: 0, entries: [] });
  });

  it('lists the oldest entries up to the cap and tells the whole count in total', () => {
    const messages = [5, 1, 4, 2, 3].map((n) => sampleMessage(n));
    const c = buildNotifyContent({ messages, total: 7, version: 4, maxEntries: 3 });
    const list = decodeList(c.body);
    if (!list.ok) throw new Error(list.reason);
    expect(list.version).toBe(4);
    expect(list.total).toBe(7);
    expect(list.entries.map((e) => e.messageId)).toEqual(['msg-1', 'msg-2', 'msg-3']);
  });

  it('never claims a total below the entries it shows', () => {
    const c = buildNotifyContent({
      messages: [sampleMessage(1), sampleMessage(2)],
      total: 0,
      version: 0,
      maxEntries: 50,
    });
    expect(decodeList(c.body)).toMatchObject({ ok: true, total: 2 });
  });
});

describe('subscriptionStateHeader (RFC 6665 §8.2.3)', () => {
  it('writes active with the remaining seconds', () => {
    expect(subscriptionStateHeader({ state: 'active', expiresIn: 3599 })).toBe('active;expires=3599');
    expect(subscriptionStateHeader({ state: 'active', expiresIn: -3 })).toBe('active;expires=0');
  });

  it.each(['timeout', 'deactivated', 'rejected'] as const)('writes terminated;reason=%s', (reason) => {
    expect(subscriptionStateHeader({ state: 'terminated', reason })).toBe(`terminated;reason=${reason}`);
  });
});
