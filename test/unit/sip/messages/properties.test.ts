/**
 * Property tests: generated valid requests and responses survive parse/serialize unchanged, and
 * damaged ones never make the message layer throw.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  frameStream,
  getHeader,
  getHeaders,
  parseCSeq,
  parseMessage,
  parseMultipart,
  parseNameAddr,
  parseVia,
  serializeMessage,
  topVia,
} from '#shared/sip/messages/index.ts';
import type { Header, ParseResult, SipMessage } from '#shared/sip/messages/index.ts';

const RUNS = 300;

const chars = (set: string) => fc.constantFrom(...set.split(''));
const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const TOKEN_CHARS = `${ALNUM}-.!%*_+\`'~`;

const token = fc.string({ unit: chars(TOKEN_CHARS), minLength: 1, maxLength: 12 });
const label = fc
  .tuple(
    chars('abcdefghijklmnopqrstuvwxyz'),
    fc.string({ unit: chars('abcdefghijklmnopqrstuvwxyz0123456789'), maxLength: 8 }),
  )
  .map(([a, b]) => a + b);
const hostname = fc.array(label, { minLength: 1, maxLength: 3 }).map((ls) => `${ls.join('.')}.example`);
const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'));
const ipv6 = fc
  .array(fc.nat(0xffff), { minLength: 8, maxLength: 8 })
  .map((g) => `[${g.map((x) => x.toString(16)).join(':')}]`);
const host = fc.oneof(hostname, ipv4, ipv6);
const port = fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined });
const uriParam = fc.string({ unit: chars(`${ALNUM}-_.!~*'()[]/:&+$`), minLength: 1, maxLength: 8 });
const user = fc.string({ unit: chars(`${ALNUM}-_.!~*'()&=+$,;?/`), minLength: 1, maxLength: 10 });
const sipUri = fc
  .tuple(
    fc.constantFrom('sip', 'sips'),
    fc.option(user, { nil: undefined }),
    host,
    port,
    fc.option(uriParam, { nil: undefined }),
  )
  .map(
    ([scheme, u, h, p, param]) =>
      `${scheme}:${u ? `${u}@` : ''}${h}${p ? `:${p}` : ''}${param ? `;${param.toLowerCase()}` : ''}`,
  );
const method = fc.oneof(fc.constantFrom('INVITE', 'SUBSCRIBE', 'NOTIFY', 'MESSAGE', 'OPTIONS', 'BYE'), token);

/** Printable text with inner single spaces, UTF-8 included: no leading/trailing whitespace. */
const text = fc
  .array(
    fc.string({
      unit: fc.oneof(chars(`${ALNUM}-_.!~*'()&=+$,;?/:<>@[]{}"\\#%^|`), chars('éüß日本語€')),
      minLength: 1,
      maxLength: 10,
    }),
    {
      minLength: 1,
      maxLength: 4,
    },
  )
  .map((words) => words.join(' '));

const nameAddr = fc
  .tuple(
    fc.option(fc.constantFrom('"Alice Example"', 'Bob', '"A, \\"B\\""'), { nil: undefined }),
    sipUri,
    fc.option(token, { nil: undefined }),
  )
  .map(([display, uri, tag]) => `${display ? `${display} ` : ''}<${uri}>${tag ? `;tag=${tag}` : ''}`);

const viaValue = fc
  .tuple(fc.constantFrom('UDP', 'TCP', 'TLS', 'WS'), host, port, token, fc.boolean())
  .map(
    ([t, h, p, branch, rport]) =>
      `SIP/2.0/${t} ${h}${p ? `:${p}` : ''};branch=z9hG4bK${branch}${rport ? ';rport' : ''}`,
  );

/** Extension headers the message layer does not interpret: any text goes. */
const extension = fc.tuple(token, text).map(([n, v]): Header => ({ name: `X-${n}`, value: v }));
const known = fc.oneof(
  text.map((v): Header => ({ name: 'Subject', value: v })),
  text.map((v): Header => ({ name: 'User-Agent', value: v })),
  token.map((v): Header => ({ name: 'Event', value: v })),
  fc.nat(86400).map((v): Header => ({ name: 'Expires', value: String(v) })),
  nameAddr.map((v): Header => ({ name: 'Contact', value: v })),
  nameAddr.map((v): Header => ({ name: 'Record-Route', value: v })),
);

