import { describe, expect, it } from 'vitest';
import {
  checkRequire,
  formatNameAddr,
  formatVia,
  parseContact,
  parseCSeq,
  parseDeltaSeconds,
  parseEvent,
  parseNameAddr,
  parseSubscriptionState,
  parseVia,
  topVia,
} from '#shared/sip/messages/index.ts';

describe('parseNameAddr (RFC 3261 §20.10, §25.1)', () => {
  it('reads a quoted display name, the URI and header parameters', () => {
    expect(parseNameAddr('"Bell, Alexander" <sip:a.g.bell@example.com>;tag=433423')).toEqual({
      displayName: 'Bell, Alexander',
      uri: 'sip:a.g.bell@example.com',
      params: { tag: '433423' },
    });
  });

  it('reads token display names, with or without space before "<" (RFC 4475 §3.1.1.6 lwsdisp)', () => {
    expect(parseNameAddr('caller<sip:caller@example.com>;tag=323')?.displayName).toBe('caller');
    expect(parseNameAddr('A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe')?.displayName).toBe('A. Bell');
  });

  it('resolves quoted-pairs in the display name', () => {
    expect(parseNameAddr('"J Rosenberg \\\\\\"" <sip:jdrosen@example.com>')?.displayName).toBe('J Rosenberg \\"');
  });

  it('reads the addr-spec form: parameters after the URI belong to the header', () => {
    expect(parseNameAddr('sip:+19725552222@gw1.example.net;unknownparam')).toEqual({
      uri: 'sip:+19725552222@gw1.example.net',
      params: { unknownparam: null },
    });
    expect(parseNameAddr('isbn:2983792873')).toEqual({ uri: 'isbn:2983792873', params: {} });
  });

  it('keeps URI parameters inside the brackets apart from header parameters', () => {
    const na = parseNameAddr('<sip:+19725552222@gw1.example.net;unknownparam>;expires=60');
    expect(na?.uri).toBe('sip:+19725552222@gw1.example.net;unknownparam');
    expect(na?.params).toEqual({ expires: '60' });
  });

  it('accepts LWS around ";" and "=" and lower-cases parameter names', () => {
    expect(parseNameAddr('sip:vivekg@chair-dnrc.example.com ;   TAG    = 1918181833n')?.params).toEqual({
      tag: '1918181833n',
    });
    expect(
      parseNameAddr('"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam = newvalue ; secondparam ; q = 0.33')
        ?.params,
    ).toEqual({
      newparam: 'newvalue',
      secondparam: null,
      q: '0.33',
    });
  });

  it('keeps quoted parameter values with their quotes', () => {
    expect(parseNameAddr('<sip:a@example.com>;+sip.instance="<urn:uuid:1>"')?.params['+sip.instance']).toBe(
      '"<urn:uuid:1>"',
    );
  });

  it('rejects the malformed name-addrs of RFC 4475', () => {
    expect(parseNameAddr('"Watson, Thomas" < sip:t.watson@example.org >')).toBeUndefined(); // badaspec
    expect(parseNameAddr('Bell, Alexander <sip:a.g.bell@example.com>;tag=43')).toBeUndefined(); // baddn
    expect(parseNameAddr('"Mr. J. User <sip:j.user@example.com>')).toBeUndefined(); // quotbal
    expect(parseNameAddr('"Joe" <sip:joe@example.org>;;;;')).toBeUndefined(); // badinv01
    expect(parseNameAddr('<sip:a@example.com')).toBeUndefined();
    expect(parseNameAddr('<sip:a@example.com> junk')).toBeUndefined();
    expect(parseNameAddr('')).toBeUndefined();
  });

  it('formats back to text that parses to the same value', () => {
    const na = { displayName: 'Bell, "Alex"', uri: 'sip:a@example.com', params: { tag: 'x1', lr: null } };
    const text = formatNameAddr(na);
    expect(text).toBe('"Bell, \\"Alex\\"" <sip:a@example.com>;tag=x1;lr');
    expect(parseNameAddr(text)).toEqual(na);
  });

  it('reads a Contact star (RFC 3261 §10.2.2)', () => {
    expect(parseContact(' * ')).toBe('*');
    expect(parseContact('<sip:a@example.com>;expires=0')).toEqual({
      uri: 'sip:a@example.com',
      params: { expires: '0' },
    });
  });
});

