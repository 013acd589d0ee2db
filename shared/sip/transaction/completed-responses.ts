/**
 * Completed non-INVITE server transactions over UDP, waiting out Timer J (64*T1, RFC 3261
 * §17.2.2). All such a transaction still does is pass "the final response to the transport layer
 * for retransmission whenever a retransmission of the request is received": it needs its key, the
 * response's bytes as they left and where they went. Tens of thousands wait at once under load
 * (500 requests/s hold 16,000 for 32 s), so they are not objects: each is a record appended to
 * large Buffers in the order they expire, and V8's heap holds one Map entry per transaction (its
 * key to its record's position, a small integer). An object graph per transaction (transaction,
 * source, sent response, its text: about 800 bytes) lived through several scavenges and was
 * promoted: it was most of what V8's young generation grew with under load (V8 grows it when the
 * bytes surviving scavenges since its last growth pass its size) and what filled the old space
 * until a major GC. Here the bytes cost what they are, outside V8's heap, and are freed a Buffer
 * at a time once every record in it has expired.
 *
 * A record: u16 key length, the key (UTF-8), u8 address length, the address, u16 port, u16
 * status, u32 response length, the response's bytes.
 */
import type { SentResponse } from '../transport/index.ts';

/** A record starts at an offset below this in its chunk (the low bits of its position). */
const CHUNK_BYTES = 1 << 18;
/**
 * Chunks in use at most (positions stay small integers: below 2^30, which V8 keeps unboxed). A
 * record that finds no free slot (1 GiB of responses waiting) is not taken: `add` says so.
 */
const CHUNK_SLOTS = 1 << 12;

export interface CompletedResponsesOptions {
  /** Chunk size (tests); CHUNK_BYTES if unset, at most that. */
  chunkBytes?: number;
  /** Chunks held at most (tests); CHUNK_SLOTS if unset, at most that. */
  maxChunks?: number;
}

export class CompletedResponses {
  /** Key of each transaction waiting -> the position of its record (slot * CHUNK_BYTES + offset). */
  private readonly index = new Map<string, number>();
  /** Chunks by slot (a ring: the oldest at `headSlot`, records being appended at `tailSlot`). */
  private readonly chunks: (Buffer | undefined)[];
  private readonly chunkBytes: number;
  private headSlot = 0;
  private tailSlot = 0;
  /** Where the next record goes in the tail chunk. */
  private tailOffset = 0;
  /** Records added and not yet expired. */
  private live = 0;

  constructor(options: CompletedResponsesOptions = {}) {
    this.chunkBytes = Math.min(options.chunkBytes ?? CHUNK_BYTES, CHUNK_BYTES);
    this.chunks = new Array<Buffer | undefined>(Math.min(options.maxChunks ?? CHUNK_SLOTS, CHUNK_SLOTS));
  }

  /** Transactions waiting. */
  get size(): number {
    return this.index.size;
  }

  has(key: string): boolean {
    return this.index.has(key);
  }

  keys(): IterableIterator<string> {
    return this.index.keys();
  }

  /**
   * Keep `sent` (a UDP response) under `key`; the position to `expire` when Timer J fires, in the
   * order added. Undefined when it was not taken (no chunk free): the caller keeps it itself.
   */
  add(key: string, sent: SentResponse): number | undefined {
    const keyBytes = Buffer.byteLength(key, 'utf8');
    const addressBytes = Buffer.byteLength(sent.address, 'utf8');
    const length = 2 + keyBytes + 1 + addressBytes + 2 + 2 + 4 + sent.bytes.length;
    if (keyBytes > 0xffff || addressBytes > 0xff) return undefined;
    const at = this.reserve(length);
    if (at === undefined) return undefined;
    const chunk = this.chunks[this.tailSlot]!;
    let o = chunk.writeUInt16LE(keyBytes, at);
    o += chunk.write(key, o, 'utf8');
    o = chunk.writeUInt8(addressBytes, o);
    o += chunk.write(sent.address, o, 'utf8');
    o = chunk.writeUInt16LE(sent.port, o);
    o = chunk.writeUInt16LE(sent.status, o);
    o = chunk.writeUInt32LE(sent.bytes.length, o);
    o += sent.bytes.copy(chunk, o);
    this.tailOffset = o;
    const position = this.tailSlot * CHUNK_BYTES + at;
    this.index.set(key, position);
    this.live++;
    return position;
  }

  /**
   * The response kept under `key`, as it left (for `resendResponse`), or undefined. Its bytes are
   * a view of the record (a record is never written again; its chunk lives while it is referenced).
   */
  get(key: string): SentResponse | undefined {
    const position = this.index.get(key);
    if (position === undefined) return undefined;
    const chunk = this.chunks[Math.floor(position / CHUNK_BYTES)]!;
    let o = position % CHUNK_BYTES;
    o += 2 + chunk.readUInt16LE(o);
    const addressBytes = chunk.readUInt8(o);
    const address = chunk.toString('utf8', o + 1, o + 1 + addressBytes);
    o += 1 + addressBytes;
    const port = chunk.readUInt16LE(o);
    const status = chunk.readUInt16LE(o + 2);
    const length = chunk.readUInt32LE(o + 4);
    o += 8;
    return { status, bytes: chunk.subarray(o, o + length), transport: 'udp', address, port };
  }

  /** Forget the transaction under `key` before its Timer J (its record stays until then). */
  delete(key: string): void {
    this.index.delete(key);
  }

  /**
   * Timer J fired for the record at `position` (records expire in the order added): its
   * transaction is forgotten unless another took its key since, and chunks left behind are freed.
   */
  expire(position: number): void {
    const slot = Math.floor(position / CHUNK_BYTES);
    const chunk = this.chunks[slot];
    if (chunk === undefined) return;
    const o = position % CHUNK_BYTES;
    const key = chunk.toString('utf8', o + 2, o + 2 + chunk.readUInt16LE(o));
    if (this.index.get(key) === position) this.index.delete(key);
    this.live--;
    if (this.live === 0) {
      this.clear();
      return;
    }
    // Every chunk before this record's is behind the oldest record still waiting.
    while (this.headSlot !== slot) {
      this.chunks[this.headSlot] = undefined;
      this.headSlot = (this.headSlot + 1) % this.chunks.length;
    }
  }

  /** Forget everything. */
  clear(): void {
    this.index.clear();
    this.chunks.fill(undefined);
    this.headSlot = 0;
    this.tailSlot = 0;
    this.tailOffset = 0;
    this.live = 0;
  }

  /** Room for `length` bytes at the tail: its offset in the tail chunk, or undefined. */
  private reserve(length: number): number | undefined {
    const tail = this.chunks[this.tailSlot];
    if (tail !== undefined && this.tailOffset + length <= tail.length) return this.tailOffset;
    // A record larger than a chunk gets a chunk of its own size.
    const size = Math.max(this.chunkBytes, length);
    if (tail === undefined) {
      this.chunks[this.tailSlot] = Buffer.allocUnsafeSlow(size);
      this.headSlot = this.tailSlot;
      return (this.tailOffset = 0);
    }
    const next = (this.tailSlot + 1) % this.chunks.length;
    if (next === this.headSlot) return undefined;
    this.chunks[next] = Buffer.allocUnsafeSlow(size);
    this.tailSlot = next;
    return (this.tailOffset = 0);
  }
}