interface Generated {
  bytes: Buffer;
  headers: Header[];
  body: Buffer;
}

/** A valid message: mandatory headers, random others, shuffled, Content-Length right. */
function generated(startLine: fc.Arbitrary<{ line: string; method?: string }>): fc.Arbitrary<Generated> {
  return fc
    .tuple(
      startLine,
      fc.array(viaValue, { minLength: 1, maxLength: 3 }),
      nameAddr,
      nameAddr,
      fc.string({ unit: chars(`${ALNUM}-.!%*_+\`'~()<>:\\"/[]?{}`), minLength: 1, maxLength: 20 }),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      fc.array(fc.oneof(extension, known), { maxLength: 8 }),
      fc.uint8Array({ maxLength: 300 }),
      fc.nat(),
      fc.option(fc.nat(255), { nil: undefined }),
    )
    .map(([start, vias, from, to, callId, seq, others, bodyBytes, seed, maxForwards]) => {
      const body = Buffer.from(bodyBytes);
      const cseqMethod = start.method ?? 'INVITE';
      const mandatory: Header[] = [
        ...vias.map((v) => ({ name: 'Via', value: v })),
        { name: 'From', value: from },
        { name: 'To', value: to },
        { name: 'Call-ID', value: callId },
        { name: 'CSeq', value: `${seq} ${cseqMethod}` },
      ];
      // Max-Forwards: at most one, and RFC 3261 §8.1.1.6 only SHOULDs it.
      if (maxForwards !== undefined) mandatory.push({ name: 'Max-Forwards', value: String(maxForwards) });
      // Others go anywhere after the Vias; the order of Via fields is kept.
      const rest = [...mandatory.slice(vias.length), ...others];
      if (body.length > 0) rest.push({ name: 'Content-Type', value: 'application/octet-stream' });
      rest.push({ name: 'Content-Length', value: String(body.length) });
      for (let i = rest.length - 1; i > 0; i--) {
        const j = (seed + i * 7919) % (i + 1);
        [rest[i], rest[j]] = [rest[j]!, rest[i]!];
      }
      const headers = [...mandatory.slice(0, vias.length), ...rest];
      const head = `${start.line}\r\n${headers.map((h) => `${h.name}: ${h.value}\r\n`).join('')}\r\n`;
      return { bytes: Buffer.concat([Buffer.from(head, 'utf8'), body]), headers, body };
    });
}

const requestLine = fc.tuple(method, sipUri).map(([m, uri]) => ({ line: `${m} ${uri} SIP/2.0`, method: m }));
const statusLine = fc
  .tuple(fc.integer({ min: 100, max: 699 }), fc.option(text, { nil: undefined }))
  .map(([status, reason]) => ({ line: `SIP/2.0 ${status} ${reason ?? ''}` }));

const anyMessage = fc.oneof(generated(requestLine), generated(statusLine));

function ok(r: ParseResult): SipMessage {
  if (!r.ok) throw new Error(`${r.status} ${r.reason}`);
  return r.message;
}

