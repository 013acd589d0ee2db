/**
 * Views on a parsed message reuse what parseMessage built while validating (typed-values.ts).
 * These tests pin down what that must not change: views follow edits to the message, hand out
 * new objects, and parsing never trusts an earlier result.
 */
import { describe, expect, it } from 'vitest';
import {
  getHeader,
  getHeaders,
  isValidMediaType,
  parseContact,
  parseCSeq,
  parseMediaType,
  parseMessage,
  parseNameAddr,
  parseVia,
  removeHeaders,
  setHeader,
  topVia,
} from '#shared/sip/messages/index.ts';
import type { SipMessage } from '#shared/sip/messages/index.ts';

const HEAD = [
  'SUBSCRIBE sip:alice@example.com SIP/2.0',
  'Via: SIP/2.0/TCP 192.0.2.10:50211;branch=z9hG4bK776asdhds;rport',
  'Max-Forwards: 70',
  'From: "Alice" <sip:alice@example.com>;tag=1928301774',
  'To: <sip:alice@example.com>',
  'Call-ID: a84b4c76e66710',
  'CSeq: 1 SUBSCRIBE',
  'Contact: <sip:alice@192.0.2.10:50211;transport=tcp>',
  'Event: deferred-messages',
  'Content-Length: 0',
];

function parse(lines: string[] = HEAD): SipMessage {
  const r = parseMessage(Buffer.from(`${lines.join('\r\n')}\r\n\r\n`));
  if (!r.ok) throw new Error(`parse failed: ${r.reason}`);
  return r.message;
}

describe('views on a parsed message', () => {
  it('read the values the parser validated', () => {
    const m = parse();
    expect(topVia(m)).toEqual({
      transport: 'TCP',
      host: '192.0.2.10',
      port: 50211,
      params: { branch: 'z9hG4bK776asdhds', rport: null },
      branch: 'z9hG4bK776asdhds',
      rport: null,
    });
    expect(parseNameAddr(getHeader(m, 'From')!)).toEqual({
      displayName: 'Alice',
      uri: 'sip:alice@example.com',
      params: { tag: '1928301774' },
    });
    expect(parseNameAddr(getHeader(m, 'To')!)).toEqual({ uri: 'sip:alice@example.com', params: {} });
    expect(parseCSeq(getHeader(m, 'CSeq')!)).toEqual({ seq: 1, method: 'SUBSCRIBE' });
    expect(getHeaders(m, 'Contact').map((c) => parseContact(c))).toEqual([
      { uri: 'sip:alice@192.0.2.10:50211;transport=tcp', params: {} },
    ]);
  });

  it('give the same result as reading a copy of the text that was never parsed', () => {
    const m = parse();
    for (const name of ['From', 'To', 'Contact']) {
      const value = getHeader(m, name)!;
      const fresh = ` ${value}`.slice(1);
      expect(parseNameAddr(value)).toEqual(parseNameAddr(fresh));
    }
    const via = getHeader(m, 'Via')!;
    expect(parseVia(via)).toEqual(parseVia(` ${via}`.slice(1)));
  });

  it('hand out a new object on every call: changing one changes no later read', () => {
    const m = parse();
    const via = topVia(m)!;
    via.params.branch = 'changed';
    via.branch = 'changed';
    via.host = 'changed.example.com';
    expect(topVia(m)!.branch).toBe('z9hG4bK776asdhds');
    expect(topVia(m)!.params.branch).toBe('z9hG4bK776asdhds');
    expect(topVia(m)!.host).toBe('192.0.2.10');
    expect(topVia(m)).not.toBe(topVia(m));

    const from = parseNameAddr(getHeader(m, 'From')!)!;
    from.params.tag = 'changed';
    delete from.displayName;
    expect(parseNameAddr(getHeader(m, 'From')!)).toEqual({
      displayName: 'Alice',
      uri: 'sip:alice@example.com',
      params: { tag: '1928301774' },
    });

    const cseq = parseCSeq(getHeader(m, 'CSeq')!)!;
    cseq.seq = 99;
    expect(parseCSeq(getHeader(m, 'CSeq')!)!.seq).toBe(1);
  });

  it('follow setHeader, removeHeaders and edits in place', () => {
    const m = parse();
    setHeader(m, 'Via', 'SIP/2.0/UDP proxy.example.com;branch=z9hG4bKnew');
    expect(topVia(m)).toMatchObject({ transport: 'UDP', host: 'proxy.example.com', branch: 'z9hG4bKnew' });

    setHeader(m, 'To', '<sip:alice@example.com>;tag=abc');
    expect(parseNameAddr(getHeader(m, 'To')!)?.params.tag).toBe('abc');

    const from = m.headers.find((h) => h.name === 'From')!;
    from.value = '<sip:bob@example.net>;tag=xyz';
    expect(parseNameAddr(getHeader(m, 'From')!)).toEqual({ uri: 'sip:bob@example.net', params: { tag: 'xyz' } });

    m.headers.unshift({ name: 'Via', value: 'SIP/2.0/TLS edge.example.com:5061;branch=z9hG4bKtop' });
    expect(topVia(m)).toMatchObject({ transport: 'TLS', host: 'edge.example.com', port: 5061, branch: 'z9hG4bKtop' });

    removeHeaders(m, 'Via');
    expect(topVia(m)).toBeUndefined();

    const cseq = m.headers.find((h) => h.name === 'CSeq')!;
    cseq.value = '2 SUBSCRIBE';
    expect(parseCSeq(getHeader(m, 'CSeq')!)).toEqual({ seq: 2, method: 'SUBSCRIBE' });
    cseq.value = 'two SUBSCRIBE';
    expect(parseCSeq(getHeader(m, 'CSeq')!)).toBeUndefined();
  });

  it('stay right on many messages in turn, more than are remembered', () => {
    const messages: SipMessage[] = [];
    for (let i = 0; i < 200; i++) {
      messages.push(
        parse(
          HEAD.map((l) =>
            l
              .replace('branch=z9hG4bK776asdhds', `branch=z9hG4bK${i}`)
              .replace('tag=1928301774', `tag=t${i}`)
              .replace('CSeq: 1 ', `CSeq: ${i + 1} `),
          ),
        ),
      );
    }
    messages.forEach((m, i) => {
      expect(topVia(m)!.branch).toBe(`z9hG4bK${i}`);
      expect(parseNameAddr(getHeader(m, 'From')!)!.params.tag).toBe(`t${i}`);
      expect(parseCSeq(getHeader(m, 'CSeq')!)!.seq).toBe(i + 1);
    });
  });

  it('read every via-parm of a combined Via field', () => {
    const m = parse([
      ...HEAD.filter((l) => !l.startsWith('Via')),
      'Via: SIP/2.0/UDP a.example.com;branch=z9hG4bKa, SIP/2.0/TCP b.example.com;branch=z9hG4bKb',
    ]);
    expect(topVia(m)!.host).toBe('a.example.com');
    expect(getHeaders(m, 'Via').map((v) => parseVia(v)?.host)).toEqual(['a.example.com', 'b.example.com']);
  });

  it('keep a parameter named __proto__ from changing what later reads see', () => {
    const value = 'SIP/2.0/UDP host.example.com;__proto__;branch=z9hG4bK1';
    const first = parseVia(value)!;
    const second = parseVia(value)!;
    expect(second).not.toBe(first);
    expect(Object.getPrototypeOf(second.params)).toBe(Object.getPrototypeOf(first.params));
    expect(second.branch).toBe('z9hG4bK1');
  });
});

