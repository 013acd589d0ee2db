/**
 * The operator's live ladder: the last SIP and MSRP messages the edge saw, grouped by Call-ID,
 * kept in a bounded ring in memory. Only first lines and a few header values are kept, never a
 * body: a message's payload is the user's, not the operator's.
 *
 * The ring is bytes, not objects: every message passes through it and stays about a second under
 * load (2,000 messages), long enough to outlive V8's scavenges and be promoted, and an entry held
 * the message's text (a header value is a slice of it). That was half of what V8's young
 * generation grew with, and of the old space, at 500 SUBSCRIBE flows a second; entries are read
 * back only when the console asks.
 */
import { getHeader, type SipMessage } from '#shared/sip/messages/index.ts';

export interface TraceEntry {
  /** Epoch milliseconds. */
  t: number;
  callId: string;
  proto: 'SIP' | 'MSRP';
  /** `in`: from the peer to the edge; `out`: from the edge to the peer. */
  dir: 'in' | 'out';
  /** The peer's transport address (`udp 127.0.0.1:5070`). */
  peer: string;
  /** Request method or status with reason (`INVITE`, `200 OK`, `SEND`). */
  label: string;
  /** The CSeq (SIP) or transaction id (MSRP) the message belongs to. */
  seq?: string;
}

/** Longest text kept from any field: a hostile header cannot fill the ring. */
const MAX_FIELD = 120;
const clip = (s: string): string => (s.length > MAX_FIELD ? `${s.slice(0, MAX_FIELD)}…` : s);
/** Ring bytes per entry of `capacity`: a SIP message's entry is about 100. */
const BYTES_PER_ENTRY = 160;

export class FlowTrace {
  /** Entries as records (see `add`), written round: once at the end, the next starts at 0. */
  private readonly bytes: Buffer;
  /** Where each of the last `capacity` entries starts, as a count of bytes written since the start. */
  private readonly starts: Float64Array;
  /** Entries written so far (the next goes in slot `added % capacity`). */
  private added = 0;
  /** Bytes written so far, counting those skipped at the end of the ring when it turned round. */
  private written = 0;

  constructor(readonly capacity = 2000) {
    this.starts = new Float64Array(Math.max(0, capacity));
    // Room for `capacity` entries of a typical size; larger ones leave fewer in the ring.
    this.bytes = Buffer.alloc(Math.max(0, capacity) * BYTES_PER_ENTRY);
  }

  sip(msg: SipMessage, dir: 'in' | 'out', peer: string): void {
    const callId = getHeader(msg, 'Call-ID');
    if (!callId) return;
    const label = msg.kind === 'request' ? msg.method : `${msg.status} ${msg.reason}`;
    this.add(Date.now(), callId, 'SIP', dir, peer, label, getHeader(msg, 'CSeq'));
  }

  msrp(callId: string, dir: 'in' | 'out', peer: string, label: string, seq?: string): void {
    this.add(Date.now(), callId, 'MSRP', dir, peer, label, seq);
  }

  /** Call-IDs seen, most recent first, with their first and last time and message count. */
  calls(limit = 50): { callId: string; first: number; last: number; messages: number; first_label: string }[] {
    const byId = new Map<
      string,
      { callId: string; first: number; last: number; messages: number; first_label: string }
    >();
    for (const e of this.entries()) {
      const c = byId.get(e.callId);
      if (c) {
        c.last = e.t;
        c.messages++;
      } else byId.set(e.callId, { callId: e.callId, first: e.t, last: e.t, messages: 1, first_label: e.label });
    }
    return [...byId.values()].sort((a, b) => b.last - a.last).slice(0, limit);
  }

  /** The messages of one Call-ID, in order. */
  flow(callId: string): TraceEntry[] {
    return this.entries().filter((e) => e.callId === callId);
  }

  /** Every entry kept, oldest first. */
  private entries(): TraceEntry[] {
    const out: TraceEntry[] = [];
    const size = this.bytes.length;
    for (let n = Math.max(0, this.added - this.capacity); n < this.added; n++) {
      const start = this.starts[n % this.capacity]!;
      // Overwritten since: the ring has turned round past it.
      if (start + size < this.written) continue;
      out.push(this.read(start % size));
    }
    return out;
  }

  /**
   * A record: f64 time, u8 flags (1 MSRP, 2 out, 4 with seq), then callId, peer, label and seq,
   * each u16 byte length + UTF-8, each clipped to MAX_FIELD characters.
   */
  private add(
    t: number,
    callId: string,
    proto: 'SIP' | 'MSRP',
    dir: 'in' | 'out',
    peer: string,
    label: string,
    seq: string | undefined,
  ): void {
    if (this.capacity <= 0) return;
    // Every message in and out passes here: four strings, no array of them.
    const c = clip(callId);
    const p = clip(peer);
    const l = clip(label);
    const q = seq === undefined ? '' : clip(seq);
    // At most 3 bytes of UTF-8 per UTF-16 unit: enough room, without measuring first.
    const bound = 17 + 3 * (c.length + p.length + l.length + q.length);
    const size = this.bytes.length;
    if (bound > size) return;
    let at = this.written % size;
    if (at + bound > size) {
      this.written += size - at;
      at = 0;
    }
    const start = this.written;
    let o = this.bytes.writeDoubleLE(t, at);
    o = this.bytes.writeUInt8((proto === 'MSRP' ? 1 : 0) | (dir === 'out' ? 2 : 0) | (seq ? 4 : 0), o);
    o = this.writeField(c, o);
    o = this.writeField(p, o);
    o = this.writeField(l, o);
    o = this.writeField(q, o);
    this.written = start + (o - at);
    this.starts[this.added % this.capacity] = start;
    this.added++;
  }

  /** A field at `o`: u16 byte length + UTF-8; returns the offset after it. */
  private writeField(text: string, o: number): number {
    const n = text.length === 0 ? 0 : this.bytes.write(text, o + 2, 'utf8');
    this.bytes.writeUInt16LE(n, o);
    return o + 2 + n;
  }

  private read(at: number): TraceEntry {
    const t = this.bytes.readDoubleLE(at);
    const flags = this.bytes.readUInt8(at + 8);
    let o = at + 9;
    const [callId, peer, label, seq] = [0, 1, 2, 3].map(() => {
      const n = this.bytes.readUInt16LE(o);
      const text = this.bytes.toString('utf8', o + 2, o + 2 + n);
      o += 2 + n;
      return text;
    }) as [string, string, string, string];
    return {
      t,
      callId,
      proto: flags & 1 ? 'MSRP' : 'SIP',
      dir: flags & 2 ? 'out' : 'in',
      peer,
      label,
      ...(flags & 4 ? { seq } : {}),
    };
  }
}
