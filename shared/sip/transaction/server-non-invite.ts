/**
 * The non-INVITE server transaction of RFC 3261 §17.2.2 (Figure 8):
 *
 *                  Request received / pass to TU
 *   Trying --1xx from TU/send--> Proceeding --200-699 from TU/send--> Completed --Timer J--> Terminated
 *     |                                                                   ^
 *     +------------------------ 200-699 from TU / send -------------------+
 *
 * It keeps no parsed message: the TU has the request, and from Completed on (Timer J, 64*T1 over
 * UDP) all that is left to do is send the final response's bytes again on a retransmission. Tens
 * of thousands wait out Timer J at a time, so over UDP, once its final response has left, the
 * layer keeps that response's bytes and destination under the transaction's key in place of this
 * object (`ServerTransactionContext.park`, CompletedResponses). Otherwise (a reliable transport,
 * Timer J zero) it holds its key and response, and Timer J is a slot in the layer's queue
 * (`ServerTransactionContext.completed`), not a Node timer of its own.
 */
import type { SipRequest, SipResponse } from '../messages/index.ts';
import { isReliable } from '../transport/index.ts';
import type { SentResponse, Source } from '../transport/index.ts';
import { methodOfServerKey } from './keys.ts';
import type { ServerTransactionContext, ServerTransactionMachine } from './server-transaction.ts';

export type NonInviteServerState = 'trying' | 'proceeding' | 'completed' | 'terminated';

export class NonInviteServerTransaction implements ServerTransactionMachine {
  private current: NonInviteServerState = 'trying';
  /** The last provisional response, as it left (resent on a retransmission in Proceeding). */
  private lastProvisional: Promise<SentResponse | undefined> | undefined;
  /**
   * The final response: while it is being sent, the promise of it as it left; then that itself
   * (resent on a retransmission in Completed), or undefined when sending it failed.
   */
  private final: Promise<SentResponse | undefined> | SentResponse | undefined;
  private answeredFinal = false;
  /** The guard below (its handle in the layer's timer queues), until a final response. */
  private guard: number | undefined;
  /** Only an INVITE is cancelled (§9.2); a getter, not a field in each of tens of thousands. */
  get cancelled(): boolean {
    return false;
  }

  constructor(
    readonly source: Source,
    readonly key: string,
    private readonly ctx: ServerTransactionContext,
  ) {}

  /** Read from the key (which ends with it) rather than kept twice. */
  get method(): string {
    return methodOfServerKey(this.key);
  }

  get state(): NonInviteServerState {
    return this.current;
  }

  get answered(): boolean {
    return this.answeredFinal;
  }

  /** §17.2.2: "The state machine is initialized in the "Trying" state and is passed a request". */
  start(): void {
    // Not in RFC 3261: a TU that never answers must not pin the transaction forever. The client
    // gave up after Timer F (64*T1), so nothing answered later could still be used.
    this.guard = this.ctx.queues.add(64 * this.ctx.timers.t1, () => {
      this.guard = undefined;
      this.ctx.log('warn', 'non-INVITE server transaction got no final response from the TU', {
        method: this.method,
      });
      this.toTerminated();
    });
  }

  receiveRequest(_req: SipRequest): void {
    switch (this.current) {
      case 'trying':
        // §17.2.2: "Once in the "Trying" state, any further request retransmissions are discarded."
        return;
      case 'proceeding':
        // §17.2.2: "If a retransmission of the request is received while in the "Proceeding" state,
        // the most recently sent provisional response MUST be passed to the transport layer for retransmission."
        if (this.lastProvisional) this.retransmit(this.lastProvisional);
        return;
      case 'completed':
        // §17.2.2: "While in the "Completed" state, the server transaction MUST pass the final
        // response to the transport layer for retransmission whenever a retransmission of the request is received."
        if (this.final !== undefined) this.retransmit(this.final);
        return;
      case 'terminated':
        return;
    }
  }

  respond(res: SipResponse): void {
    if (this.current === 'completed' || this.current === 'terminated') {
      // §17.2.2: "Any other final responses passed by the TU to the server transaction MUST be
      // discarded while in the "Completed" state."
      this.ctx.log('debug', 'response discarded: transaction already answered', {
        status: res.status,
        state: this.current,
      });
      return;
    }
    if (res.status < 200) {
      // §17.2.2: "While in the "Trying" state, if the TU passes a provisional response to the server
      // transaction, the server transaction MUST enter the "Proceeding" state. The response MUST be
      // passed to the transport layer for transmission." Further provisionals in Proceeding likewise.
      this.current = 'proceeding';
      this.lastProvisional = this.transmit(res);
      return;
    }
    // §17.2.2: "If the TU passes a final response (status codes 200-699) to the server while in the
    // "Proceeding" [or "Trying"] state, the transaction MUST enter the "Completed" state, and the
    // response MUST be passed to the transport layer for transmission."
    this.current = 'completed';
    this.lastProvisional = undefined;
    this.answeredFinal = true;
    this.clearGuard();
    const sending = this.transmit(res);
    this.final = sending;
    // §17.2.2: "When the server transaction enters the "Completed" state, it MUST set Timer J to fire
    // in 64*T1 seconds for unreliable transports, and zero seconds for reliable transports."
    if (isReliable(this.source.transport)) {
      void sending.then((sent) => {
        if (this.final === sending) this.final = sent;
      });
      this.ctx.completed(this, true);
      return;
    }
    // Over UDP the layer keeps the response as it left, from then on, in place of this object
    // (`ServerTransactionContext.park`); until it has left, a retransmission waits for it.
    void sending.then((sent) => {
      if (this.final !== sending || sent === undefined) return;
      // Parked, it is still Completed (a retransmission already waiting for `sending` resends it),
      // but the layer no longer passes it anything.
      if (this.ctx.park(this, sent)) return;
      this.final = sent;
      this.ctx.completed(this, false);
    });
  }

  /** Timer J fired (the layer's queue): Completed -> Terminated. */
  timerJ(): void {
    if (this.current === 'completed') this.toTerminated();
  }

  terminate(): void {
    this.current = 'terminated';
    this.final = undefined;
    this.clearGuard();
  }

  private clearGuard(): void {
    if (this.guard !== undefined) this.ctx.queues.cancel(64 * this.ctx.timers.t1, this.guard);
    this.guard = undefined;
  }

  /** First transmission; resolves with the response as it left, or undefined when it failed. */
  private transmit(res: SipResponse): Promise<SentResponse | undefined> {
    return this.ctx.send(res, this.source).catch((err: unknown) => {
      this.transportError(res.status, err);
      return undefined;
    });
  }

  private retransmit(sent: Promise<SentResponse | undefined> | SentResponse): void {
    if (!(sent instanceof Promise)) {
      this.resend(sent);
      return;
    }
    void sent.then((s) => {
      if (s && this.current !== 'terminated') this.resend(s);
    });
  }

  private resend(sent: SentResponse): void {
    this.ctx.resend(sent).catch((err: unknown) => this.transportError(sent.status, err));
  }

  private transportError(status: number, err: unknown): void {
    // §17.2.4: "If ... fails [the transport layer], the server transaction SHOULD transition to
    // the terminated state and inform the TU."
    this.ctx.log('warn', 'transport error on a server transaction response', { status, error: String(err) });
    this.toTerminated();
  }

  private toTerminated(): void {
    if (this.current === 'terminated') return;
    this.terminate();
    this.ctx.terminated(this);
  }
}
