/**
 * The operator's live ladder: the last SIP and MSRP messages the edge saw, grouped by Call-ID,
 * kept in a bounded ring in memory. Only first lines and a few header values are kept, never a
 * body: a message's payload is the user's, not the operator's.
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

export class FlowTrace {
  /** A ring: once full, `next` is the oldest entry and the slot the next one overwrites. */
  private readonly ring: TraceEntry[] = [];
  private next = 0;

  constructor(readonly capacity = 2000) {}

  sip(msg: SipMessage, dir: 'in' | 'out', peer: string): void {
    const callId = getHeader(msg, 'Call-ID');
    if (!callId) return;
    const cseq = getHeader(msg, 'CSeq');
    this.add({
      t: Date.now(),
      callId: clip(callId),
      proto: 'SIP',
      dir,
      peer: clip(peer),
      label: clip(msg.kind === 'request' ? msg.method : `${msg.status} ${msg.reason}`),
      ...(cseq ? { seq: clip(cseq) } : {}),
    });
  }

  msrp(callId: string, dir: 'in' | 'out', peer: string, label: string, seq?: string): void {
    this.add({
      t: Date.now(),
      callId: clip(callId),
      proto: 'MSRP',
      dir,
      peer: clip(peer),
      label: clip(label),
      ...(seq ? { seq: clip(seq) } : {}),
    });
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
    return this.ring.length < this.capacity
      ? this.ring
      : [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
  }

  private add(entry: TraceEntry): void {
    // Overwrite in place: shifting a full array moved every entry on each message.
    if (this.capacity <= 0) return;
    if (this.ring.length < this.capacity) this.ring.push(entry);
    else {
      this.ring[this.next] = entry;
      this.next = (this.next + 1) % this.capacity;
    }
  }
}
