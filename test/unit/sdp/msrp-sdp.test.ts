import { describe, expect, it } from 'vitest';
import * as sdpTransform from 'sdp-transform';
import { buildMsrpAnswer, buildMsrpOffer, offerRoleProblem, parseMsrpOffer, writeSdp } from '#shared/sdp/msrp-sdp.ts';
import { protocolExample } from '../deferred/protocol-doc.ts';

/** The SDP part of the protocol.md INVITE, CRLF line ends. */
function protocolOffer(): string {
  const invite = protocolExample('INVITE sip:alice@example.com');
  const start = invite.indexOf('v=0');
  return `${invite.slice(start, invite.indexOf('\n--b1', start)).replace(/\n/g, '\r\n')}\r\n`;
}

const offerWith = (media: string[]) =>
  ['v=0', 'o=alice 1 1 IN IP4 192.0.2.10', 's=-', 'c=IN IP4 192.0.2.10', 't=0 0', ...media, ''].join('\r\n');

describe('parseMsrpOffer', () => {
  it('reads the protocol.md offer', () => {
    expect(parseMsrpOffer(protocolOffer())).toEqual({
      ok: true,
      path: 'msrp://192.0.2.10:9/s111271;tcp',
      setup: 'active',
      acceptTypes: ['message/cpim'],
      direction: 'recvonly',
      protocol: 'TCP/MSRP',
      tls: false,
    });
  });

  it('accepts TLS, wildcard accept-types, actpass and a relay path; no a=setup means active', () => {
    const out = parseMsrpOffer(
      offerWith([
        'm=message 2855 TCP/TLS/MSRP *',
        'a=accept-types:text/plain *',
        'a=path:msrps://relay.example.net:2855/r1;tcp msrps://192.0.2.10:2855/c9;tcp',
      ]),
    );
    expect(out).toMatchObject({
      ok: true,
      path: 'msrps://relay.example.net:2855/r1;tcp msrps://192.0.2.10:2855/c9;tcp',
      setup: 'active',
      direction: 'sendrecv',
      protocol: 'TCP/TLS/MSRP',
      tls: true,
    });
    expect(
      parseMsrpOffer(
        offerWith(['m=message 9 TCP/MSRP *', 'a=accept-types:message/*', 'a=path:msrp://h:9/s;tcp', 'a=setup:actpass']),
      ),
    ).toMatchObject({ ok: true, setup: 'actpass' });
  });

  it('skips a rejected or non-MSRP stream and uses the usable one', () => {
    const out = parseMsrpOffer(
      offerWith([
        'm=audio 49170 RTP/AVP 0',
        'm=message 0 TCP/MSRP *',
        'a=accept-types:message/cpim',
        'a=path:msrp://192.0.2.10:9/dead;tcp',
        'm=message 9 TCP/MSRP *',
        'a=accept-types:message/cpim',
        'a=path:msrp://192.0.2.10:9/live;tcp',
      ]),
    );
    expect(out).toMatchObject({ ok: true, path: 'msrp://192.0.2.10:9/live;tcp' });
  });

  it.each([
    ['an empty body', ''],
    ['text that is not SDP', 'hello world'],
    ['a line that is not type=value', offerWith(['m=message 9 TCP/MSRP *', 'garbage line'])],
    ['no o= line', 'v=0\r\ns=-\r\nm=message 9 TCP/MSRP *\r\n'],
  ])('answers 400 for %s', (_name, sdp) => {
    expect(parseMsrpOffer(sdp)).toMatchObject({ ok: false, status: 400 });
  });

  it.each([
    ['audio only', ['m=audio 49170 RTP/AVP 0']],
    ['MSRP over UDP', ['m=message 9 UDP/MSRP *', 'a=accept-types:message/cpim', 'a=path:msrp://h:9/s;udp']],
    ['no a=path', ['m=message 9 TCP/MSRP *', 'a=accept-types:message/cpim']],
    ['a path that is not an MSRP URI', ['m=message 9 TCP/MSRP *', 'a=accept-types:message/cpim', 'a=path:http://h/s']],
    ['accept-types without CPIM', ['m=message 9 TCP/MSRP *', 'a=accept-types:text/plain', 'a=path:msrp://h:9/s;tcp']],
    ['no accept-types', ['m=message 9 TCP/MSRP *', 'a=path:msrp://h:9/s;tcp']],
    ['only a rejected stream', ['m=message 0 TCP/MSRP *', 'a=accept-types:*', 'a=path:msrp://h:9/s;tcp']],
  ])('answers 488 for %s', (_name, media) => {
    expect(parseMsrpOffer(offerWith(media))).toMatchObject({ ok: false, status: 488 });
  });
});

