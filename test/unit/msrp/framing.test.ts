import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MsrpParser,
  containsEndLine,
  parseByteRange,
  responseTo,
  serializeRequest,
  serializeResponse,
  type MsrpMalformed,
  type MsrpMessage,
  type MsrpRequest,
  type MsrpResponse,
} from '#shared/msrp/framing.ts';

const CLIENT = 'msrp://192.0.2.10:9/s111271;tcp';
const SERVICE = 'msrp://pf.example.com:2855/s-7c41;tcp';

// The example SEND of protocol.md, "Delivery over MSRP".
const CPIM = [
  'From: <sip:bob@example.net>',
  'To: <sip:alice@example.com>',
  'DateTime: 2026-11-23T10:00:00.000Z',
  'NS: imdn <urn:ietf:params:imdn>',
  'imdn.Message-ID: 34jk324j',
  'imdn.Disposition-Notification: positive-delivery, display',
  '',
  'Content-Type: text/plain;charset=UTF-8',
  '',
  'Lunch?',
].join('\r\n');

const EXAMPLE_SEND =
  `MSRP d93kswow SEND\r\nTo-Path: ${CLIENT}\r\nFrom-Path: ${SERVICE}\r\nMessage-ID: 12339sdqwer\r\n` +
  `Byte-Range: 1-${Buffer.byteLength(CPIM)}/${Buffer.byteLength(CPIM)}\r\nContent-Type: message/cpim\r\n\r\n${CPIM}\r\n-------d93kswow$\r\n`;
const BODILESS_SEND = `MSRP a786hjs2 SEND\r\nTo-Path: ${SERVICE}\r\nFrom-Path: ${CLIENT}\r\nMessage-ID: 87652491\r\n-------a786hjs2$\r\n`;
const OK_RESPONSE = `MSRP a786hjs2 200 OK\r\nTo-Path: ${CLIENT}\r\nFrom-Path: ${SERVICE}\r\n-------a786hjs2$\r\n`;

function parseAll(chunks: Array<string | Uint8Array>, parser = new MsrpParser()) {
  const items: Array<MsrpMessage | MsrpMalformed> = [];
  let error;
  for (const chunk of chunks) {
    const result = parser.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    items.push(...result.items);
    error ??= result.error;
  }
  return { items, error, parser };
}

