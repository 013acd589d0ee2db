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
  private buffer: Buffer = Buffer.alloc(0);
  private failed = false;

  constructor(private readonly maxBytes: number) {}

  /** Feed bytes as they arrive; returns what they completed. After an error, nothing more. */
  push(chunk: Buffer): FramerEvent[] {
    if (this.failed) return [];
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const events: FramerEvent[] = [];
    for (;;) {
      const crlf = this.takeLeadingCrlf();
      if (crlf === 'ping') {
        events.push({ kind: 'ping' });
        continue;
      }
      if (crlf === 'wait' || this.buffer.length === 0) break;
      const framed = frameStream(this.buffer, this.maxBytes);
      if (framed.kind === 'message') {
        events.push({ kind: 'message', bytes: Buffer.from(framed.bytes) });
        this.buffer = Buffer.from(framed.rest);
        continue;
      }
      if (framed.kind === 'keepalive') {
        // Line ends this loop leaves alone (bare LFs): the message layer says whether they held a ping.
        if (framed.ping) events.push({ kind: 'ping' });
        const progressed = framed.rest.length < this.buffer.length;
        this.buffer = Buffer.from(framed.rest);
        if (!progressed) break;
        continue;
      }
      if (framed.kind === 'need-more') {
        if (this.buffer.length > this.maxBytes) events.push(this.fail('Message Too Large', true));
        break;
      }
      events.push(this.fail(framed.reason, this.exceedsLimit()));
      break;
    }
    return events;
  }

  /** Bytes held for an incomplete message. */
  get pending(): number {
    return this.buffer.length;
  }

  /**
   * RFC 5626 §3.5.1: a ping is CRLF CRLF; a lone CRLF is a pong (or, RFC 3261 §7.5, noise before
   * a start line) and is ignored. A CRLF that may be the first half of a ping waits for more.
   */
  private takeLeadingCrlf(): 'ping' | 'wait' | 'none' {
    while (this.buffer.length >= 2 && this.buffer.readUInt16BE(0) === CRLF) {
      if (this.buffer.length >= 4 && this.buffer.readUInt16BE(2) === CRLF) {
        this.buffer = this.buffer.subarray(4);
        return 'ping';
      }
      if (this.buffer.length === 2 || (this.buffer.length === 3 && this.buffer[2] === 0x0d)) return 'wait';
      this.buffer = this.buffer.subarray(2);
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
    this.buffer = Buffer.alloc(0);
    return { kind: 'error', reason, oversize, head: Buffer.from(head) };
  }
}
