/**
 * A SUBSCRIBE load generator for the overload test and the hardening bench: each flow is
 * SUBSCRIBE → final response (→ NOTIFY → 200 when accepted), as a client of RFC 3261 §17.1.2 runs
 * it. Over UDP the request is retransmitted on Timer E (T1 doubling up to T2) until a final
 * response, and the flow is "unanswered" when Timer F (64*T1) fires first. Over TCP it is sent
 * once and Timer F still bounds the wait. Every NOTIFY gets its 200, so the server's NOTIFY
 * transactions end as they would with a real client.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { EVENT_PACKAGE } from '#shared/deferred/names.ts';
import { frameStream, getHeader, parseMessage } from '#shared/sip/messages/index.ts';
import type { SipMessage, SipRequest } from '#shared/sip/messages/index.ts';

export interface LoadOptions {
  transport: 'udp' | 'tcp';
  host: string;
  port: number;
  /** Local address to send from (a loopback 127.0.0.x). */
  localAddress?: string;
  /** RFC 3261 §17.1.1.1 T1 (500 ms); Timer F is 64*T1. */
  t1Ms?: number;
  /** RFC 3261 §17.1.2.2 T2 (4 s): the cap of the retransmission interval. */
  t2Ms?: number;
  /** Domain of the users subscribed to. */
  domain?: string;
}

export interface FlowOutcome {
  /** The final response's status; undefined when Timer F fired first (unanswered). */
  status?: number;
  retryAfter?: string;
  /** Its To tag: a retransmission answered by the same server transaction carries the same. */
  toTag?: string;
  retransmissions: number;
  ms: number;
  /** The request's bytes, to send again as a retransmission would. */
  bytes: Buffer;
  callId: string;
}

export interface LoadTotals {
  sent: number;
  ok: number;
  shed: number;
  /** 503 without a Retry-After. */
  shedWithoutRetryAfter: number;
  other: number;
  unanswered: number;
  retransmissions: number;
}

interface Pending {
  resolve: (o: FlowOutcome) => void;
  bytes: Buffer;
  started: number;
  retransmissions: number;
  timers: NodeJS.Timeout[];
}

export class SubscribeLoad {
  readonly totals: LoadTotals = {
    sent: 0,
    ok: 0,
    shed: 0,
    shedWithoutRetryAfter: 0,
    other: 0,
    unanswered: 0,
    retransmissions: 0,
  };
  private readonly pending = new Map<string, Pending>();
  /** Final responses to resends of finished flows, by Call-ID. */
  private readonly resent = new Map<string, (o: { status: number; toTag?: string }) => void>();
  private readonly run = randomBytes(4).toString('hex');
  private next = 0;
  private localPort = 0;
  private readonly t1: number;
  private readonly t2: number;

  private constructor(
    private readonly opts: LoadOptions,
    private readonly write: (bytes: Buffer) => void,
    private readonly closeSocket: () => void,
  ) {
    this.t1 = opts.t1Ms ?? 500;
    this.t2 = opts.t2Ms ?? 4000;
  }

