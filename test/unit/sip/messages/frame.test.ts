import { describe, expect, it } from 'vitest';
import { frameStream, parseMessage } from '#shared/sip/messages/index.ts';
import type { FrameResult } from '#shared/sip/messages/index.ts';

function message(cseq: number, body: string, lengthHeader = 'Content-Length'): Buffer {
  return Buffer.from(
    [
      'MESSAGE sip:alice@example.com SIP/2.0',
      `Via: SIP/2.0/TCP 192.0.2.10:50211;branch=z9hG4bK${cseq}`,
      'From: <sip:bob@example.net>;tag=1',
      'To: <sip:alice@example.com>',
      'Call-ID: frame-test',
      `CSeq: ${cseq} MESSAGE`,
      'Content-Type: text/plain',
      `${lengthHeader}: ${Buffer.byteLength(body)}`,
      '',
      body,
    ].join('\r\n'),
  );
}

/** Feed `chunks` the way a connection does and collect the messages framed. */
function feed(chunks: Buffer[], maxBytes = 65_535): { messages: Buffer[]; pings: number; last: FrameResult['kind'] } {
  let buffer: Buffer = Buffer.alloc(0);
  const messages: Buffer[] = [];
  let pings = 0;
  let last: FrameResult['kind'] = 'need-more';
  for (const chunk of chunks) {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      const r = frameStream(buffer, maxBytes);
      last = r.kind;
      if (r.kind === 'need-more' || r.kind === 'error') break;
      if (r.kind === 'keepalive' && r.ping) pings++;
      if (r.kind === 'message') messages.push(r.bytes);
      buffer = r.rest;
    }
  }
  return { messages, pings, last };
}

describe('frameStream (RFC 3261 §18.3)', () => {
  it('cuts two messages out of one buffer', () => {
    const a = message(1, 'first body');
    const b = message(2, 'second, longer body');
    const r = frameStream(Buffer.concat([a, b]), 65_535);
    expect(r.kind).toBe('message');
    if (r.kind !== 'message') return;
    expect(r.bytes.equals(a)).toBe(true);
    expect(r.rest.equals(b)).toBe(true);
    const second = frameStream(r.rest, 65_535);
    expect(second.kind === 'message' && second.bytes.equals(b) && second.rest.length === 0).toBe(true);
  });

  it('reassembles a message split in three, cut inside the header and inside the body', () => {
    const m = message(7, 'a body split across segments');
    const cuts = [40, m.indexOf('\r\n\r\n') + 10];
    const { messages, last } = feed([m.subarray(0, cuts[0]), m.subarray(cuts[0], cuts[1]), m.subarray(cuts[1])]);
    expect(messages).toHaveLength(1);
    expect(messages[0]!.equals(m)).toBe(true);
    expect(last).toBe('need-more');
    const parsed = parseMessage(messages[0]!);
    expect(parsed.ok && parsed.message.body.toString()).toBe('a body split across segments');
  });

  it('frames every message of a stream fed one octet at a time', () => {
    const stream = Buffer.concat([message(1, 'x'), Buffer.from('\r\n\r\n'), message(2, ''), message(3, 'hello', 'l')]);
    const chunks = Array.from(stream, (byte) => Buffer.from([byte]));
    const { messages, pings } = feed(chunks);
    expect(messages.map((m) => m.toString('latin1').match(/CSeq: (\d+)/)![1])).toEqual(['1', '2', '3']);
    expect(pings).toBe(1);
  });

  it('reads the compact l, any case, and whitespace before the colon', () => {
    const m = Buffer.from(message(1, 'abc').toString('latin1').replace('Content-Length: 3', 'CONTENT-LENGTH  : 3'));
    const r = frameStream(Buffer.concat([m, Buffer.from('tail')]), 65_535);
    expect(r.kind === 'message' && r.rest.toString()).toBe('tail');
  });

  it('treats leading CRLFs as keep-alives (RFC 5626 §3.5.1)', () => {
    const ping = frameStream(Buffer.from('\r\n\r\nINVITE'), 1000);
    expect(ping).toEqual({ kind: 'keepalive', rest: Buffer.from('INVITE'), ping: true });
    const pong = frameStream(Buffer.from('\r\nINVITE'), 1000);
    expect(pong).toEqual({ kind: 'keepalive', rest: Buffer.from('INVITE'), ping: false });
    expect(frameStream(Buffer.from('\r\n'), 1000).kind).toBe('need-more');
    expect(frameStream(Buffer.alloc(0), 1000).kind).toBe('need-more');
  });

  it('waits for a header or body that has not fully arrived', () => {
    const m = message(1, 'body');
    expect(frameStream(m.subarray(0, 30), 65_535).kind).toBe('need-more');
    expect(frameStream(m.subarray(0, m.length - 1), 65_535).kind).toBe('need-more');
  });

  it('fails a message without Content-Length, or with a bad one', () => {
    const noLength = Buffer.from('OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/TCP h.example.com\r\n\r\n');
    expect(frameStream(noLength, 65_535)).toEqual({ kind: 'error', reason: 'Missing Content-Length' });
    const bad = Buffer.from(message(1, 'x').toString('latin1').replace('Content-Length: 1', 'Content-Length: -1'));
    expect(frameStream(bad, 65_535)).toEqual({ kind: 'error', reason: 'Bad Content-Length' });
    const twice = Buffer.from(
      message(1, 'x').toString('latin1').replace('Content-Length: 1', 'Content-Length: 1\r\nl: 2'),
    );
    expect(frameStream(twice, 65_535)).toEqual({ kind: 'error', reason: 'Bad Content-Length' });
  });

  it('fails what exceeds maxBytes, before the whole of it has arrived', () => {
    const m = message(1, 'x'.repeat(500));
    expect(frameStream(m.subarray(0, 300), 400)).toEqual({ kind: 'error', reason: 'Message Too Large' });
    expect(frameStream(Buffer.alloc(500, 0x41), 400)).toEqual({ kind: 'error', reason: 'Message Too Large' });
    expect(frameStream(m, m.length).kind).toBe('message');
  });
});
