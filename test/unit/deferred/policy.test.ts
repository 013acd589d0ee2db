import { describe, expect, it } from 'vitest';
import { acceptsList, defaultPolicy, grantExpires, parseDuration } from '#shared/deferred/policy.ts';

describe('defaultPolicy', () => {
  it('carries the protocol defaults', () => {
    const p = defaultPolicy();
    expect(p).toMatchObject({
      defaultExpires: 3600,
      maxExpires: 86400,
      minExpires: 60,
      notifyMaxEntries: 15,
      retentionSeconds: 7 * 86400,
      maxDepositBytesUdp: 1300,
      msrpChunkBytes: 65536,
      msrpTimeoutMs: 30000,
      notifyMinIntervalMs: 1000,
      sessionConnectTimeoutMs: 30000,
    });
    // A whole CPIM must fit one DynamoDB item (400 KB).
    expect(p.maxDepositBytesStream).toBeLessThan(400 * 1024);
  });

  it('applies overrides and ignores undefined ones', () => {
    const p = defaultPolicy({ notifyMaxEntries: 2, retentionSeconds: undefined });
    expect(p.notifyMaxEntries).toBe(2);
    expect(p.retentionSeconds).toBe(604800);
  });
});

describe('parseDuration', () => {
  it.each([
    ['7d', 604800],
    ['12h', 43200],
    ['30m', 1800],
    ['45s', 45],
    ['3600', 3600],
    [' 2D ', 172800],
    ['1w', 604800],
  ])('%s -> %d seconds', (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  it.each(['', 'd', '7 days', '-5', '1.5h', '7x', 'abc', '99999999999999d'])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe('acceptsList (RFC 3261 §20.1)', () => {
  it('admits the list when Accept is absent', () => {
    expect(acceptsList(undefined)).toBe(true);
  });

  it.each([
    [['application/vnd.oma.im.deferred-list+xml']],
    [['Application/VND.OMA.IM.Deferred-List+XML']],
    [['*/*']],
    [['application/*']],
    [['text/plain', 'application/vnd.oma.im.deferred-list+xml;q=0.5']],
    [['text/plain, application/*;q=0.1']],
    // A comma inside a quoted parameter value separates nothing (RFC 3261 §7.3.1).
    [['text/plain;x="a,b", application/*']],
  ])('admits %j', (accept) => {
    expect(acceptsList(accept)).toBe(true);
  });

  it.each([
    [['application/pidf+xml']],
    [['text/*']],
    [['application/vnd.oma.im.deferred-list+xml;q=0']],
    // The most specific range decides: the exact type with q=0 beats the wildcard.
    [['*/*', 'application/vnd.oma.im.deferred-list+xml;q=0']],
    [['application/*;q=0', '*/*']],
    [['text/plain;x="a, application/*", application/pidf+xml']],
    // An empty Accept admits nothing (RFC 3261 §20.1).
    [['']],
    [[]],
  ])('refuses %j', (accept) => {
    expect(acceptsList(accept)).toBe(false);
  });
});

describe('grantExpires (RFC 6665 §4.2.1.1)', () => {
  const policy = defaultPolicy();
  const out = { inDialog: false };

  it('grants the default when Expires is absent or unreadable', () => {
    expect(grantExpires(undefined, policy, out)).toEqual({ ok: true, expires: 3600 });
    expect(grantExpires(Number('soon'), policy, out)).toEqual({ ok: true, expires: 3600 });
    expect(grantExpires(-5, policy, out)).toEqual({ ok: true, expires: 3600 });
    expect(grantExpires(90.5, policy, out)).toEqual({ ok: true, expires: 3600 });
  });

  it('caps at the maximum', () => {
    expect(grantExpires(200000, policy, out)).toEqual({ ok: true, expires: 86400 });
  });

  it('allows 0 (fetch out of dialog, unsubscribe in dialog)', () => {
    expect(grantExpires(0, policy, out)).toEqual({ ok: true, expires: 0 });
    expect(grantExpires(0, policy, { inDialog: true })).toEqual({ ok: true, expires: 0 });
  });

  it('refuses 0 < Expires < 60 with the minimum, in and out of a dialog', () => {
    expect(grantExpires(59, policy, out)).toEqual({ ok: false, minExpires: 60 });
    expect(grantExpires(1, policy, { inDialog: true })).toEqual({ ok: false, minExpires: 60 });
  });

  it('grants what was asked within bounds', () => {
    expect(grantExpires(60, policy, out)).toEqual({ ok: true, expires: 60 });
    expect(grantExpires(7200, policy, { inDialog: true })).toEqual({ ok: true, expires: 7200 });
  });
});