describe('parseVia (RFC 3261 §20.42, RFC 3581, RFC 5118)', () => {
  it('reads transport, sent-by and the convenience parameters', () => {
    expect(parseVia('SIP/2.0/TCP 192.0.2.10:50211;branch=z9hG4bK776asdhds;rport')).toEqual({
      transport: 'TCP',
      host: '192.0.2.10',
      port: 50211,
      params: { branch: 'z9hG4bK776asdhds', rport: null },
      branch: 'z9hG4bK776asdhds',
      rport: null,
    });
    const stamped = parseVia('SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx;received=192.0.2.1;rport=5061');
    expect(stamped?.received).toBe('192.0.2.1');
    expect(stamped?.rport).toBe(5061);
  });

  it('accepts LWS around "/" and ";" (RFC 4475 §3.1.1.1 wsinv)', () => {
    const via = parseVia('SIP  /   2.0 /UDP    192.0.2.2;branch=390skdjuw');
    expect(via?.transport).toBe('UDP');
    expect(via?.host).toBe('192.0.2.2');
    expect(parseVia('SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8')?.branch).toBe(
      'z9hG4bK9ikj8',
    );
  });

  it('reads IPv6 sent-by and received with or without brackets (RFC 5118 §4.5)', () => {
    expect(parseVia('SIP/2.0/UDP [2001:db8::9:1]:6050;branch=z9hG4bKas3-111')?.host).toBe('[2001:db8::9:1]');
    expect(parseVia('SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3')?.received).toBe(
      '2001:db8::9:255',
    );
    expect(parseVia('SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255]')?.received).toBe('[2001:db8::9:255]');
  });

  it('upper-cases the transport and accepts unknown ones (RFC 4475 §3.1.1.10)', () => {
    expect(parseVia('SIP/2.0/unknown t4.example.com')?.transport).toBe('UNKNOWN');
  });

  it('rejects malformed via-parms', () => {
    for (const bad of [
      'SIP/2.0/UDP 192.0.2.15;;',
      'SIP/7.0/UDP c.example.com',
      'SIP/2.0 c.example.com',
      'SIP/2.0/UDP',
      'SIP/2.0/UDPhost',
      'SIP/2.0/UDP host:port',
      'SIP/2.0/UDP host;rport=abc',
      'SIP/2.0/UDP [2001:db8:::1]',
      '',
    ]) {
      expect(parseVia(bad), bad).toBeUndefined();
    }
  });

  it('formats from params, filling in the convenience fields they lack', () => {
    const via = parseVia('SIP/2.0/TCP 192.0.2.10:50211;branch=z9hG4bK1;rport')!;
    expect(formatVia(via)).toBe('SIP/2.0/TCP 192.0.2.10:50211;branch=z9hG4bK1;rport');
    expect(formatVia({ ...via, params: { ...via.params, rport: '4242', received: '198.51.100.1' } })).toBe(
      'SIP/2.0/TCP 192.0.2.10:50211;branch=z9hG4bK1;rport=4242;received=198.51.100.1',
    );
    expect(formatVia({ transport: 'UDP', host: 'h.example.com', params: {}, branch: 'z9hG4bKb' })).toBe(
      'SIP/2.0/UDP h.example.com;branch=z9hG4bKb',
    );
  });

  it('topVia reads the first via-parm of the first Via field', () => {
    const msg = {
      headers: [
        { name: 'Via', value: 'SIP/2.0/UDP first.example.com;branch=z9hG4bK1, SIP/2.0/UDP second.example.com' },
        { name: 'Via', value: 'SIP/2.0/UDP third.example.com' },
      ],
    };
    expect(topVia(msg)?.host).toBe('first.example.com');
    expect(topVia({ headers: [] })).toBeUndefined();
  });
});