describe('offerRoleProblem (RFC 6135 §4.1)', () => {
  const media = (extra: string) => {
    const offer = parseMsrpOffer(
      offerWith(['m=message 9 TCP/MSRP *', 'a=accept-types:*', 'a=path:msrp://h:9/s;tcp', extra]),
    );
    if (!offer.ok) throw new Error(offer.reason);
    return offer;
  };

  it.each(['a=setup:active', 'a=setup:actpass', 'a=recvonly', 'a=sendrecv'])('accepts a client with %s', (extra) => {
    expect(offerRoleProblem(media(extra))).toBeUndefined();
  });

  it.each([
    ['a=sendonly', /must receive/],
    ['a=inactive', /must receive/],
    ['a=setup:passive', /must connect/],
    ['a=setup:holdconn', /must connect/],
  ])('refuses a client with %s', (extra, reason) => {
    expect(offerRoleProblem(media(extra))).toMatch(reason);
  });
});

describe('buildMsrpAnswer', () => {
  it('has the protocol.md answer shape', () => {
    const { sdp, path } = buildMsrpAnswer({ host: 'pf.example.com', port: 2855, sessionId: 's-7c41' });
    expect(path).toBe('msrp://pf.example.com:2855/s-7c41;tcp');
    const lines = sdp.split('\r\n');
    expect(lines[0]).toBe('v=0');
    expect(lines).toContain('c=IN IP4 pf.example.com');
    expect(lines).toContain('m=message 2855 TCP/MSRP *');
    expect(lines).toContain('a=path:msrp://pf.example.com:2855/s-7c41;tcp');
    expect(lines).toContain('a=accept-types:message/cpim');
    expect(lines).toContain('a=setup:passive');
    expect(lines).toContain('a=sendonly');
    expect(sdp.endsWith('\r\n')).toBe(true);
    expect(sdpTransform.parse(sdp).media).toHaveLength(1);
    // A client reads the answer with the same parser.
    expect(parseMsrpOffer(sdp)).toMatchObject({ ok: true, path, setup: 'passive', direction: 'sendonly' });
  });

  it('brackets an IPv6 host in the path and says IP6', () => {
    const { sdp, path } = buildMsrpAnswer({ host: '2001:db8::10', port: 2855, sessionId: 'abc' });
    expect(path).toBe('msrp://[2001:db8::10]:2855/abc;tcp');
    expect(sdp).toContain('c=IN IP6 2001:db8::10\r\n');
  });

  it("writes each session's answer as sdp-transform writes it, its own id and o= numbers in it", () => {
    const fingerprint = { hash: 'sha-256', value: 'AB:CD' };
    const inputs = [
      { host: 'pf.example.com', port: 2855 },
      { host: '2001:db8::10', port: 2856 },
      { host: '192.0.2.1', port: 2857, secure: true, fingerprint },
      // A host holding the template's placeholder is written each time, the same.
      { host: '4242424242424242.example.com', port: 2855 },
    ];
    // `$` patterns mean something to String.replace: an id is copied as it is.
    const ids = ['s-7c41', 'a', "$&$1$'", '4242424242424242', 's-7c41'];
    const answers = new Set<string>();
    for (const where of inputs) {
      for (const sessionId of ids) {
        const input = { ...where, sessionId };
        const built = buildMsrpAnswer(input);
        const origin = /^o=- (\d+) (\d+) /m.exec(built.sdp);
        expect(origin?.[1]).toBe(origin?.[2]);
        expect(built).toEqual(writeSdp(input, 'passive', 'sendonly', origin![1]!));
        expect(built.path).toContain(`/${sessionId};tcp`);
        answers.add(built.sdp);
      }
    }
    // Another session, another answer: its path and its o= numbers (RFC 4566 §5.2).
    expect(answers.size).toBe(inputs.length * (ids.length - 1));
    const o = (sessionId: string) => /^o=.*$/m.exec(buildMsrpAnswer({ ...inputs[0]!, sessionId }).sdp)![0];
    expect(o('s1')).not.toBe(o('s2'));
  });

  it('keeps the roles, the transport and the certificate of each SDP at one address', () => {
    const at = { host: 'pf.example.com', port: 2855, sessionId: 's-7c41' };
    // As sdp-transform wrote them before the templates (o= derived from the session id).
    const head =
      'v=0\r\no=- 1248424584 1248424584 IN IP4 pf.example.com\r\ns=-\r\nc=IN IP4 pf.example.com\r\nt=0 0\r\n';
    const tail = 'a=accept-types:message/cpim\r\na=path:msrp://pf.example.com:2855/s-7c41;tcp\r\n';
    for (let round = 0; round < 2; round++) {
      expect(buildMsrpAnswer(at).sdp).toBe(
        `${head}m=message 2855 TCP/MSRP *\r\na=setup:passive\r\na=sendonly\r\n${tail}`,
      );
      expect(buildMsrpOffer(at).sdp).toBe(
        `${head}m=message 2855 TCP/MSRP *\r\na=setup:active\r\na=recvonly\r\n${tail}`,
      );
    }
    const tls = (value: string) =>
      buildMsrpAnswer({ ...at, secure: true, fingerprint: { hash: 'sha-256', value } }).sdp;
    expect(tls('AB:CD')).toContain('m=message 2855 TCP/TLS/MSRP *\r\n');
    expect(tls('AB:CD')).toContain('a=fingerprint:sha-256 AB:CD\r\n');
    // A new certificate at the same address: its own fingerprint.
    expect(tls('EF:01')).toContain('a=fingerprint:sha-256 EF:01\r\n');
    expect(buildMsrpAnswer(at).sdp).not.toContain('fingerprint');
  });
});

