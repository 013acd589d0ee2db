import { describe, expect, it } from 'vitest';
import {
  canonicalHeaderName,
  getHeader,
  getHeaders,
  parseMessage,
  removeHeaders,
  setHeader,
} from '#shared/sip/messages/index.ts';
import type { Header, SipMessage } from '#shared/sip/messages/index.ts';

function parse(lines: string[], body = ''): SipMessage {
  const r = parseMessage(Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`));
  if (!r.ok) throw new Error(`parse failed: ${r.reason}`);
  return r.message;
}

const BASE = [
  'OPTIONS sip:user@example.com SIP/2.0',
  'Via: SIP/2.0/UDP host.example.com;branch=z9hG4bK1',
  'From: <sip:a@example.com>;tag=1',
  'To: <sip:user@example.com>',
  'Call-ID: x1@example.com',
  'CSeq: 1 OPTIONS',
];

describe('compact header forms (RFC 3261 §7.3.3, RFC 6665 §8.2)', () => {
  it('expands every compact form to its long name', () => {
    const expected: Record<string, string> = {
      a: 'Accept-Contact',
      b: 'Referred-By',
      c: 'Content-Type',
      d: 'Request-Disposition',
      e: 'Content-Encoding',
      f: 'From',
      i: 'Call-ID',
      j: 'Reject-Contact',
      k: 'Supported',
      l: 'Content-Length',
      m: 'Contact',
      o: 'Event',
      r: 'Refer-To',
      s: 'Subject',
      t: 'To',
      u: 'Allow-Events',
      v: 'Via',
      x: 'Session-Expires',
    };
    for (const [short, long] of Object.entries(expected)) {
      expect(canonicalHeaderName(short)).toBe(long);
      expect(canonicalHeaderName(short.toUpperCase())).toBe(long);
    }
  });

  it('gives long names their canonical spelling, whatever the case', () => {
    expect(canonicalHeaderName('call-id')).toBe('Call-ID');
    expect(canonicalHeaderName('CSEQ')).toBe('CSeq');
    expect(canonicalHeaderName('www-authenticate')).toBe('WWW-Authenticate');
    expect(canonicalHeaderName('X-Custom')).toBe('X-Custom');
  });

  it('stores compact and odd-case names from the wire in long form', () => {
    const msg = parse([
      'SUBSCRIBE sip:alice@example.com SIP/2.0',
      'v: SIP/2.0/UDP host.example.com;branch=z9hG4bK1',
      'f: <sip:alice@example.com>;tag=1',
      't: <sip:alice@example.com>',
      'i: abc',
      'cseq: 1 SUBSCRIBE',
      'm: <sip:alice@192.0.2.1>',
      'o: deferred-messages',
      'u: deferred-messages',
      'k: 100rel',
      's: hello',
      'MaX-fOrWaRdS: 70',
      'l: 0',
    ]);
    expect(msg.headers.map((h) => h.name)).toEqual([
      'Via',
      'From',
      'To',
      'Call-ID',
      'CSeq',
      'Contact',
      'Event',
      'Allow-Events',
      'Supported',
      'Subject',
      'Max-Forwards',
      'Content-Length',
    ]);
  });
});

describe('getHeader / getHeaders', () => {
  const msg = parse([
    ...BASE,
    'Contact: "Doe, John" <sip:john@example.com>, <sip:j,2@example.com;x=1>',
    'm: *',
    'Require: 100rel,timer',
    'Require: foo',
    'X-Thing: one, two',
    'X-Thing: three',
    'Content-Length: 0',
  ]);

  it('finds the first field by any spelling of the name', () => {
    expect(getHeader(msg, 'call-id')).toBe('x1@example.com');
    expect(getHeader(msg, 'i')).toBe('x1@example.com');
    expect(getHeader(msg, 'x-thing')).toBe('one, two');
    expect(getHeader(msg, 'Event')).toBeUndefined();
  });

  it('splits list headers at top-level commas only', () => {
    expect(getHeaders(msg, 'Contact')).toEqual([
      '"Doe, John" <sip:john@example.com>',
      '<sip:j,2@example.com;x=1>',
      '*',
    ]);
    expect(getHeaders(msg, 'require')).toEqual(['100rel', 'timer', 'foo']);
  });

  it('keeps the fields of other headers whole', () => {
    expect(getHeaders(msg, 'X-Thing')).toEqual(['one, two', 'three']);
    expect(getHeaders(msg, 'Subject')).toEqual([]);
  });

  it('matches names on hand-built messages too', () => {
    const headers: Header[] = [
      { name: 'via', value: 'SIP/2.0/UDP a.example.com' },
      { name: 'v', value: 'SIP/2.0/UDP b.example.com' },
    ];
    expect(getHeaders({ headers }, 'Via')).toEqual(['SIP/2.0/UDP a.example.com', 'SIP/2.0/UDP b.example.com']);
  });
});

describe('setHeader / removeHeaders', () => {
  it("replaces every field of a name with one, in the first one's place", () => {
    const msg = {
      headers: [
        { name: 'A', value: '1' },
        { name: 'Supported', value: 'x' },
        { name: 'B', value: '2' },
        { name: 'k', value: 'y' },
      ],
    };
    setHeader(msg, 'supported', 'timer');
    expect(msg.headers).toEqual([
      { name: 'A', value: '1' },
      { name: 'Supported', value: 'timer' },
      { name: 'B', value: '2' },
    ]);
  });

  it('appends when the header is absent', () => {
    const msg = { headers: [{ name: 'A', value: '1' }] };
    setHeader(msg, 'Expires', '60');
    expect(msg.headers).toEqual([
      { name: 'A', value: '1' },
      { name: 'Expires', value: '60' },
    ]);
  });

  it('removes every field of a name, compact forms included', () => {
    const msg = {
      headers: [
        { name: 'Contact', value: '<sip:a@b.example.com>' },
        { name: 'A', value: '1' },
        { name: 'm', value: '<sip:c@d.example.com>' },
      ],
    };
    removeHeaders(msg, 'contact');
    expect(msg.headers).toEqual([{ name: 'A', value: '1' }]);
  });
});