describe('parseCSeq (RFC 3261 §20.16)', () => {
  it('reads the number and the method', () => {
    expect(parseCSeq('1 SUBSCRIBE')).toEqual({ seq: 1, method: 'SUBSCRIBE' });
    expect(parseCSeq('0009 INVITE')).toEqual({ seq: 9, method: 'INVITE' });
    expect(parseCSeq('29344 RE%47IST%45R')).toEqual({ seq: 29344, method: 'RE%47IST%45R' });
  });

  it('rejects numbers of 2**31 and above (§8.1.1.5) and malformed values', () => {
    expect(parseCSeq('2147483647 INVITE')?.seq).toBe(2147483647);
    expect(parseCSeq('2147483648 INVITE')).toBeUndefined();
    expect(parseCSeq('36893488147419103232 REGISTER')).toBeUndefined();
    expect(parseCSeq('INVITE')).toBeUndefined();
    expect(parseCSeq('1INVITE')).toBeUndefined();
    expect(parseCSeq('1 INVITE extra')).toBeUndefined();
    expect(parseCSeq('-1 INVITE')).toBeUndefined();
  });
});

describe('delta-seconds', () => {
  it('reads digits and caps at 2**32-1 (RFC 4475 §3.1.2.4)', () => {
    expect(parseDeltaSeconds(' 3600 ')).toBe(3600);
    expect(parseDeltaSeconds('10000000000000000000000000000000000000000')).toBe(2 ** 32 - 1);
    expect(parseDeltaSeconds('')).toBeUndefined();
    expect(parseDeltaSeconds('1h')).toBeUndefined();
  });
});

describe('parseEvent (RFC 6665 §8.2.1)', () => {
  it('reads the package, the id and other parameters', () => {
    expect(parseEvent('deferred-messages')).toEqual({ package: 'deferred-messages', params: {} });
    expect(parseEvent('presence.winfo ; id=17;Foo')).toEqual({
      package: 'presence.winfo',
      id: '17',
      params: { id: '17', foo: null },
    });
  });

  it('rejects malformed values', () => {
    expect(parseEvent('')).toBeUndefined();
    expect(parseEvent('a..b')).toBeUndefined();
    expect(parseEvent('.presence')).toBeUndefined();
    expect(parseEvent('presence;')).toBeUndefined();
    expect(parseEvent('pres ence')).toBeUndefined();
  });
});

describe('parseSubscriptionState (RFC 6665 §8.2.3)', () => {
  it('reads state, reason, expires and retry-after', () => {
    expect(parseSubscriptionState('active;expires=3599')).toEqual({ state: 'active', expires: 3599 });
    expect(parseSubscriptionState('Terminated;reason=Timeout')).toEqual({ state: 'terminated', reason: 'timeout' });
    expect(parseSubscriptionState('terminated;reason=probation;retry-after=30')).toEqual({
      state: 'terminated',
      reason: 'probation',
      retryAfter: 30,
    });
  });

  it('rejects malformed values', () => {
    expect(parseSubscriptionState('active;expires=soon')).toBeUndefined();
    expect(parseSubscriptionState('active;expires')).toBeUndefined();
    expect(parseSubscriptionState(';expires=1')).toBeUndefined();
  });
});

describe('checkRequire (RFC 3261 §8.2.2.3)', () => {
  const request = (method: string, ...require: string[]) => ({
    method,
    headers: require.map((value) => ({ name: 'Require', value })),
  });

  it('lists the option tags of Require that are not supported, once each', () => {
    expect(checkRequire(request('INVITE', 'timer, 100rel', 'Foo, 100rel'), ['timer'])).toEqual(['100rel', 'Foo']);
    expect(checkRequire(request('INVITE', 'TIMER'), ['timer'])).toEqual([]);
    expect(checkRequire(request('INVITE'), [])).toEqual([]);
  });

  it('ignores Require in ACK and CANCEL', () => {
    expect(checkRequire(request('ACK', 'foo'), [])).toEqual([]);
    expect(checkRequire(request('CANCEL', 'foo'), [])).toEqual([]);
  });

  it('does not look at Proxy-Require', () => {
    expect(checkRequire({ method: 'OPTIONS', headers: [{ name: 'Proxy-Require', value: 'foo' }] }, [])).toEqual([]);
  });
});
