/**
 * The INVITE server transaction of RFC 3261 §17.2.1 (Figure 7) with the "Accepted" state of
 * RFC 6026 §7.1, which also holds the UAS core's 2xx retransmission of RFC 3261 §13.3.1.4:
 *
 *   Proceeding --1xx from TU / send--> Proceeding
 *   Proceeding --300-699 from TU / send--> Completed --ACK--> Confirmed --Timer I--> Terminated
 *                                           |  Timer G / resend, Timer H / fail --> Terminated
 *   Proceeding --2xx from TU / send--> Accepted --Timer L--> Terminated
 *                                       2xx resent on its timer (UDP) until the ACK arrives
 */
import { createResponse, ownCopy } from '../messages/index.ts';
import type { SipRequest, SipResponse } from '../messages/index.ts';
import { isReliable } from '../transport/index.ts';
import type { SentResponse, Source } from '../transport/index.ts';
import { toTagOf } from './keys.ts';
import type { ServerTransactionContext, ServerTransactionMachine } from './server-transaction.ts';
import { TimerSet, nextInterval } from './timers.ts';

export type InviteServerState = 'proceeding' | 'completed' | 'confirmed' | 'accepted' | 'terminated';

export interface InviteServerContext extends ServerTransactionContext {
  /** Delay before the transaction's own 100 Trying (§17.2.1: 200 ms). */
  tryingDelayMs: number;
  /**
   * A 2xx was sent: the layer starts matching ACKs for it by dialog (§13.3.1.4); returns the key
   * it matches them by, to be forgotten when the transaction ends.
   */
  accepted(tx: InviteServerTransaction, res: SipResponse): string;
  /** §13.3.1.4: the 2xx was retransmitted for 64*T1 without an ACK. */
  ackTimeout(tx: InviteServerTransaction): void;
}

export class InviteServerTransaction implements ServerTransactionMachine {
  private current: InviteServerState = 'proceeding';
  /** Responses as they left: only their bytes are sent again (Timer G, the 2xx timer, retransmissions). */
  private lastProvisional: Promise<SentResponse | undefined> | undefined;
  private final: Promise<SentResponse | undefined> | undefined;
  /** The To tag of the responses sent (for a CANCEL's 200, §9.2). */
  private sentToTag: string | undefined;
  /** The key the layer matches the 2xx's ACK by (set in Accepted). */
  private ackKeyValue: string | undefined;
  private wasCancelled = false;
  private acked = false;
  private readonly timerSet: TimerSet;
  /** The INVITE, until its 2xx is acknowledged (see `receive2xxAck`). */
  private invite: SipRequest | undefined;

  constructor(
    request: SipRequest,
    readonly source: Source,
    readonly key: string,
    private readonly ctx: InviteServerContext,
  ) {
    this.invite = request;
    this.timerSet = new TimerSet(ctx.queues);
  }

  /**
   * The INVITE this transaction answers; gone once its 2xx is acknowledged, when nothing is built
   * from it any more (no 100, 487 or ACK timeout can follow) for the rest of Timer L.
   */
  get request(): SipRequest | undefined {
    return this.invite;
  }

  get state(): InviteServerState {
    return this.current;
  }

  get cancelled(): boolean {
    return this.wasCancelled;
  }

  get method(): string {
    return 'INVITE';
  }

  get answered(): boolean {
    // An acknowledged 2xx no longer keeps its bytes (receive2xxAck).
    return this.final !== undefined || this.acked;
  }

  /** The To tag already used in a response to this INVITE (for a CANCEL's 200, §9.2). */
  get toTag(): string | undefined {
    return this.sentToTag;
  }

  /** The key the layer matches the ACK for the 2xx by, once a 2xx was sent. */
  get ackKey(): string | undefined {
    return this.ackKeyValue;
  }

  /** Whether an ACK with this transaction's branch is the ACK for a non-2xx final response. */
  get absorbsAck(): boolean {
    return this.current === 'completed' || this.current === 'confirmed';
  }

  start(): void {
    // §17.2.1: "When a server transaction is constructed for a request, it enters the "Proceeding"
    // state. The server transaction MUST generate a 100 (Trying) response unless it knows that the TU
    // will generate a provisional or final response within 200 ms".
    this.timerSet.set('trying', this.ctx.tryingDelayMs, () => {
      if (this.current === 'proceeding' && !this.lastProvisional && this.invite) {
        this.respond(createResponse(this.invite, 100));
      }
    });
  }

