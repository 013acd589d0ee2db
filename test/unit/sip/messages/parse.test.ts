import { describe, expect, it } from 'vitest';
import { getHeader, parseMessage } from '#shared/sip/messages/index.ts';
import type { ParseOptions, ParseResult, SipRequest, SipResponse } from '#shared/sip/messages/index.ts';

const REQUEST_HEAD = [
  'SUBSCRIBE sip:alice@example.com SIP/2.0',
  'Via: SIP/2.0/TCP 192.0.2.10:50211;branch=z9hG4bK776asdhds;rport',
  'Max-Forwards: 70',
  'From: <sip:alice@example.com>;tag=1928301774',
  'To: <sip:alice@example.com>',
  'Call-ID: a84b4c76e66710',
  'CSeq: 1 SUBSCRIBE',
  'Contact: <sip:alice@192.0.2.10:50211;transport=tcp>',
  'Event: deferred-messages',
  'Expires: 3600',
];

function bytes(lines: string[], body = ''): Buffer {
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

function parse(lines: string[], body = '', opts?: ParseOptions): ParseResult {
  return parseMessage(bytes(lines, body), opts);
}

function failure(r: ParseResult) {
  if (r.ok) throw new Error('expected a failure');
  return r;
}

function request(r: ParseResult): SipRequest {
  if (!r.ok || r.message.kind !== 'request') throw new Error(r.ok ? 'not a request' : r.reason);
  return r.message;
}

/** The request head with one header replaced (or removed when value is undefined). */
function withHeader(name: string, value: string | undefined): string[] {
  const out = REQUEST_HEAD.filter((l) => !l.startsWith(`${name}:`));
  return value === undefined ? out : [...out, `${name}: ${value}`];
}

describe('requests', () => {
  it('reads the request line, headers in order and an empty body', () => {
    const msg = request(parse([...REQUEST_HEAD, 'Content-Length: 0']));
    expect(msg.method).toBe('SUBSCRIBE');
    expect(msg.uri).toBe('sip:alice@example.com');
    expect(msg.headers[0]).toEqual({
      name: 'Via',
      value: 'SIP/2.0/TCP 192.0.2.10:50211;branch=z9hG4bK776asdhds;rport',
    });
    expect(msg.headers).toHaveLength(10);
    expect(msg.body.length).toBe(0);
  });

  it('takes Content-Length octets of body', () => {
    const msg = request(parse([...REQUEST_HEAD, 'Content-Type: text/plain', 'Content-Length: 5'], 'hello'));
    expect(msg.body.toString()).toBe('hello');
  });

  it('ignores CRLFs before the start line (RFC 3261 §7.5)', () => {
    const r = parseMessage(Buffer.concat([Buffer.from('\r\n\r\n'), bytes([...REQUEST_HEAD, 'Content-Length: 0'])]));
    expect(r.ok).toBe(true);
  });

  it('unfolds folded header values into one line (RFC 3261 §7.3.1)', () => {
    const msg = request(
      parse([
        ...REQUEST_HEAD.filter((l) => !l.startsWith('Contact')),
        'Contact:',
        '  <sip:alice@192.0.2.10>',
        '  ;expires=60',
        'Subject: one',
        '\ttwo  ',
        'Content-Length: 0',
      ]),
    );
    expect(getHeader(msg, 'Contact')).toBe('<sip:alice@192.0.2.10> ;expires=60');
    expect(getHeader(msg, 'Subject')).toBe('one two');
  });

  it('accepts whitespace before the colon and an empty value', () => {
    const msg = request(parse([...REQUEST_HEAD, 'Subject  :', 'Content-Length   : 0']));
    expect(getHeader(msg, 'Subject')).toBe('');
  });

  it('keeps UTF-8 in header values', () => {
    const msg = request(parse([...REQUEST_HEAD, 'Subject: Grüße, 日本', 'Content-Length: 0']));
    expect(getHeader(msg, 'Subject')).toBe('Grüße, 日本');
  });

  it('accepts a missing Max-Forwards and Max-Forwards 0 (RFC 4475 §3.3.11)', () => {
    expect(parse(withHeader('Max-Forwards', undefined)).ok).toBe(true);
    expect(parse(withHeader('Max-Forwards', '0')).ok).toBe(true);
  });
});

describe('responses', () => {
  const head = [
    'Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1',
    'From: <sip:alice@example.com>;tag=1',
    'To: <sip:alice@example.com>;tag=2',
    'Call-ID: abc',
    'CSeq: 1 INVITE',
    'Content-Length: 0',
  ];

  it('reads status and reason, which may be empty or UTF-8', () => {
    const ok = parse(['SIP/2.0 200 OK', ...head]);
    expect(ok.ok && (ok.message as SipResponse).status).toBe(200);
    const empty = parse(['SIP/2.0 100 ', ...head]);
    expect(empty.ok && (empty.message as SipResponse).reason).toBe('');
    const utf8 = parse(['SIP/2.0 486 Занято', ...head]);
    expect(utf8.ok && (utf8.message as SipResponse).reason).toBe('Занято');
  });

  it('drops malformed responses with kind "response"', () => {
    for (const start of ['SIP/2.0 20 OK', 'SIP/2.0 4294967301 big', 'SIP/2.0 099 low', 'SIP/3.0 200 OK']) {
      const r = failure(parse([start, ...head]));
      expect(r.kind).toBe('response');
    }
    const noVia = failure(parse(['SIP/2.0 200 OK', ...head.slice(1)]));
    expect(noVia.kind).toBe('response');
    expect(noVia.reason).toBe('Bad Request - Missing Via');
  });

  it('drops responses that cannot be matched to a transaction: bad top Via, bad or repeated CSeq', () => {
    const swap = (name: string, value: string) => [
      'SIP/2.0 200 OK',
      ...head.filter((l) => !l.startsWith(`${name}:`)),
      `${name}: ${value}`,
    ];
    expect(failure(parse(swap('Via', 'SIP/2.0/UDP 192.0.2.15;;'))).reason).toBe('Bad Request - Bad Via');
    expect(failure(parse(swap('CSeq', '9292394834772304023312 OPTIONS'))).reason).toBe('Bad Request - Bad CSeq');
    expect(failure(parse(['SIP/2.0 200 OK', ...head, 'CSeq: 2 INVITE'])).reason).toBe('Bad Request - Multiple CSeq');
  });

  it('accepts responses echoing the faults of the request they answer (RFC 3261 §8.2.6.2)', () => {
    const echo = [
      'SIP/2.0 400 Bad Request - Bad To',
      'Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1, SIP/2.0/UDP 192.0.2.15;;',
      'From: Bell, Alexander <sip:a.g.bell@example.com>;tag=43',
      'To: "Watson, Thomas" < sip:t.watson@example.org >;tag=x',
      'CSeq: 1 OPTIONS',
      'Content-Length: 0',
    ];
    const r = parse(echo);
    expect(r.ok && (r.message as SipResponse).status).toBe(400);
  });
});

describe('rejections name their fault', () => {
  const cases: [string, string[], number, string][] = [
    ['missing CSeq', [...withHeader('CSeq', undefined), 'Content-Length: 0'], 400, 'Bad Request - Missing CSeq'],
    ['missing Via', [...withHeader('Via', undefined), 'Content-Length: 0'], 400, 'Bad Request - Missing Via'],
    ['bad Via', [...withHeader('Via', 'SIP/2.0/UDP'), 'Content-Length: 0'], 400, 'Bad Request - Bad Via'],
    ['bad From', [...withHeader('From', '<sip:alice@example.com'), 'Content-Length: 0'], 400, 'Bad Request - Bad From'],
    ['bad Call-ID', [...withHeader('Call-ID', 'a b'), 'Content-Length: 0'], 400, 'Bad Request - Bad Call-ID'],
    [
      'CSeq mismatch',
      [...withHeader('CSeq', '1 INVITE'), 'Content-Length: 0'],
      400,
      'Bad Request - CSeq method mismatch',
    ],
    [
      'big Max-Forwards',
      [...withHeader('Max-Forwards', '256'), 'Content-Length: 0'],
      400,
      'Bad Request - Bad Max-Forwards',
    ],
    [
      'bad Contact',
      [...withHeader('Contact', '<sip:a@b.example.com>;;'), 'Content-Length: 0'],
      400,
      'Bad Request - Bad Contact',
    ],
    ['bad Expires', [...withHeader('Expires', 'never'), 'Content-Length: 0'], 400, 'Bad Request - Bad Expires'],
    [
      'bad Content-Type',
      [...REQUEST_HEAD, 'Content-Type: text', 'Content-Length: 0'],
      400,
      'Bad Request - Bad Content-Type',
    ],
    [
      'bad Route',
      [...REQUEST_HEAD, 'Route: sip:a@b.example.com;lr, <', 'Content-Length: 0'],
      400,
      'Bad Request - Bad Route',
    ],
    [
      'two Content-Length',
      [...REQUEST_HEAD, 'Content-Length: 0', 'l: 0'],
      400,
      'Bad Request - Multiple Content-Length',
    ],
    [
      'header without colon',
      [...REQUEST_HEAD, 'Garbage', 'Content-Length: 0'],
      400,
      'Bad Request - Malformed header line',
    ],
    [
      'bad header name',
      [...REQUEST_HEAD, 'Bad Name: x', 'Content-Length: 0'],
      400,
      'Bad Request - Malformed header name',
    ],
    [
      'folding first',
      [REQUEST_HEAD[0]!, ' folded', ...REQUEST_HEAD.slice(1), 'Content-Length: 0'],
      400,
      'Bad Request - Bad header folding',
    ],
    [
      'version',
      ['SUBSCRIBE sip:alice@example.com SIP/3.0', ...REQUEST_HEAD.slice(1), 'Content-Length: 0'],
      505,
      'Version Not Supported',
    ],
    [
      'scheme',
      ['SUBSCRIBE mailto:alice@example.com SIP/2.0', ...REQUEST_HEAD.slice(1), 'Content-Length: 0'],
      416,
      'Unsupported URI Scheme',
    ],
    [
      'double space',
      ['SUBSCRIBE  sip:alice@example.com SIP/2.0', ...REQUEST_HEAD.slice(1), 'Content-Length: 0'],
      400,
      'Bad Request - Bad Request-Line',
    ],
    [
      'bad method',
      ['SUB/SCRIBE sip:alice@example.com SIP/2.0', ...REQUEST_HEAD.slice(1), 'Content-Length: 0'],
      400,
      'Bad Request - Bad Method',
    ],
  ];

  it.each(cases)('%s', (_name, lines, status, reason) => {
    const r = failure(parse(lines));
    expect(r.kind).toBe('request');
    expect(r.status).toBe(status);
    expect(r.reason).toBe(reason);
  });

  it('keeps what it read for the error response', () => {
    const r = failure(parse([...withHeader('CSeq', '1 INVITE'), 'Content-Length: 0']));
    expect(r.partial?.method).toBe('SUBSCRIBE');
    expect(r.partial?.uri).toBe('sip:alice@example.com');
    expect(getHeader(r.partial!, 'Call-ID')).toBe('a84b4c76e66710');
  });

  it('rejects a bare LF or CR inside the header section', () => {
    const lf = Buffer.from(`${REQUEST_HEAD.join('\r\n')}\r\nSubject: a\nb\r\nContent-Length: 0\r\n\r\n`);
    expect(failure(parseMessage(lf)).reason).toBe('Bad Request - Bare CR or LF');
    const cr = Buffer.from(`${REQUEST_HEAD.join('\r\n')}\r\nSubject: a\rb\r\nContent-Length: 0\r\n\r\n`);
    expect(failure(parseMessage(cr)).reason).toBe('Bad Request - Bare CR or LF');
  });

  it('rejects a message without the empty line after the headers', () => {
    const r = failure(parseMessage(Buffer.from(`${REQUEST_HEAD.join('\r\n')}\r\nContent-Length: 0\r\n`)));
    expect(r.reason).toBe('Bad Request - Missing empty line after headers');
  });

  it('answers nothing it cannot recognise as a request', () => {
    for (const junk of ['', '\r\n\r\n', 'hello', '\x00\x01\x02\r\n\r\n', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n']) {
      const r = failure(parseMessage(Buffer.from(junk, 'latin1')));
      expect(r.kind).toBe('unknown');
    }
  });

  it('limits the number of header fields', () => {
    const many = [...REQUEST_HEAD, ...Array.from({ length: 20 }, (_, i) => `X-H${i}: ${i}`), 'Content-Length: 0'];
    expect(failure(parse(many, '', { maxHeaders: 10 })).reason).toBe('Bad Request - Too many headers');
    expect(parse(many).ok).toBe(true);
  });
});

describe('framing (RFC 3261 §18.3)', () => {
  const body = 'v=0\r\n';

  it('stream mode: a Content-Length larger than the octets is a mismatch', () => {
    const r = failure(parse([...REQUEST_HEAD, 'Content-Length: 50'], body));
    expect(r.reason).toBe('Bad Request - Content-Length mismatch');
  });

  it('stream mode: a body without Content-Length is refused, an empty one is fine', () => {
    expect(failure(parse(REQUEST_HEAD, body)).reason).toBe('Bad Request - Missing Content-Length');
    expect(parse(REQUEST_HEAD).ok).toBe(true);
  });

  it('datagram mode: the datagram ends a body without Content-Length', () => {
    expect(request(parse(REQUEST_HEAD, body, { datagram: true })).body.toString()).toBe(body);
  });

  it('both modes: octets past Content-Length are not part of the message', () => {
    for (const datagram of [true, false]) {
      const msg = request(parse([...REQUEST_HEAD, 'Content-Length: 3'], body, { datagram }));
      expect(msg.body.toString()).toBe('v=0');
    }
  });

  it('rejects malformed Content-Length values', () => {
    for (const v of ['-1', 'abc', '1 2', '99999999999999999999']) {
      expect(failure(parse([...REQUEST_HEAD, `Content-Length: ${v}`], body)).reason).toBe(
        'Bad Request - Bad Content-Length',
      );
    }
  });

  it('answers 513 above maxBytes, still with the head for the response', () => {
    const big = bytes([...REQUEST_HEAD, 'Content-Type: text/plain', 'Content-Length: 2000'], 'x'.repeat(2000));
    const r = failure(parseMessage(big, { maxBytes: 1300 }));
    expect(r.status).toBe(513);
    expect(r.reason).toBe('Message Too Large');
    expect(r.kind).toBe('request');
    expect(getHeader(r.partial!, 'CSeq')).toBe('1 SUBSCRIBE');
    expect(parseMessage(big, { maxBytes: big.length }).ok).toBe(true);
  });
});

describe('options', () => {
  it('answers 420 with the unsupported tags when supportedOptionTags is given', () => {
    const lines = [...REQUEST_HEAD, 'Require: timer, foo', 'Content-Length: 0'];
    const r = failure(parse(lines, '', { supportedOptionTags: ['timer'] }));
    expect(r.status).toBe(420);
    expect(r.reason).toBe('Bad Extension');
    expect(r.unsupported).toEqual(['foo']);
    expect(parse(lines).ok).toBe(true);
  });

  it('serves the Request-URI schemes it is told to', () => {
    const lines = ['SUBSCRIBE im:alice@example.com SIP/2.0', ...REQUEST_HEAD.slice(1), 'Content-Length: 0'];
    expect(failure(parse(lines)).status).toBe(416);
    expect(parse(lines, '', { uriSchemes: ['sip', 'im'] }).ok).toBe(true);
  });

  it('treats non-Buffer input as bad input, without throwing', () => {
    expect(parseMessage(new Uint8Array(bytes([...REQUEST_HEAD, 'Content-Length: 0'])) as unknown as Buffer).ok).toBe(
      true,
    );
    expect(parseMessage('SUBSCRIBE' as unknown as Buffer).ok).toBe(false);
    expect(parseMessage(undefined as unknown as Buffer).ok).toBe(false);
  });
});