describe('valid messages', () => {
  it('parse with every header (name, value, order) and the body; serialize gives the same octets', () => {
    fc.assert(
      fc.property(anyMessage, (g) => {
        const msg = ok(parseMessage(g.bytes));
        expect(msg.headers).toEqual(g.headers);
        expect(msg.body.equals(g.body)).toBe(true);
        expect(serializeMessage(msg).equals(g.bytes)).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it('parse ∘ serialize ∘ parse is parse', () => {
    fc.assert(
      fc.property(anyMessage, fc.boolean(), (g, datagram) => {
        const once = ok(parseMessage(g.bytes, { datagram }));
        const twice = ok(parseMessage(serializeMessage(once), { datagram }));
        expect({ ...twice, body: twice.body.toString('hex') }).toEqual({ ...once, body: once.body.toString('hex') });
      }),
      { numRuns: RUNS },
    );
  });

  it('read the same when header values are folded at their spaces (RFC 3261 §7.3.1)', () => {
    fc.assert(
      fc.property(anyMessage, fc.constantFrom(' ', '\t', '   '), (g, indent) => {
        const head = g.bytes.subarray(0, g.bytes.indexOf('\r\n\r\n') + 2).toString('utf8');
        const [start, ...lines] = head.split('\r\n');
        // Fold inside values only: after the "name: " part.
        const folded = lines.map((l) => {
          const colon = l.indexOf(': ');
          return colon === -1 ? l : l.slice(0, colon + 2) + l.slice(colon + 2).replace(/ /g, `\r\n${indent}`);
        });
        const bytes = Buffer.concat([
          Buffer.from([start, ...folded].join('\r\n') + '\r\n', 'utf8'),
          g.bytes.subarray(g.bytes.indexOf('\r\n\r\n') + 2),
        ]);
        const msg = ok(parseMessage(bytes));
        expect(msg.headers).toEqual(g.headers);
      }),
      { numRuns: RUNS },
    );
  });

  it('frame as one message each when streamed back to back', () => {
    fc.assert(
      fc.property(fc.array(anyMessage, { minLength: 1, maxLength: 4 }), (gs) => {
        let buffer: Buffer = Buffer.concat(gs.map((g) => g.bytes));
        for (const g of gs) {
          const r = frameStream(buffer, 1 << 20);
          expect(r.kind).toBe('message');
          if (r.kind !== 'message') return;
          expect(r.bytes.equals(g.bytes)).toBe(true);
          buffer = r.rest;
        }
        expect(buffer.length).toBe(0);
      }),
      { numRuns: RUNS },
    );
  });
});

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; byte: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    byte: fc.constantFrom(0x0d, 0x0a, 0x00, 0xff, 0x80, 0xc3, 0x20, 0x3a, 0x3b, 0x2c, 0x22, 0x3c),
  }),
);

function mutate(bytes: Buffer, ms: Mutation[]): Buffer {
  let b: Buffer = Buffer.from(bytes);
  for (const m of ms) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    if (m.kind === 'flip') b[at] = b[at]! ^ (1 << m.bit);
    else if (m.kind === 'truncate') b = b.subarray(0, at);
    else b = Buffer.concat([b.subarray(0, at), Buffer.from([m.byte]), b.subarray(at)]);
  }
  return b;
}

/** Everything a transport and the layers above do with received octets. */
function exercise(bytes: Buffer, datagram: boolean): void {
  frameStream(bytes, 4096);
  const r = parseMessage(bytes, { datagram, maxBytes: 2048, supportedOptionTags: [] });
  if (!r.ok) return;
  const m = r.message;
  serializeMessage(m);
  topVia(m);
  for (const name of ['From', 'To', 'Contact', 'Record-Route']) for (const v of getHeaders(m, name)) parseNameAddr(v);
  for (const v of getHeaders(m, 'Via')) parseVia(v);
  parseCSeq(getHeader(m, 'CSeq') ?? '');
  parseMultipart(m.body, getHeader(m, 'Content-Type') ?? '');
}

describe('damaged messages', () => {
  it('never make the message layer throw (byte flips, truncation, CR/LF/NUL/high bytes)', () => {
    fc.assert(
      fc.property(anyMessage, fc.array(mutation, { minLength: 1, maxLength: 6 }), fc.boolean(), (g, ms, datagram) => {
        expect(() => exercise(mutate(g.bytes, ms), datagram)).not.toThrow();
      }),
      { numRuns: 1000 },
    );
  });

  it('a parse failure always carries a status and a reason', () => {
    fc.assert(
      fc.property(anyMessage, fc.array(mutation, { minLength: 1, maxLength: 6 }), (g, ms) => {
        const r = parseMessage(mutate(g.bytes, ms));
        if (r.ok) return;
        expect([400, 416, 505, 513]).toContain(r.status);
        expect(r.reason.length).toBeGreaterThan(0);
        expect(['request', 'response', 'unknown']).toContain(r.kind);
      }),
      { numRuns: 1000 },
    );
  });
});
