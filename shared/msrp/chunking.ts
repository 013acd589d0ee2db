/**
 * MSRP chunking (RFC 4975 §5.1, §7.1.1): split a message body into SEND chunks with Byte-Range
 * values, and put received chunks back together on the receiving side.
 */
import type { ByteRange, MsrpRequest } from './framing.ts';

const EMPTY = Buffer.alloc(0);
const WHOLE: ByteRange = { start: 1, end: '*', total: '*' };
const DEFAULT_TYPE = 'application/octet-stream';

/** The service's default chunk size: bodies above it are sent in several SENDs. */
export const DEFAULT_CHUNK_BYTES = 64 * 1024;

export interface BodyChunk {
  /** `start-end/total`, 1-based and inclusive (RFC 4975 §7.1.1). */
  byteRange: { start: number; end: number; total: number };
  /** The body itself or a view into it, no copy. */
  data: Uint8Array;
  /** The last chunk carries the `$` continuation flag, the others `+` (RFC 4975 §7.1). */
  last: boolean;
}

/**
 * Split `body` into chunks of at most `chunkBytes`. An empty body is one empty chunk
 * (`1-0/0`), so every message has exactly one final `$` chunk.
 */
export function splitIntoChunks(body: Uint8Array, chunkBytes: number = DEFAULT_CHUNK_BYTES): BodyChunk[] {
  const size = Math.max(1, Math.floor(chunkBytes));
  const total = body.byteLength;
  if (total === 0) return [{ byteRange: { start: 1, end: 0, total: 0 }, data: body, last: true }];
  // The usual case: one chunk, the body itself.
  if (total <= size) return [{ byteRange: { start: 1, end: total, total }, data: body, last: true }];
  const chunks: BodyChunk[] = [];
  for (let offset = 0; offset < total; offset += size) {
    const endExclusive = Math.min(offset + size, total);
    chunks.push({
      byteRange: { start: offset + 1, end: endExclusive, total },
      data: body.subarray(offset, endExclusive),
      last: endExclusive === total,
    });
  }
  return chunks;
}

export type ReassemblyResult =
  | { state: 'partial'; messageId: string }
  | { state: 'complete'; messageId: string; contentType: string; body: Buffer }
  /** The sender gave up on the message: `#` flag (RFC 4975 §7.1). */
  | { state: 'aborted'; messageId: string }
  /** The chunk cannot be used; `status` is what to answer (RFC 4975 §7.3, §10). */
  | { state: 'rejected'; status: 400 | 413; reason: string };

interface PendingMessage {
  contentType?: string;
  /** Known from a numeric total or from the end of the `$` chunk. */
  size?: number;
  data: Buffer;
  /** Received byte intervals [from, to), merged and sorted. */
  covered: Array<[number, number]>;
  finalSeen: boolean;
}

export interface ReassemblerOptions {
  /** Largest message accepted; beyond it chunks are refused with 413. Default 16 MiB. */
  maxMessageBytes?: number;
}

/**
 * Collects SEND chunks per Message-ID (RFC 4975 §7.3.1) and yields the whole body once every
 * byte up to the end of the final chunk has arrived. Chunks may come in any order or overlap.
 */
export class MessageReassembler {
  private readonly pending = new Map<string, PendingMessage>();
  private readonly maxMessageBytes: number;

  constructor(options: ReassemblerOptions = {}) {
    this.maxMessageBytes = options.maxMessageBytes ?? 16 * 1024 * 1024;
  }

  /** Messages started but not finished. */
  get inProgress(): number {
    return this.pending.size;
  }

  add(chunk: Pick<MsrpRequest, 'messageId' | 'byteRange' | 'contentType' | 'body' | 'continuation'>): ReassemblyResult {
    const messageId = chunk.messageId;
    if (messageId === undefined) return { state: 'rejected', status: 400, reason: 'SEND without Message-ID' };
    if (chunk.continuation === '#') {
      this.pending.delete(messageId);
      return { state: 'aborted', messageId };
    }
    const body = chunk.body ?? EMPTY;
    // RFC 4975 §7.1.1: without Byte-Range the chunk is the whole message (1-*/*).
    const range: ByteRange = chunk.byteRange ?? WHOLE;
    const from = range.start - 1;
    const to = from + body.length;

    let message = this.pending.get(messageId);
    if (
      message === undefined &&
      from === 0 &&
      chunk.continuation === '$' &&
      (range.total === '*' || range.total === to) &&
      to <= this.maxMessageBytes
    ) {
      // The whole message in one chunk (the usual case, RFC 4975 §5.1): its body as it came.
      return { state: 'complete', messageId, contentType: chunk.contentType ?? DEFAULT_TYPE, body };
    }
    if (!message) {
      message = { data: Buffer.alloc(0), covered: [], finalSeen: false };
      this.pending.set(messageId, message);
    }
    if (chunk.contentType !== undefined) message.contentType ??= chunk.contentType;
    if (range.total !== '*') {
      if (message.size !== undefined && message.size !== range.total) {
        this.pending.delete(messageId);
        return { state: 'rejected', status: 400, reason: 'Byte-Range total changed within a message' };
      }
      message.size = range.total;
    }
    if (chunk.continuation === '$') {
      message.finalSeen = true;
      message.size ??= to;
    }
    const limit = message.size ?? to;
    if (limit > this.maxMessageBytes || to > this.maxMessageBytes) {
      this.pending.delete(messageId);
      // RFC 4975 §10.5: 413 tells the sender to stop sending this message.
      return { state: 'rejected', status: 413, reason: `message over ${this.maxMessageBytes} bytes` };
    }
    if (message.size !== undefined && to > message.size) {
      this.pending.delete(messageId);
      return { state: 'rejected', status: 400, reason: 'chunk beyond the Byte-Range total' };
    }

    const needed = Math.max(to, message.size ?? 0);
    if (message.data.length < needed) {
      const grown = Buffer.alloc(message.size !== undefined ? message.size : Math.max(needed, message.data.length * 2));
      message.data.copy(grown);
      message.data = grown;
    }
    message.data.set(body, from);
    if (to > from) message.covered = mergeInterval(message.covered, [from, to]);

    const size = message.size;
    if (message.finalSeen && size !== undefined && isCovered(message.covered, size)) {
      this.pending.delete(messageId);
      return {
        state: 'complete',
        messageId,
        contentType: message.contentType ?? DEFAULT_TYPE,
        body: message.data.subarray(0, size),
      };
    }
    return { state: 'partial', messageId };
  }

  /** Forget a message (e.g. after answering one of its chunks with an error). */
  discard(messageId: string): void {
    this.pending.delete(messageId);
  }
}

function mergeInterval(list: Array<[number, number]>, next: [number, number]): Array<[number, number]> {
  const all = [...list, next].sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const [a, b] of all) {
    const last = merged[merged.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else merged.push([a, b]);
  }
  return merged;
}

function isCovered(list: Array<[number, number]>, size: number): boolean {
  if (size === 0) return true;
  return list.length === 1 && list[0]![0] === 0 && list[0]![1] >= size;
}
