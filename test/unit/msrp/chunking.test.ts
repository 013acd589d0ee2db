import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MessageReassembler, splitIntoChunks } from '#shared/msrp/chunking.ts';
import { MsrpParser, newTransactionId, serializeRequest, type MsrpRequest } from '#shared/msrp/framing.ts';

const TO = ['msrp://127.0.0.1:9/client1;tcp'];
const FROM = ['msrp://127.0.0.1:2855/sess1;tcp'];

/** What a receiver sees: each chunk serialized as a SEND and parsed back. */
function overTheWire(body: Uint8Array, chunkBytes: number, messageId = 'msg00001'): MsrpRequest[] {
  const parser = new MsrpParser();
  return splitIntoChunks(body, chunkBytes).map((chunk) => {
    const transactionId = newTransactionId(chunk.data);
    const frame = serializeRequest({
      transactionId,
      method: 'SEND',
      toPath: TO,
      fromPath: FROM,
      messageId,
      byteRange: chunk.byteRange,
      contentType: 'message/cpim',
      body: chunk.data,
      continuation: chunk.last ? '$' : '+',
    });
    const { items, error } = parser.push(frame);
    expect(error).toBeUndefined();
    return items[0] as MsrpRequest;
  });
}

describe('splitIntoChunks', () => {
  it('splits 200 KiB into 64 KiB chunks with RFC 4975 §7.1.1 Byte-Range values', () => {
    const body = randomBytes(200 * 1024);
    const chunks = splitIntoChunks(body, 64 * 1024);
    expect(chunks.map((c) => c.byteRange)).toEqual([
      { start: 1, end: 65536, total: 204800 },
      { start: 65537, end: 131072, total: 204800 },
      { start: 131073, end: 196608, total: 204800 },
      { start: 196609, end: 204800, total: 204800 },
    ]);
    expect(chunks.map((c) => c.last)).toEqual([false, false, false, true]);
    expect(Buffer.concat(chunks.map((c) => c.data)).equals(body)).toBe(true);
  });

  it('sends a small body as one chunk and an empty body as one empty chunk', () => {
    expect(splitIntoChunks(Buffer.from('hi'), 65536).map((c) => c.byteRange)).toEqual([{ start: 1, end: 2, total: 2 }]);
    expect(splitIntoChunks(new Uint8Array(0), 65536)).toEqual([
      { byteRange: { start: 1, end: 0, total: 0 }, data: new Uint8Array(0), last: true },
    ]);
  });
});

describe('MessageReassembler', () => {
  it('round-trips a 200 KiB body sent in 64 KiB chunks', () => {
    const body = randomBytes(200 * 1024);
    const wire = overTheWire(body, 64 * 1024);
    expect(wire.map((r) => r.headers.find((h) => h.name === 'Byte-Range')?.value)).toEqual([
      '1-65536/204800',
      '65537-131072/204800',
      '131073-196608/204800',
      '196609-204800/204800',
    ]);
    const reassembler = new MessageReassembler();
    const results = wire.map((chunk) => reassembler.add(chunk));
    expect(results.slice(0, 3).map((r) => r.state)).toEqual(['partial', 'partial', 'partial']);
    const last = results[3]!;
    expect(last.state).toBe('complete');
    if (last.state !== 'complete') return;
    expect(last.messageId).toBe('msg00001');
    expect(last.contentType).toBe('message/cpim');
    expect(last.body.equals(body)).toBe(true);
    expect(reassembler.inProgress).toBe(0);
  });

  it('reassembles chunks that arrive out of order, and keeps messages apart by Message-ID', () => {
    const a = randomBytes(10_000);
    const b = randomBytes(7_000);
    const wireA = overTheWire(a, 3000, 'msgAAAAA');
    const wireB = overTheWire(b, 3000, 'msgBBBBB');
    const reassembler = new MessageReassembler();
    const order = [wireA[3]!, wireB[0]!, wireA[0]!, wireB[2]!, wireA[2]!, wireB[1]!, wireA[1]!];
    const done = order.map((c) => reassembler.add(c)).filter((r) => r.state === 'complete');
    expect(done.map((r) => r.state === 'complete' && r.messageId)).toEqual(['msgBBBBB', 'msgAAAAA']);
    expect(done[0]!.state === 'complete' && done[0]!.body.equals(b)).toBe(true);
    expect(done[1]!.state === 'complete' && done[1]!.body.equals(a)).toBe(true);
  });

  it('drops a message whose sender aborted it with #', () => {
    const [first] = overTheWire(randomBytes(5000), 2000);
    const reassembler = new MessageReassembler();
    expect(reassembler.add(first!).state).toBe('partial');
    expect(reassembler.add({ ...first!, body: Buffer.alloc(0), continuation: '#' })).toEqual({
      state: 'aborted',
      messageId: 'msg00001',
    });
    expect(reassembler.inProgress).toBe(0);
  });

  it('refuses with 413 a message over the size limit, and with 400 a chunk without Message-ID', () => {
    const [first] = overTheWire(randomBytes(5000), 2000);
    expect(new MessageReassembler({ maxMessageBytes: 4000 }).add(first!)).toMatchObject({
      state: 'rejected',
      status: 413,
    });
    expect(new MessageReassembler().add({ ...first!, messageId: undefined })).toMatchObject({
      state: 'rejected',
      status: 400,
    });
  });

  it('completes a message sent with unknown totals (Byte-Range n-*/*)', () => {
    const reassembler = new MessageReassembler();
    const part = (start: number, text: string, continuation: '+' | '$') =>
      reassembler.add({
        messageId: 'stream01',
        byteRange: { start, end: '*', total: '*' },
        contentType: 'text/plain',
        body: Buffer.from(text),
        continuation,
      });
    expect(part(1, 'hello ', '+').state).toBe('partial');
    const done = part(7, 'world', '$');
    expect(done.state === 'complete' && done.body.toString()).toBe('hello world');
  });
});