describe('buildMsrpOffer', () => {
  it('is an offer the service accepts, with the client connecting and receiving', () => {
    const { sdp, path } = buildMsrpOffer({ host: '127.0.0.1', port: 9, sessionId: 'c1' });
    expect(parseMsrpOffer(sdp)).toEqual({
      ok: true,
      path,
      setup: 'active',
      acceptTypes: ['message/cpim'],
      direction: 'recvonly',
      protocol: 'TCP/MSRP',
      tls: false,
    });
  });
});

// RFC 4975 §15 / RFC 8122 §5: MSRP over TLS, authenticated by certificate fingerprints.
describe('msrps and a=fingerprint', () => {
  const FP = { hash: 'sha-256', value: 'AB:CD:EF:01:23:45:67:89' };
  const tlsOffer = (...extra: string[]) =>
    offerWith([
      'm=message 9 TCP/TLS/MSRP *',
      'a=accept-types:message/cpim',
      'a=path:msrps://192.0.2.10:9/c9;tcp',
      'a=setup:active',
      ...extra,
    ]);

  it('answers over TLS with an msrps: path, TCP/TLS/MSRP, a=setup:passive and the fingerprint of its certificate', () => {
    const { sdp, path } = buildMsrpAnswer({
      host: 'pf.example.com',
      port: 2856,
      sessionId: 's-7c41',
      secure: true,
      fingerprint: FP,
    });
    expect(path).toBe('msrps://pf.example.com:2856/s-7c41;tcp');
    const lines = sdp.split('\r\n');
    expect(lines).toContain('m=message 2856 TCP/TLS/MSRP *');
    expect(lines).toContain('a=path:msrps://pf.example.com:2856/s-7c41;tcp');
    expect(lines).toContain('a=fingerprint:sha-256 AB:CD:EF:01:23:45:67:89');
    expect(lines).toContain('a=setup:passive');
    // The client reads it back with the same parser: TLS, and the certificate to expect.
    expect(parseMsrpOffer(sdp)).toMatchObject({ ok: true, path, tls: true, setup: 'passive', fingerprint: FP });
  });

  it('writes no fingerprint in a plain answer', () => {
    expect(buildMsrpAnswer({ host: 'h', port: 1, sessionId: 's', fingerprint: FP }).sdp).not.toContain('fingerprint');
  });

  it("reads the offer's fingerprint at media level, else session level, in upper case", () => {
    expect(parseMsrpOffer(tlsOffer('a=fingerprint:SHA-256 ab:cd:ef:01:23:45:67:89'))).toMatchObject({
      ok: true,
      tls: true,
      fingerprint: FP,
    });
    const sessionLevel = tlsOffer().replace('t=0 0\r\n', 't=0 0\r\na=fingerprint:sha-256 AB:CD:EF:01:23:45:67:89\r\n');
    expect(parseMsrpOffer(sessionLevel)).toMatchObject({ ok: true, fingerprint: FP });
    expect(parseMsrpOffer(tlsOffer())).not.toHaveProperty('fingerprint');
  });

  it('refuses a malformed fingerprint (400) and one made with md5 (488), naming a=fingerprint', () => {
    expect(parseMsrpOffer(tlsOffer('a=fingerprint:sha-256 not-hex'))).toEqual({
      ok: false,
      status: 400,
      reason: 'Bad Request - Malformed a=fingerprint',
    });
    expect(parseMsrpOffer(tlsOffer('a=fingerprint:sha-256'))).toMatchObject({ ok: false, status: 400 });
    expect(parseMsrpOffer(tlsOffer('a=fingerprint:md5 AB:CD'))).toEqual({
      ok: false,
      status: 488,
      reason: 'Not Acceptable Here - a=fingerprint hash function md5 not supported',
    });
  });
});