  receiveRequest(_req: SipRequest): void {
    switch (this.current) {
      case 'proceeding':
        // §17.2.1: "If a request retransmission is received while in the "Proceeding" state, the most
        // recent provisional response that was received from the TU MUST be passed to the transport
        // layer for retransmission."
        if (this.lastProvisional) this.retransmit(this.lastProvisional);
        return;
      case 'completed':
        // §17.2.1: "while in the "Completed" state, if a request retransmission is received, the
        // server SHOULD pass the response to the transport for retransmission."
        if (this.final) this.retransmit(this.final);
        return;
      case 'accepted':
        // RFC 6026 §7.1: retransmissions of the INVITE are not passed to the TU. The UAS core role
        // (§13.3.1.4) answers one with the 2xx again, which repairs a lost 2xx sooner than its timer.
        if (this.final && !this.acked) this.retransmit(this.final);
        return;
      case 'confirmed':
      case 'terminated':
        // §17.2.1: in "Confirmed" the transaction absorbs request retransmissions.
        return;
    }
  }

  respond(res: SipResponse): void {
    const status = res.status;
    if (this.current === 'accepted' && status >= 200 && status < 300) {
      // RFC 6026 §7.1: "Any retransmission of the 2xx response passed from the TU to the transaction
      // while in the "Accepted" state MUST be passed to the transport layer for transmission."
      void this.transmit(res);
      return;
    }
    if (this.current !== 'proceeding') {
      this.ctx.log('debug', 'response discarded: INVITE already answered', { status, state: this.current });
      return;
    }
    this.timerSet.clear('trying');
    const tag = toTagOf(res);
    if (tag !== undefined && this.sentToTag === undefined) this.sentToTag = ownCopy(tag);
    if (status < 200) {
      // §17.2.1: "The TU passes any number of provisional responses to the server transaction. So long
      // as the server transaction is in the "Proceeding" state, each of these MUST be passed to the
      // transport layer for transmission."
      this.lastProvisional = this.transmit(res);
      return;
    }
    this.lastProvisional = undefined;
    if (status < 300) {
      this.toAccepted(res);
      return;
    }
    // §17.2.1: "While in the "Proceeding" state, if the TU passes a response with status code from 300
    // to 699 to the server transaction, the response MUST be passed to the transport layer for
    // transmission, and the state machine MUST enter the "Completed" state."
    this.current = 'completed';
    this.final = this.transmit(res);
    const t = this.ctx.timers;
    if (!isReliable(this.source.transport)) {
      // §17.2.1: "For unreliable transports, timer G is set to fire in T1 seconds, and is not set to
      // fire for reliable transports."
      this.scheduleTimerG(t.t1);
    }
    // §17.2.1: "When the "Completed" state is entered, timer H MUST be set to fire in 64*T1 seconds
    // for all transports."
    this.timerSet.set('H', 64 * t.t1, () => {
      // §17.2.1: "If timer H fires while in the "Completed" state, it implies that the ACK was never
      // received. In this case, the server transaction MUST transition to the "Terminated" state, and
      // MUST indicate to the TU that a transaction failure has occurred."
      this.ctx.log('warn', 'no ACK for a non-2xx final response (Timer H)', { status });
      this.toTerminated();
    });
  }

  /** An ACK matched to this transaction by branch (§17.2.3): the ACK for a non-2xx final response. */
  receiveAck(): void {
    if (this.current !== 'completed') return;
    // §17.2.1: "If an ACK is received while the server transaction is in the "Completed" state, the
    // server transaction MUST transition to the "Confirmed" state. As Timer G is ignored in this
    // state, any retransmissions of the response will cease."
    this.current = 'confirmed';
    this.timerSet.clear('G');
    this.timerSet.clear('H');
    // §17.2.1: "When this state is entered, timer I is set to fire in T4 seconds for unreliable
    // transports, and zero seconds for reliable transports."
    const timerI = isReliable(this.source.transport) ? 0 : this.ctx.timers.t4;
    this.timerSet.set('I', timerI, () => this.toTerminated());
  }

