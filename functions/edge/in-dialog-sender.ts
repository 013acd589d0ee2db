/**
 * Sends the requests handlers ask for inside a dialog (NOTIFY, BYE), one at a time per dialog
 * (RFC 6665 §4.2.2 wants NOTIFYs in order; Kamailio serialises them per dialog too), and tells
 * the subscribe handler when a NOTIFY's answer ends the subscription (protocol.md "NOTIFY").
 */
import type { InDialogRequestSpec } from '#shared/events.ts';
import { endsSubscription, isTerminalNotify } from '#shared/sip/subscription/index.ts';
import { UDP_MTU_LIMIT, buildInDialogRequest, nextHopOf, overUdpLimit } from '#shared/sip/dialog/index.ts';
import { getHeader, ownCopy, serializeMessage } from '#shared/sip/messages/index.ts';
import type { SipRequest, SipResponse } from '#shared/sip/messages/types.ts';
import type { Target, TransportName } from '#shared/sip/transport/index.ts';

export interface RequestSender {
  /** `serialized`: `serializeMessage(req)`, sent as it is (under the transaction's Via). */
  request(req: SipRequest, target: Target, serialized?: Buffer): Promise<SipResponse>;
}

export interface SendOutcome {
  status: number;
  retryAfter?: number;
}

export interface InDialogSenderDeps {
  transactions: RequestSender;
  /**
   * Our Contact for the dialog's transport, on requests that carry one (NOTIFY is a target refresh,
   * RFC 6665 §4.1; RFC 3261 §12.2.1.1): the same `;transport=` as the 2xx that made the dialog.
   */
  contactFor: (transport: TransportName) => string;
  /** A NOTIFY failed in a way that ends the subscription. */
  onSubscriptionEnded: (sub: { user: string; dialogId: string }, status: number) => Promise<void>;
  onSent?: (method: string, status: number) => void;
  /**
   * The body made smaller until `fits` says yes (the deferred list cut, `total` intact, in the
   * domain's list codec); used only when a NOTIFY too large for UDP could not go over TCP.
   */
  shrinkBody?: (body: string, fits: (body: string) => boolean) => string;
  /** Clock for forgetting quiet dialogs (tests); Date.now if unset. */
  now?: () => number;
}

export { UDP_MTU_LIMIT };

/**
 * How long a dialog's last CSeq is remembered after its last request: between this and twice it.
 * The race it guards against (handlers that took counters finishing out of order) lasts a handler
 * call, far less than Timer F (64*T1, 32 s) that bounds the NOTIFY itself. A quiet dialog is
 * forgotten, so memory follows the dialogs active in the last minute, not every subscription.
 */
export const CSEQ_MEMORY_MS = 32_000;
/** And at most this many dialogs in one period (a burst rotates early). */
const REMEMBERED_DIALOGS = 100_000;

export class InDialogSender {
  private readonly tails = new Map<string, Promise<unknown>>();
  /**
   * The highest CSeq sent per dialog: CSeq must rise (RFC 3261 §12.2.1.1, §12.2.2). Two periods:
   * written to `recent`, read from both; at each rotation `older` is dropped whole.
   */
  private recent = new Map<string, number>();
  private older = new Map<string, number>();
  private rotatedAt: number;
  private readonly now: () => number;

  constructor(private readonly deps: InDialogSenderDeps) {
    this.now = deps.now ?? Date.now;
    this.rotatedAt = this.now();
  }

  /**
   * Queue a request on its dialog. `gate` (when given) must settle before anything further is sent
   * on that dialog: the edge passes the ACK of its 2xx, since a BYE must not precede it (RFC 3261 §15).
   */
  hold(dialogKey: string, gate: Promise<unknown>): void {
    const tail = this.tails.get(dialogKey) ?? Promise.resolve();
    this.chain(
      dialogKey,
      tail.then(() => gate).catch(() => undefined),
    );
  }

  send(spec: InDialogRequestSpec): Promise<SendOutcome> {
    const key = dialogKeyOf(spec);
    const tail = this.tails.get(key);
    // Nothing queued on the dialog (the usual case): sent now, not a promise turn later.
    const run =
      tail === undefined ? this.sendNow(spec, key) : tail.catch(() => undefined).then(() => this.sendNow(spec, key));
    this.chain(
      key,
      run.catch(() => undefined),
    );
    return run;
  }