describe('parsing never relies on earlier results', () => {
  it('rejects a bad value whatever was read before', () => {
    const good = parse();
    expect(topVia(good)?.host).toBe('192.0.2.10');
    const badVia = HEAD.map((l) =>
      l.startsWith('Via:') ? 'Via: SIP/2.0/TCP 192.0.2.10:99999;branch=z9hG4bK776asdhds' : l,
    );
    const r = parseMessage(Buffer.from(`${badVia.join('\r\n')}\r\n\r\n`));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toBe('Bad Request - Bad Via');
    const badFrom = HEAD.map((l) => (l.startsWith('From:') ? 'From: <sip:alice@exa mple.com>;tag=1' : l));
    const r2 = parseMessage(Buffer.from(`${badFrom.join('\r\n')}\r\n\r\n`));
    expect(r2.ok).toBe(false);
    if (!r2.ok) expect(r2.reason).toBe('Bad Request - Bad From');
  });
});

describe('parameter and header names', () => {
  it('lower-cases parameter names, common and unknown ones alike', () => {
    expect(parseVia('SIP/2.0/udp h.example.com;BRANCH=z9hG4bKx;RPort;Received=192.0.2.1;X-Other=1')).toEqual({
      transport: 'UDP',
      host: 'h.example.com',
      params: { branch: 'z9hG4bKx', rport: null, received: '192.0.2.1', 'x-other': '1' },
      branch: 'z9hG4bKx',
      received: '192.0.2.1',
      rport: null,
    });
    expect(parseNameAddr('<sip:a@example.com;Transport=TCP;LR>;TAG=7')?.params).toEqual({ tag: '7' });
    expect(parseVia('SIP/2.0/Ws h.example.com')?.transport).toBe('WS');
    expect(parseVia('SIP/2.0/wss h.example.com')?.transport).toBe('WSS');
    expect(parseVia('SIP/2.0/sctp h.example.com')?.transport).toBe('SCTP');
  });

  it('finds headers stored in any spelling, and tells apart names of the same length', () => {
    const m = {
      headers: [
        { name: 'call-id', value: 'c1' },
        { name: 'CONTACT', value: '<sip:a@example.com>' },
        { name: 'Expires', value: '60' },
      ],
    };
    expect(getHeader(m, 'Contact')).toBe('<sip:a@example.com>');
    expect(getHeader(m, 'Call-ID')).toBe('c1');
    expect(getHeader(m, 'i')).toBe('c1');
    expect(getHeaders(m, 'm')).toEqual(['<sip:a@example.com>']);
    expect(getHeader(m, 'Expires')).toBe('60');
    expect(getHeader(m, 'Subject')).toBeUndefined();
  });

  it('reads the request line version and the list elements as before', () => {
    const m = parse(['SUBSCRIBE sip:alice@example.com sip/2.0', ...HEAD.slice(1)]);
    expect(m.kind).toBe('request');
    const lists = {
      headers: [
        { name: 'Contact', value: '  <sip:a@example.com>  ' },
        { name: 'Contact', value: ' ' },
      ],
    };
    expect(getHeaders(lists, 'Contact')).toEqual(['<sip:a@example.com>']);
  });
});

describe('isValidMediaType', () => {
  it('accepts exactly what parseMediaType reads', () => {
    const samples = [
      'application/sdp',
      'multipart/mixed;boundary=b1',
      'multipart/mixed ; boundary = "a b"',
      'text/plain;charset',
      'text',
      'text/',
      '/plain',
      'text/plain;',
      'text/plain;a=1;b="x;y"',
      ' Application/SDP ',
    ];
    for (const s of samples) expect(isValidMediaType(s), s).toBe(parseMediaType(s) !== undefined);
  });
});
