import { describe, expect, it } from 'vitest';
import { formatMsrpUri, isValidSessionId, msrpUriEquals, parseMsrpPath, parseMsrpUri } from '#shared/msrp/uri.ts';

describe('parseMsrpUri / formatMsrpUri', () => {
  it('reads the a=path of protocol.md', () => {
    expect(parseMsrpUri('msrp://192.0.2.10:9/s111271;tcp')).toEqual({
      secure: false,
      user: undefined,
      host: '192.0.2.10',
      port: 9,
      sessionId: 's111271',
      transport: 'tcp',
      params: [],
    });
  });

  it('reads userinfo, IPv6 hosts, msrps, a slash in the session-id and parameters', () => {
    const uri = parseMsrpUri('msrps://alice@[2001:db8::1]:2855/ab/cd=+x;tcp;foo=bar;baz');
    expect(uri).toMatchObject({ secure: true, user: 'alice', host: '2001:db8::1', port: 2855, sessionId: 'ab/cd=+x' });
    expect(uri?.params).toEqual([
      ['foo', 'bar'],
      ['baz', undefined],
    ]);
    expect(formatMsrpUri(uri!)).toBe('msrps://alice@[2001:db8::1]:2855/ab/cd=+x;tcp;foo=bar;baz');
  });

  it('reads a relay URI without a session-id', () => {
    expect(parseMsrpUri('msrps://relay.example.net;tcp')).toMatchObject({
      host: 'relay.example.net',
      sessionId: undefined,
      port: undefined,
    });
  });

  it('refuses what RFC 4975 §9 does not allow', () => {
    for (const bad of [
      'sip:alice@example.com',
      'msrp://host:9/abc', // no transport
      'msrp://host:99999/abc;tcp',
      'msrp://host:9/a b;tcp',
      'msrp://host:9/;tcp',
      'msrp://:9/abc;tcp',
      'msrp://[::1/abc;tcp',
      'msrp://host:9/abc;t-c-p',
    ]) {
      expect(parseMsrpUri(bad), bad).toBeUndefined();
    }
  });

  it('reads a path of several URIs and refuses a path with a bad one', () => {
    expect(
      parseMsrpPath('msrps://relay.example.net:2855/r1;tcp msrp://192.0.2.10:9/s1;tcp')?.map((u) => u.sessionId),
    ).toEqual(['r1', 's1']);
    expect(parseMsrpPath('msrp://192.0.2.10:9/s1;tcp junk')).toBeUndefined();
    expect(parseMsrpPath('  ')).toBeUndefined();
  });

  it('checks session ids', () => {
    expect(isValidSessionId('01JDQ8R0Z5K3N1V6X7Y8Z9A0BC')).toBe(true);
    expect(isValidSessionId('s-7c41.x_~+=/')).toBe(true);
    expect(isValidSessionId('a;b')).toBe(false);
    expect(isValidSessionId('')).toBe(false);
  });
});

describe('msrpUriEquals (RFC 4975 §6.1)', () => {
  const base = 'msrp://PF.Example.com:2855/s-7c41;tcp';
  it('compares hosts and transports case-insensitively, session-ids case-sensitively', () => {
    expect(msrpUriEquals(base, 'MSRP://pf.example.COM:2855/s-7c41;TCP')).toBe(true);
    expect(msrpUriEquals(base, 'msrp://pf.example.com:2855/S-7C41;tcp')).toBe(false);
  });
  it('treats an absent port as 2855 and ignores userinfo and parameters', () => {
    expect(msrpUriEquals(base, 'msrp://bob@pf.example.com/s-7c41;tcp;x=y')).toBe(true);
    expect(msrpUriEquals(base, 'msrp://pf.example.com:2856/s-7c41;tcp')).toBe(false);
  });
  it('tells msrp from msrps and compares IPv6 addresses as addresses', () => {
    expect(msrpUriEquals(base, 'msrps://pf.example.com:2855/s-7c41;tcp')).toBe(false);
    expect(msrpUriEquals('msrp://[::1]:1/a;tcp', 'msrp://[0:0:0:0:0:0:0:1]:1/a;tcp')).toBe(true);
    expect(msrpUriEquals('msrp://[::1]:1/a;tcp', 'msrp://[::2]:1/a;tcp')).toBe(false);
  });
  it('equals nothing when either side is unparsable', () => {
    expect(msrpUriEquals('garbage', 'garbage')).toBe(false);
  });
});