  /**
   * The ACK for our 2xx, matched by dialog (§13.3.1.4). Returns false for a repeated ACK.
   * §13.3.1.4: "Response retransmissions cease when an ACK request for the response is received."
   */
  receive2xxAck(): boolean {
    if (this.current !== 'accepted' || this.acked) return false;
    this.acked = true;
    this.timerSet.clear('2xx');
    // RFC 6026 §7.1: the rest of "Accepted" (Timer L, 64*T1) absorbs retransmissions of the INVITE
    // and passes nothing from it on: neither the request nor the 2xx's bytes are needed again,
    // and they are not kept for those 32 s.
    this.invite = undefined;
    this.final = undefined;
    return true;
  }

  /**
   * §9.2: a CANCEL for a transaction still without a final response: "the UAS SHOULD immediately
   * respond to the INVITE with a 487 (Request Terminated)". Returns false when it was too late.
   */
  cancel(toTag: string): boolean {
    if (this.current !== 'proceeding' || !this.invite) return false;
    this.wasCancelled = true;
    this.respond(createResponse(this.invite, 487, { toTag }));
    return true;
  }

  terminate(): void {
    this.current = 'terminated';
    this.timerSet.clearAll();
  }

  private toAccepted(res: SipResponse): void {
    // §17.2.1: "If, while in the "Proceeding" state, the TU passes a 2xx response to the server
    // transaction, the server transaction MUST pass this response to the transport layer for
    // transmission." RFC 6026 §7.1: the transaction then enters "Accepted" instead of "Terminated".
    this.current = 'accepted';
    this.final = this.transmit(res);
    this.ackKeyValue = this.ctx.accepted(this, res);
    const t = this.ctx.timers;
    if (!isReliable(this.source.transport)) {
      // §13.3.1.4: "The 2xx response is passed to the transport with an interval that starts at T1
      // seconds and doubles for each retransmission until it reaches T2 seconds". Over reliable
      // transports the transport itself delivers it: sent once.
      this.schedule2xx(t.t1);
    }
    // RFC 6026 §7.1: Timer L = 64*T1 ends "Accepted". §13.3.1.4: "If the server retransmits the 2xx
    // response for 64*T1 seconds without receiving an ACK, the dialog is confirmed, but the session
    // SHOULD be terminated" - the TU hears of it through ackTimeout.
    this.timerSet.set('L', 64 * t.t1, () => {
      const missing = !this.acked;
      this.toTerminated();
      if (missing) this.ctx.ackTimeout(this);
    });
  }

  private schedule2xx(interval: number): void {
    this.timerSet.set('2xx', interval, () => {
      if (this.current !== 'accepted' || this.acked || !this.final) return;
      this.retransmit(this.final);
      this.schedule2xx(nextInterval(interval, this.ctx.timers));
    });
  }

  private scheduleTimerG(interval: number): void {
    this.timerSet.set('G', interval, () => {
      if (this.current !== 'completed' || !this.final) return;
      // §17.2.1: "If timer G fires, the response is passed to the transport layer once more for
      // retransmission, and timer G is set to fire in MIN(2*T1, T2) seconds. From then on, when timer
      // G fires, the response is passed to the transport again for transmission, and timer G is reset
      // with a value that doubles, unless that value exceeds T2, in which case it is reset with T2."
      this.retransmit(this.final);
      this.scheduleTimerG(nextInterval(interval, this.ctx.timers));
    });
  }

  /** First transmission; resolves with the response as it left, or undefined when it failed. */
  private transmit(res: SipResponse): Promise<SentResponse | undefined> {
    return this.ctx.send(res, this.source).catch((err: unknown) => {
      this.transportError(res.status, err);
      return undefined;
    });
  }

  private retransmit(sent: Promise<SentResponse | undefined>): void {
    void sent.then((s) => {
      if (!s || this.current === 'terminated') return;
      return this.ctx.resend(s).catch((err: unknown) => this.transportError(s.status, err));
    });
  }

  private transportError(status: number, err: unknown): void {
    // §17.2.4: on a transport failure "the server transaction SHOULD transition to the terminated
    // state and inform the TU" (here: the log, and no further retransmissions).
    this.ctx.log('warn', 'transport error on an INVITE server transaction response', { status, error: String(err) });
    this.toTerminated();
  }

  private toTerminated(): void {
    if (this.current === 'terminated') return;
    this.terminate();
    this.ctx.terminated(this);
  }
}
