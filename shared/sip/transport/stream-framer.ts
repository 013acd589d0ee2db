/**
 * Cutting a byte stream (TCP, TLS) into SIP messages (RFC 3261 §18.3: Content-Length framing),
 * with the CRLF keep-alives of RFC 5626 §3.5.1 between messages. The octet-level work is the
 * message layer's `frameStream`; this keeps the per-connection buffer and the limits.
 */
import { frameStream } from '../messages/index.ts';

export type FramerEvent =
  | { kind: 'message'; bytes: Buffer }
  /** A double-CRLF keep-alive ping: RFC 5626 §3.5.1 wants a single CRLF back. */
  | { kind: 'ping' }
  /**
   * The stream cannot be framed any further. `head` holds what could be read of the offending
   * message's header (for an error response); `oversize` tells 513 from 400.
   */
  | { kind: 'error'; reason: string; oversize: boolean; head: Buffer };

const CRLF = 0x0d0a;
const HEADER_END = Buffer.from('\r\n\r\n');

export class StreamFramer {
  /** Received bytes live in storage[start, end): appending copies only the new bytes. */
  private storage: Buffer = Buffer.alloc(0);
  private start = 0;
  private end = 0;
  /** Leading bytes of the buffer already searched for the end of a header block (none found). */
  private headScanned = 0;
  /** Length the buffer must reach before framing is worth trying again (a known message size). */
  private awaiting = 0;
  private failed = false;

  constructor(private readonly maxBytes: number) {}

  private get buffer(): Buffer {
    return this.storage.subarray(this.start, this.end);
  }

  private consume(n: number): void {
    this.start += n;
    if (this.start >= this.end) {
      this.start = this.end = 0;
      // An idle connection does not keep the memory of its largest message.
      if (this.storage.length > 16_384) this.storage = Buffer.alloc(0);
    }
    this.headScanned = 0;
    this.awaiting = 0;
  }

  private append(chunk: Buffer): void {
    const held = this.end - this.start;
    if (this.end + chunk.length > this.storage.length) {
      const need = held + chunk.length;
      // Sliding only when at most half full keeps every byte's copies amortised O(1).
      const next =
        need <= this.storage.length / 2
          ? this.storage
          : Buffer.allocUnsafe(Math.max(need, 2 * this.storage.length, 4096));
      this.storage.copy(next, 0, this.start, this.end);
      this.storage = next;
      this.start = 0;
      this.end = held;
    }
    chunk.copy(this.storage, this.end);
    this.end += chunk.length;
  }

  /**
   * Feed bytes as they arrive; returns what they completed. After an error, nothing more.
   * Linear in the bytes fed however they are cut: the header end is searched only in new bytes
   * and a message of known size is not re-framed before it can be complete.
   */
  push(chunk: Buffer): FramerEvent[] {
    if (this.failed) return [];
    this.append(chunk);
    const events: FramerEvent[] = [];
    for (;;) {
      const crlf = this.takeLeadingCrlf();
      if (crlf === 'ping') {
        events.push({ kind: 'ping' });
        continue;
      }
      const buffer = this.buffer;
      if (crlf === 'wait' || buffer.length === 0) break;
      if (buffer.length < this.awaiting) break;
      if (buffer[0] !== 0x0d && buffer[0] !== 0x0a) {
        const headEnd = buffer.indexOf(HEADER_END, Math.max(0, this.headScanned - 3));
        if (headEnd < 0) {
          this.headScanned = buffer.length;
          if (buffer.length > this.maxBytes) events.push(this.fail('Message Too Large', true));
          break;
        }
      }
      const framed = frameStream(buffer, this.maxBytes);
      if (framed.kind === 'message') {
        events.push({ kind: 'message', bytes: Buffer.from(framed.bytes) });
        this.consume(framed.bytes.length);
        continue;
      }
      if (framed.kind === 'keepalive') {
        // Line ends this loop leaves alone (bare LFs): the message layer says whether they held a ping.
        if (framed.ping) events.push({ kind: 'ping' });
        const progressed = buffer.length - framed.rest.length;
        if (progressed === 0) break;
        this.consume(progressed);
        continue;
      }
      if (framed.kind === 'need-more') {
        if (buffer.length > this.maxBytes) events.push(this.fail('Message Too Large', true));
        else this.awaiting = framed.total ?? 0;
        break;
      }
      events.push(this.fail(framed.reason, this.exceedsLimit()));
      break;
    }
    return events;
  }

  /** Bytes held for an incomplete message. */
  get pending(): number {
    return this.end - this.start;
  }

  /**
   * RFC 5626 §3.5.1: a ping is CRLF CRLF; a lone CRLF is a pong (or, RFC 3261 §7.5, noise before
   * a start line) and is ignored. A CRLF that may be the first half of a ping waits for more.
   */
  private takeLeadingCrlf(): 'ping' | 'wait' | 'none' {
    while (this.buffer.length >= 2 && this.buffer.readUInt16BE(0) === CRLF) {
      if (this.buffer.length >= 4 && this.buffer.readUInt16BE(2) === CRLF) {
        this.consume(4);
        return 'ping';
      }
      if (this.buffer.length === 2 || (this.buffer.length === 3 && this.buffer[2] === 0x0d)) return 'wait';
      this.consume(2);
    }
    if (this.buffer.length === 1 && this.buffer[0] === 0x0d) return 'wait';
    return 'none';
  }

  /** Whether the message at the head of the buffer is larger than allowed (header + Content-Length). */
  private exceedsLimit(): boolean {
    const end = this.buffer.indexOf(HEADER_END);
    if (end < 0) return this.buffer.length > this.maxBytes;
    const head = this.buffer.subarray(0, end).toString('latin1');
    const match = /(?:^|\r\n)(?:content-length|l)[ \t]*:[ \t]*(\d+)/i.exec(head);
    const bodyLength = match ? Number(match[1]) : 0;
    return end + 4 + bodyLength > this.maxBytes;
  }

  private fail(reason: string, oversize: boolean): FramerEvent {
    this.failed = true;
    const end = this.buffer.indexOf(HEADER_END);
    const head = end >= 0 ? this.buffer.subarray(0, end + 4) : this.buffer.subarray(0, this.maxBytes);
    const copy = Buffer.from(head);
    this.storage = Buffer.alloc(0);
    this.start = this.end = 0;
    return { kind: 'error', reason, oversize, head: copy };
  }
}