describe('MsrpParser', () => {
  it('reads the protocol.md example SEND with its headers and CPIM body', () => {
    const { items, error } = parseAll([EXAMPLE_SEND]);
    expect(error).toBeUndefined();
    expect(items).toHaveLength(1);
    const send = items[0] as MsrpRequest;
    expect(send).toMatchObject({
      kind: 'request',
      method: 'SEND',
      transactionId: 'd93kswow',
      toPath: [CLIENT],
      fromPath: [SERVICE],
      messageId: '12339sdqwer',
      byteRange: { start: 1, end: Buffer.byteLength(CPIM), total: Buffer.byteLength(CPIM) },
      contentType: 'message/cpim',
      continuation: '$',
    });
    expect(send.body?.toString()).toBe(CPIM);
  });

  it('returns several messages delivered in one read, in order', () => {
    const { items, error, parser } = parseAll([BODILESS_SEND + OK_RESPONSE + EXAMPLE_SEND]);
    expect(error).toBeUndefined();
    expect(items.map((m) => m.kind)).toEqual(['request', 'response', 'request']);
    expect((items[0] as MsrpRequest).body).toBeUndefined();
    expect(items[1]).toMatchObject({ kind: 'response', status: 200, comment: 'OK', transactionId: 'a786hjs2' });
    expect((items[2] as MsrpRequest).body?.toString()).toBe(CPIM);
    expect(parser.buffered).toBe(0);
  });

  it('completes a message split byte by byte only at its last byte', () => {
    const bytes = Buffer.from(EXAMPLE_SEND + BODILESS_SEND);
    const parser = new MsrpParser();
    const completedAt: number[] = [];
    const items: Array<MsrpMessage | MsrpMalformed> = [];
    for (let i = 0; i < bytes.length; i++) {
      const result = parser.push(bytes.subarray(i, i + 1));
      expect(result.error).toBeUndefined();
      if (result.items.length) completedAt.push(i);
      items.push(...result.items);
    }
    expect(completedAt).toEqual([Buffer.byteLength(EXAMPLE_SEND) - 1, bytes.length - 1]);
    expect((items[0] as MsrpRequest).body?.toString()).toBe(CPIM);
    expect((items[1] as MsrpRequest).messageId).toBe('87652491');
  });

  it('keeps body bytes that only look like an end-line', () => {
    const tid = 'k2j3h4g5';
    const body =
      `line one\r\n-------${tid}x\r\n` + // another character where the flag goes
      `no CRLF before -------${tid}$\r\n` +
      `\r\n-------other99$\r\n` + // another transaction's end-line
      `\r\n-------${tid}$ trailing\r\n` + // flag not followed by CRLF
      `last line`;
    const frame =
      `MSRP ${tid} SEND\r\nTo-Path: ${CLIENT}\r\nFrom-Path: ${SERVICE}\r\nMessage-ID: m1m1m1\r\n` +
      `Content-Type: text/plain\r\n\r\n${body}\r\n-------${tid}+\r\n`;
    // Split inside each look-alike so the incremental scan meets them across reads.
    const cuts = [...frame.matchAll(/-------/g)].map((m) => m.index + 4);
    const pieces = [0, ...cuts].map((from, i) => frame.slice(from, cuts[i] ?? frame.length));
    expect(pieces).toHaveLength(6);
    const { items, error } = parseAll(pieces);
    expect(error).toBeUndefined();
    expect(items).toHaveLength(1);
    expect((items[0] as MsrpRequest).body?.toString()).toBe(body);
    expect((items[0] as MsrpRequest).continuation).toBe('+');
  });

  it('reads an empty body, a # flag, and a response without comment', () => {
    const tid = 'zzzz1111';
    const empty =
      `MSRP ${tid} SEND\r\nTo-Path: ${CLIENT}\r\nFrom-Path: ${SERVICE}\r\nMessage-ID: abcd\r\nByte-Range: 1-0/0\r\n` +
      `Content-Type: text/plain\r\n\r\n\r\n-------${tid}#\r\n`;
    const bare = `MSRP ${tid} 481\r\nTo-Path: ${CLIENT}\r\nFrom-Path: ${SERVICE}\r\n-------${tid}$\r\n`;
    const { items, error } = parseAll([empty, bare]);
    expect(error).toBeUndefined();
    expect((items[0] as MsrpRequest).body?.length).toBe(0);
    expect((items[0] as MsrpRequest).continuation).toBe('#');
    expect(items[1]).toMatchObject({ kind: 'response', status: 481 });
    expect((items[1] as MsrpResponse).comment).toBeUndefined();
  });

  it('accepts unknown methods and keeps every header in order', () => {
    const frame =
      `MSRP abcd1234 NICKNAME\r\nTo-Path: ${SERVICE}\r\nFrom-Path: ${CLIENT}\r\n` +
      `Use-Nickname: "Al"\r\nFailure-Report: partial\r\n-------abcd1234$\r\n`;
    const { items } = parseAll([frame]);
    const request = items[0] as MsrpRequest;
    expect(request.method).toBe('NICKNAME');
    expect(request.failureReport).toBe('partial');
    expect(request.headers.map((h) => h.name)).toEqual(['To-Path', 'From-Path', 'Use-Nickname', 'Failure-Report']);
  });

  it('reports garbage at the start of a stream as an error, without throwing, and stays stopped', () => {
    const parser = new MsrpParser();
    const first = parser.push(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    expect(first.items).toEqual([]);
    expect(first.error?.code).toBe('bad-start-line');
    const second = parser.push(Buffer.from(BODILESS_SEND));
    expect(second.items).toEqual([]);
    expect(second.error?.code).toBe('bad-start-line');
  });

  it('rejects a bad start line before its CRLF arrives', () => {
    expect(new MsrpParser().push(Buffer.from('HELLO')).error?.code).toBe('bad-start-line');
    expect(new MsrpParser().push(Buffer.from('MSRP x SEND\r\n')).error?.code).toBe('bad-start-line'); // tid too short
    expect(new MsrpParser().push(Buffer.from('msrp abcd SEND\r\n')).error?.code).toBe('bad-start-line'); // case-sensitive
    expect(new MsrpParser().push(Buffer.from('MSRP abcd send\r\n')).error?.code).toBe('bad-start-line');
  });

  it('stops at the header and chunk size limits', () => {
    const header = new MsrpParser({ maxHeaderBytes: 256 });
    const long = `MSRP abcd1234 SEND\r\nTo-Path: ${SERVICE}\r\nX-Pad: ${'a'.repeat(400)}`;
    expect(header.push(Buffer.from(long)).error?.code).toBe('header-too-large');

    const chunk = new MsrpParser({ maxChunkBytes: 1000 });
    const head = `MSRP abcd1234 SEND\r\nTo-Path: ${SERVICE}\r\nFrom-Path: ${CLIENT}\r\nContent-Type: text/plain\r\n\r\n`;
    expect(chunk.push(Buffer.from(head + 'x'.repeat(900))).error).toBeUndefined();
    expect(chunk.push(Buffer.from('x'.repeat(200))).error?.code).toBe('chunk-too-large');
  });

  it('reports an end-line of another transaction in the header section as an error', () => {
    const frame = `MSRP abcd1234 SEND\r\nTo-Path: ${SERVICE}\r\nFrom-Path: ${CLIENT}\r\n-------wxyz9876$\r\n`;
    expect(parseAll([frame]).error?.code).toBe('bad-end-line');
  });

  it('reports well-framed messages with unusable headers as malformed and keeps going', () => {
    const bad = (tid: string, headers: string) => `MSRP ${tid} SEND\r\n${headers}-------${tid}$\r\n`;
    const { items, error } = parseAll([
      bad('aaaa0001', `To-Path: ${SERVICE}\r\nFrom-Path: ${CLIENT}\r\nByte-Range: 0-5/5\r\n`),
      bad('aaaa0002', `From-Path: ${CLIENT}\r\n`),
      bad('aaaa0003', `To-Path: http://x/;tcp\r\nFrom-Path: ${CLIENT}\r\n`),
      bad('aaaa0004', `To-Path: ${SERVICE}\r\nFrom-Path: ${CLIENT}\r\nno colon here\r\n`),
      bad('aaaa0005', `To-Path: ${SERVICE}\r\nFrom-Path: ${CLIENT}\r\nSuccess-Report: maybe\r\n`),
      `MSRP aaaa0006 SEND\r\nTo-Path: ${SERVICE}\r\nFrom-Path: ${CLIENT}\r\n\r\nbody\r\n-------aaaa0006$\r\n`,
      BODILESS_SEND,
    ]);
    expect(error).toBeUndefined();
    const malformed = items.filter((i): i is MsrpMalformed => i.kind === 'malformed');
    expect(malformed.map((m) => m.transactionId)).toEqual([
      'aaaa0001',
      'aaaa0002',
      'aaaa0003',
      'aaaa0004',
      'aaaa0005',
      'aaaa0006',
    ]);
    expect(malformed[0]).toMatchObject({ isRequest: true, method: 'SEND', toPath: [SERVICE], fromPath: [CLIENT] });
    expect(malformed[5]!.reason).toMatch(/Content-Type/);
    expect(items[items.length - 1]).toMatchObject({ kind: 'request', transactionId: 'a786hjs2' });
  });

  it('never throws on arbitrary bytes in arbitrary pieces', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }), fc.boolean(), (pieces, prefix) => {
        const parser = new MsrpParser({ maxHeaderBytes: 512, maxChunkBytes: 512 });
        if (prefix) parser.push(Buffer.from('MSRP abcd1234 SEND\r\n'));
        for (const piece of pieces) {
          const result = parser.push(piece);
          expect(Array.isArray(result.items)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('parses serialized messages identically however the stream is cut', () => {
    const stream = Buffer.from(EXAMPLE_SEND + BODILESS_SEND + OK_RESPONSE);
    const whole = parseAll([stream]).items;
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 12 }), (cuts) => {
        const points = [0, ...cuts.sort((a, b) => a - b), stream.length];
        const pieces = points.slice(1).map((end, i) => stream.subarray(points[i], end));
        expect(parseAll(pieces).items).toEqual(whole);
      }),
      { numRuns: 200 },
    );
  });
});

