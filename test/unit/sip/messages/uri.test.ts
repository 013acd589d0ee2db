import { describe, expect, it } from 'vitest';
import { formatUri, normalizeUri, parseUri, uriEquals } from '#shared/sip/messages/index.ts';
import type { SipUri, TelUri } from '#shared/sip/messages/index.ts';

describe('parseUri: sip and sips (RFC 3261 §19.1)', () => {
  it('reads user, password, host, port, parameters and headers', () => {
    const uri = parseUri(
      'sips:alice:secret@Atlanta.example.com:5061;transport=TCP;lr?subject=project%20x&priority=urgent',
    );
    expect(uri).toEqual({
      scheme: 'sips',
      user: 'alice',
      password: 'secret',
      host: 'Atlanta.example.com',
      port: 5061,
      params: { transport: 'TCP', lr: null },
      headers: { subject: 'project%20x', priority: 'urgent' },
    });
  });

  it('reads a URI without user part', () => {
    expect(parseUri('sip:example.com')).toEqual({ scheme: 'sip', host: 'example.com', params: {}, headers: {} });
  });

  it('lets the user part hold ";" and "?" (RFC 4475 §3.1.1.9 semiuri)', () => {
    const uri = parseUri('sip:user;par=u%40example.net@example.com') as SipUri;
    expect(uri.user).toBe('user;par=u%40example.net');
    expect(uri.host).toBe('example.com');
    expect(uri.params).toEqual({});
  });

  it('keeps IPv6 references with their brackets (RFC 5118)', () => {
    expect((parseUri('sip:[2001:db8::10]:5070') as SipUri).host).toBe('[2001:db8::10]');
    expect((parseUri('sip:[2001:db8::10]:5070') as SipUri).port).toBe(5070);
    expect((parseUri('sip:[2001:db8::10:5070]') as SipUri).port).toBeUndefined();
    expect((parseUri('sip:ted@[::ffff:192.0.2.2]') as SipUri).host).toBe('[::ffff:192.0.2.2]');
  });

  it('rejects malformed IPv6 references and unbracketed IPv6 hosts (RFC 5118 §4.4, §4.2)', () => {
    expect(parseUri('sip:user@[2001:db8:::192.0.2.1]')).toBeUndefined();
    expect(parseUri('sip:2001:db8::10')).toBeUndefined();
    expect(parseUri('sip:[2001:db8::10')).toBeUndefined();
    expect(parseUri('sip:[1:2:3:4:5:6:7:8:9]')).toBeUndefined();
    expect(parseUri('sip:[2001:db8::192.0.2.1]')).toBeDefined();
  });

  it('rejects what the grammar does not allow', () => {
    for (const bad of [
      'sip:',
      'sip:@example.com',
      'sip:alice@',
      'sip:alice@exa mple.com',
      'sip:alice@example.com:99999',
      'sip:alice@example.com:50x',
      'sip:alice@example.com;',
      'sip:alice@example.com;=1',
      'sip:alice@-example.com',
      'sip:alice@example.com?x',
      'sip:al%ZZice@example.com',
      'sip:alice@256.1.1.1',
      '<sip:alice@example.com>',
      'alice@example.com',
    ]) {
      expect(parseUri(bad), bad).toBeUndefined();
    }
  });

  it('round-trips through formatUri', () => {
    for (const text of [
      'sip:alice@example.com',
      'sips:bob:pw@[2001:db8::1]:5061;transport=tls;lr',
      'sip:biloxi.com;method=REGISTER?to=sip:bob%40biloxi.com',
      'tel:+1-201-555-0123;phone-context=example.com',
      'urn:service:sos',
    ]) {
      const uri = parseUri(text)!;
      expect(formatUri(uri)).toBe(text);
    }
  });
});

describe('parseUri: tel and other schemes', () => {
  it('reads tel URIs (RFC 3966)', () => {
    const tel = parseUri('tel:+1-201-555-0123;ext=1234') as TelUri;
    expect(tel).toEqual({ scheme: 'tel', number: '+1-201-555-0123', params: { ext: '1234' } });
    expect(parseUri('tel:7042;phone-context=example.com')).toBeDefined();
    expect(parseUri('tel:')).toBeUndefined();
    expect(parseUri('tel:+1 555')).toBeUndefined();
  });

  it('keeps other absolute URIs as text (RFC 4475 §3.3.4 unksm2)', () => {
    expect(parseUri('http://www.example.com')).toEqual({ scheme: 'http', raw: 'http://www.example.com' });
    expect(parseUri('isbn:2983792873')).toEqual({ scheme: 'isbn', raw: 'isbn:2983792873' });
    expect(parseUri('URN:foo:bar')).toEqual({ scheme: 'urn', raw: 'URN:foo:bar' });
    expect(parseUri('name:John Smith')).toBeUndefined();
    expect(parseUri('1abc:x')).toBeUndefined();
    expect(parseUri('nocolon')).toBeUndefined();
  });
});