  private chain(key: string, p: Promise<unknown>): void {
    this.tails.set(key, p);
    void p.then(() => {
      if (this.tails.get(key) === p) this.tails.delete(key);
    });
  }

  private async sendNow(spec: InDialogRequestSpec, key: string): Promise<SendOutcome> {
    const last = this.lastCSeqOf(key);
    const terminal = spec.method === 'BYE' || isTerminalNotify(spec);
    if (last !== undefined && spec.cseq <= last && !terminal) {
      // Counters are taken by handlers that may finish out of order: a NOTIFY overtaken by a later
      // one is stale (full state: the later one says all), and sending it would earn a 500.
      return { status: 200 };
    }
    this.remember(key, Math.max(spec.cseq, last ?? 0));
    const target = nextHopOf(spec.dialog);
    let request = this.build(spec, spec.body ? Buffer.from(spec.body, 'base64') : undefined);
    // Only a datagram has a size limit: a stream's request is not serialized here to learn it. A
    // datagram's bytes, serialized for their size, are the ones the transaction sends.
    const bytes = target.transport === 'udp' ? serializeMessage(request) : undefined;
    const overTcp = bytes === undefined ? undefined : overUdpLimit(target, bytes.length);
    if (overTcp) {
      const response = await this.deps.transactions.request(request, overTcp);
      if (response.status !== 503 || getHeader(response, 'Retry-After') !== undefined) {
        return this.finish(spec, response);
      }
      // No TCP there: cut the list so the NOTIFY fits a datagram; `total` still tells the whole count.
      request = this.build(spec, this.cutToFit(spec));
    }
    const response = await this.deps.transactions.request(request, target, overTcp ? undefined : bytes);
    return this.finish(spec, response);
  }

  private lastCSeqOf(key: string): number | undefined {
    return this.recent.get(key) ?? this.older.get(key);
  }

  private remember(key: string, cseq: number): void {
    const t = this.now();
    if (t - this.rotatedAt >= CSEQ_MEMORY_MS || this.recent.size >= REMEMBERED_DIALOGS) {
      this.older = this.recent;
      this.recent = new Map();
      this.rotatedAt = t;
    }
    this.older.delete(key);
    // Kept past the request: a copy, not a rope of slices of the text it was read from.
    this.recent.set(this.recent.has(key) ? key : ownCopy(key), cseq);
  }

  private build(spec: InDialogRequestSpec, body: Buffer | undefined): SipRequest {
    return buildInDialogRequest(spec.dialog, spec.method, spec.cseq, {
      headers: spec.headers,
      ...(body ? { body } : {}),
      ...(spec.contentType ? { contentType: spec.contentType } : {}),
      contact: this.deps.contactFor(spec.dialog.flow.transport),
    });
  }

  private cutToFit(spec: InDialogRequestSpec): Buffer | undefined {
    if (!spec.body) return undefined;
    const body = Buffer.from(spec.body, 'base64').toString('utf8');
    if (!this.deps.shrinkBody) return Buffer.from(body, 'utf8');
    const fits = (b: string) => serializeMessage(this.build(spec, Buffer.from(b, 'utf8'))).length <= UDP_MTU_LIMIT;
    return Buffer.from(this.deps.shrinkBody(body, fits), 'utf8');
  }

  private async finish(spec: InDialogRequestSpec, response: SipResponse): Promise<SendOutcome> {
    const retryHeader = getHeader(response, 'Retry-After');
    const retryAfter = retryHeader !== undefined ? Number.parseInt(retryHeader, 10) : undefined;
    const outcome: SendOutcome = {
      status: response.status,
      ...(retryAfter !== undefined && Number.isFinite(retryAfter) ? { retryAfter } : {}),
    };
    this.deps.onSent?.(spec.method, response.status);
    if (spec.method === 'NOTIFY' && spec.subscription && endsSubscription(outcome.status, outcome.retryAfter)) {
      await this.deps.onSubscriptionEnded(spec.subscription, outcome.status).catch(() => undefined);
    }
    return outcome;
  }
}

function dialogKeyOf(spec: InDialogRequestSpec): string {
  return `${spec.dialog.callId};${spec.dialog.localTag};${spec.dialog.remoteTag}`;
}