describe('serializeRequest / serializeResponse', () => {
  it('round-trips a chunk with Byte-Range, extra headers and continuation flag', () => {
    const body = Buffer.from('héllo');
    const frame = serializeRequest({
      transactionId: 'tx123456',
      method: 'SEND',
      toPath: [CLIENT],
      fromPath: [SERVICE],
      messageId: 'msg98765',
      byteRange: { start: 1, end: body.length, total: 20 },
      headers: [{ name: 'Content-Disposition', value: 'inline' }],
      contentType: 'message/cpim',
      body,
      continuation: '+',
    });
    const text = frame.toString();
    expect(text.startsWith('MSRP tx123456 SEND\r\nTo-Path: ')).toBe(true);
    // RFC 4975 §9: Content-Type is the last header, right before the blank line.
    expect(text).toContain('Content-Disposition: inline\r\nContent-Type: message/cpim\r\n\r\n');
    expect(text.endsWith('\r\n-------tx123456+\r\n')).toBe(true);
    const parsed = parseAll([frame]).items[0] as MsrpRequest;
    expect(parsed).toMatchObject({
      messageId: 'msg98765',
      byteRange: { start: 1, end: 6, total: 20 },
      continuation: '+',
    });
    expect(parsed.body?.equals(body)).toBe(true);
  });

  it('writes a response addressed one hop back (RFC 4975 §7.2)', () => {
    const request = parseAll([BODILESS_SEND]).items[0] as MsrpRequest;
    const frame = serializeResponse(responseTo(request, 200));
    expect(frame.toString()).toBe(OK_RESPONSE);
    expect(serializeResponse(responseTo(request, 481)).toString()).toContain(
      'MSRP a786hjs2 481 Session Does Not Exist\r\n',
    );
  });

  it('refuses a body that contains its own end-line, and allows near misses', () => {
    const spec = {
      transactionId: 'tx123456',
      method: 'SEND',
      toPath: [CLIENT],
      fromPath: [SERVICE],
      contentType: 'text/plain',
    };
    expect(() => serializeRequest({ ...spec, body: Buffer.from('a\r\n-------tx123456$\r\nb') })).toThrow(TypeError);
    expect(() => serializeRequest({ ...spec, body: Buffer.from('a\r\n-------tx123456#') })).toThrow(TypeError);
    expect(containsEndLine(Buffer.from('a\r\n-------tx123456x\r\n'), 'tx123456')).toBe(false);
    expect(containsEndLine(Buffer.from('a-------tx123456$\r\n'), 'tx123456')).toBe(false);
    expect(() => serializeRequest({ ...spec, body: Buffer.from('a\r\n-------tx1234567$\r\n') })).not.toThrow();
  });
});

describe('parseByteRange', () => {
  it('reads numbers and stars, and refuses impossible ranges', () => {
    expect(parseByteRange('1-65536/204800')).toEqual({ start: 1, end: 65536, total: 204800 });
    expect(parseByteRange('65537-*/*')).toEqual({ start: 65537, end: '*', total: '*' });
    expect(parseByteRange('1-0/0')).toEqual({ start: 1, end: 0, total: 0 });
    expect(parseByteRange('0-5/5')).toBeUndefined();
    expect(parseByteRange('5-3/10')).toBeUndefined();
    expect(parseByteRange('1-11/10')).toBeUndefined();
    expect(parseByteRange('1-a/10')).toBeUndefined();
  });
});