describe('normalizeUri / uriEquals (RFC 3261 §19.1.4)', () => {
  // The equivalent sets of §19.1.4, verbatim.
  const equivalent: [string, string][] = [
    ['sip:%61lice@atlanta.com;transport=TCP', 'sip:alice@AtLanTa.CoM;Transport=tcp'],
    ['sip:carol@chicago.com', 'sip:carol@chicago.com;newparam=5'],
    ['sip:carol@chicago.com', 'sip:carol@chicago.com;security=on'],
    ['sip:carol@chicago.com;newparam=5', 'sip:carol@chicago.com;security=on'],
    [
      'sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com',
      'sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com',
    ],
    [
      'sip:alice@atlanta.com?subject=project%20x&priority=urgent',
      'sip:alice@atlanta.com?priority=urgent&subject=project%20x',
    ],
  ];
  // The non-equivalent sets of §19.1.4, verbatim.
  const different: [string, string, string][] = [
    ['SIP:ALICE@AtLanTa.CoM;Transport=udp', 'sip:alice@AtLanTa.CoM;Transport=UDP', 'different usernames'],
    ['sip:bob@biloxi.com', 'sip:bob@biloxi.com:5060', 'can resolve to different ports'],
    ['sip:bob@biloxi.com', 'sip:bob@biloxi.com;transport=udp', 'can resolve to different transports'],
    ['sip:bob@biloxi.com', 'sip:bob@biloxi.com:6000;transport=tcp', 'can resolve to different port and transports'],
    ['sip:carol@chicago.com', 'sip:carol@chicago.com?Subject=next%20meeting', 'different header component'],
    ['sip:bob@phone21.boxesbybob.com', 'sip:bob@192.0.2.4', 'even though that is what the name resolves to'],
  ];

  it.each(equivalent)('%s == %s', (a, b) => {
    expect(uriEquals(a, b)).toBe(true);
    expect(normalizeUri(a)).toBe(normalizeUri(b));
  });

  it.each(different)('%s != %s (%s)', (a, b) => {
    expect(uriEquals(a, b)).toBe(false);
  });

  it('never equates sip and sips', () => {
    expect(uriEquals('sip:alice@example.com', 'sips:alice@example.com')).toBe(false);
  });

  it('produces a readable normal form', () => {
    expect(normalizeUri(' sip:%61lice@AtLanTa.CoM;Transport=TCP;foo=1 ')).toBe('sip:alice@atlanta.com;transport=tcp');
    expect(normalizeUri('sip:alice@example.com;foo=1')).toBe('sip:alice@example.com');
    expect(normalizeUri('sip:I%20have%20spaces@example.net')).toBe('sip:I%20have%20spaces@example.net');
    expect(normalizeUri('sip:a%3ab@example.net')).toBe('sip:a%3Ab@example.net');
    expect(normalizeUri('sip:[2001:DB8::1]:5060')).toBe('sip:[2001:db8::1]:5060');
  });

  it('keeps reserved characters escaped: %40 is not "@"', () => {
    expect(uriEquals('sip:sips%3Auser%40example.com@example.net', 'sip:sips:user@example.com@example.net')).toBe(false);
  });

  it('compares tel URIs without visual separators (RFC 3966 §4)', () => {
    expect(uriEquals('tel:+1-201-555-0123', 'tel:+12015550123')).toBe(true);
    expect(uriEquals('tel:7042;phone-context=EXAMPLE.com', 'tel:7042;phone-context=example.com')).toBe(true);
    expect(uriEquals('tel:+12015550123', 'tel:+12015550124')).toBe(false);
  });

  it('returns text it cannot parse trimmed', () => {
    expect(normalizeUri('  not a uri ')).toBe('not a uri');
    expect(uriEquals('garbage', 'garbage')).toBe(true);
  });
});