  static async open(opts: LoadOptions): Promise<SubscribeLoad> {
    const localAddress = opts.localAddress ?? '127.0.0.1';
    if (opts.transport === 'udp') {
      const socket = dgram.createSocket('udp4');
      await new Promise<void>((resolve) => socket.bind(0, localAddress, resolve));
      const load = new SubscribeLoad(
        opts,
        (bytes) => socket.send(bytes, opts.port, opts.host),
        () => socket.close(),
      );
      load.localPort = socket.address().port;
      socket.on('message', (bytes) => load.receive(bytes));
      return load;
    }
    const socket = net.connect({ host: opts.host, port: opts.port, localAddress });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.on('error', () => undefined);
    const load = new SubscribeLoad(
      opts,
      (bytes) => socket.write(bytes),
      () => socket.destroy(),
    );
    load.localPort = socket.localPort ?? 0;
    let buffer: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
      for (;;) {
        const frame = frameStream(buffer, 1 << 20);
        if (frame.kind === 'message') {
          load.receive(frame.bytes);
          buffer = frame.rest;
        } else if (frame.kind === 'keepalive') {
          buffer = frame.rest;
        } else {
          if (frame.kind === 'error') socket.destroy();
          return;
        }
      }
    });
    return load;
  }

  /** One SUBSCRIBE flow for a fresh user; resolves with its final response or as unanswered. */
  subscribe(): Promise<FlowOutcome> {
    const n = this.next++;
    const callId = `load-${this.run}-${n}`;
    const user = `load${this.run}n${n}@${this.opts.domain ?? 'example.com'}`;
    const transport = this.opts.transport.toUpperCase();
    const local = `${this.opts.localAddress ?? '127.0.0.1'}:${this.localPort}`;
    const bytes = Buffer.from(
      [
        `SUBSCRIBE sip:${user} SIP/2.0`,
        `Via: SIP/2.0/${transport} ${local};branch=z9hG4bK${this.run}${n};rport`,
        `From: <sip:${user}>;tag=f${n}`,
        `To: <sip:${user}>`,
        `Call-ID: ${callId}`,
        'CSeq: 1 SUBSCRIBE',
        `Contact: <sip:${user.split('@')[0]}@${local};transport=${this.opts.transport}>`,
        'Max-Forwards: 70',
        `Event: ${EVENT_PACKAGE}`,
        'Expires: 3600',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
    );
    this.totals.sent++;
    return new Promise<FlowOutcome>((resolve) => {
      const p: Pending = { resolve, bytes, started: performance.now(), retransmissions: 0, timers: [] };
      this.pending.set(callId, p);
      this.write(bytes);
      if (this.opts.transport === 'udp') this.armTimerE(callId, p, this.t1);
      // RFC 3261 §17.1.2.2: Timer F, 64*T1, ends the client transaction with no response.
      p.timers.push(
        setTimeout(() => {
          this.finish(callId, undefined);
        }, 64 * this.t1),
      );
    });
  }

  /** Send a finished flow's request again (a retransmission that crossed its response). */
  resend(flow: FlowOutcome): Promise<{ status: number; toTag?: string }> {
    return new Promise((resolve) => {
      this.resent.set(flow.callId, resolve);
      this.write(flow.bytes);
    });
  }

  /**
   * A refresh inside the subscription a flow set up (RFC 6665 §4.1.2.1): its To tag, the next
   * CSeq, a new branch. Resolves with the final status.
   */
  refresh(flow: FlowOutcome): Promise<number> {
    const text = flow.bytes
      .toString('latin1')
      .replace(/^(To: <[^>]*>)/m, `$1;tag=${flow.toTag ?? ''}`)
      .replace(/^CSeq: 1 SUBSCRIBE/m, 'CSeq: 2 SUBSCRIBE')
      .replace(/branch=([^;\r\n]+)/, 'branch=$1r');
    return new Promise((resolve) => {
      this.resent.set(flow.callId, (o) => resolve(o.status));
      this.write(Buffer.from(text, 'latin1'));
    });
  }

  close(): void {
    for (const [callId] of this.pending) this.finish(callId, undefined);
    this.closeSocket();
  }

  get outstanding(): number {
    return this.pending.size;
  }

  /** RFC 3261 §17.1.2.2: Timer E doubles up to T2 while no response came. */
  private armTimerE(callId: string, p: Pending, interval: number): void {
    p.timers.push(
      setTimeout(() => {
        if (this.pending.get(callId) !== p) return;
        p.retransmissions++;
        this.totals.retransmissions++;
        this.write(p.bytes);
        this.armTimerE(callId, p, Math.min(2 * interval, this.t2));
      }, interval),
    );
  }

  private receive(bytes: Buffer): void {
    const parsed = parseMessage(bytes, { datagram: this.opts.transport === 'udp' });
    if (!parsed.ok) return;
    const msg = parsed.message;
    if (msg.kind === 'request') {
      if (msg.method === 'NOTIFY') this.write(okFor(msg));
      return;
    }
    if (getHeader(msg, 'CSeq')?.trim().split(/\s+/)[1] !== 'SUBSCRIBE') return;
    const callId = getHeader(msg, 'Call-ID') ?? '';
    if (msg.status < 200) {
      // RFC 3261 §17.1.2.2: a provisional response moves to Proceeding; Timer E then uses T2.
      return;
    }
    const toTag = /;\s*tag=([^;\s>]+)/i.exec(getHeader(msg, 'To') ?? '')?.[1];
    const again = this.resent.get(callId);
    if (again) {
      this.resent.delete(callId);
      again({ status: msg.status, ...(toTag ? { toTag } : {}) });
      return;
    }
    this.finish(callId, { status: msg.status, retryAfter: getHeader(msg, 'Retry-After'), toTag });
  }

  private finish(callId: string, res: { status: number; retryAfter?: string; toTag?: string } | undefined): void {
    const p = this.pending.get(callId);
    if (!p) return;
    this.pending.delete(callId);
    for (const t of p.timers) clearTimeout(t);
    const t = this.totals;
    if (!res) t.unanswered++;
    else if (res.status >= 200 && res.status < 300) t.ok++;
    else if (res.status === 503) {
      t.shed++;
      if (res.retryAfter === undefined) t.shedWithoutRetryAfter++;
    } else t.other++;
    p.resolve({
      ...(res ? { status: res.status } : {}),
      ...(res?.retryAfter !== undefined ? { retryAfter: res.retryAfter } : {}),
      ...(res?.toTag ? { toTag: res.toTag } : {}),
      retransmissions: p.retransmissions,
      ms: performance.now() - p.started,
      bytes: p.bytes,
      callId,
    });
  }
}

/** RFC 3261 §8.2.6.2: the 200 to a NOTIFY copies its Via, From, To, Call-ID and CSeq. */
function okFor(req: SipRequest): Buffer {
  const copy = (m: SipMessage, name: string) =>
    m.headers.filter((h) => h.name.toLowerCase() === name.toLowerCase()).map((h) => `${name}: ${h.value}`);
  return Buffer.from(
    [
      'SIP/2.0 200 OK',
      ...copy(req, 'Via'),
      ...copy(req, 'From'),
      ...copy(req, 'To'),
      ...copy(req, 'Call-ID'),
      ...copy(req, 'CSeq'),
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
}

/** Start `rate` flows a second for `seconds`; resolves when every flow has ended. */
export async function openLoop(load: SubscribeLoad, rate: number, seconds: number): Promise<FlowOutcome[]> {
  const flows: Promise<FlowOutcome>[] = [];
  const total = Math.round(rate * seconds);
  const t0 = performance.now();
  while (flows.length < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate) + 1);
    while (flows.length < due) flows.push(load.subscribe());
    await new Promise((r) => setTimeout(r, 2));
  }
  return Promise.all(flows);
}

/** `concurrency` flows at a time for `seconds`; the rate of accepted (2xx) flows per second. */
export async function closedLoop(load: SubscribeLoad, concurrency: number, seconds: number): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let ok = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const o = await load.subscribe();
        if (o.status !== undefined && o.status >= 200 && o.status < 300) ok++;
        // A refused flow waits as its Retry-After asks (RFC 3261 §20.33), capped to the run.
        else if (o.status === 503) await new Promise((r) => setTimeout(r, 50));
      }
    }),
  );
  return ok / ((performance.now() - t0) / 1000);
}
