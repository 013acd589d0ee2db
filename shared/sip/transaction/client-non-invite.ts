/**
 * The non-INVITE client transaction of RFC 3261 §17.1.2 (Figure 6), used for NOTIFY, BYE and MESSAGE:
 *
 *   Trying --1xx--> Proceeding --200-699--> Completed --Timer K--> Terminated
 *     |  Timer E / resend (UDP)   | Timer E / resend (UDP)
 *     +--200-699--> Completed     |
 *     +--Timer F or transport error--> Terminated (the TU gets 408 / 503)
 *
 * Over TCP/TLS, a connection that closes before the final response (a proxy restarted, an idle
 * close racing the request) makes the transaction send its request again on a new connection.
 */
import { createResponse } from '../messages/index.ts';
import type { SipRequest, SipResponse } from '../messages/index.ts';
import { isReliable } from '../transport/index.ts';
import type { LogFn, Source, Target } from '../transport/index.ts';
import { TimerSet } from './timers.ts';
import type { TimerQueues, Timers } from './timers.ts';

export type NonInviteClientState = 'trying' | 'proceeding' | 'completed' | 'terminated';

export interface ClientTransactionContext {
  timers: Timers;
  /** Where the transaction's timers E and F run (the layer's, shared by every transaction). */
  queues: TimerQueues;
  log: LogFn;
  /** `bytes`: the request as serialized once, for this copy and every retransmission. */
  send(req: SipRequest, target: Target, bytes: Buffer): Promise<Source>;
  /** Whether the stream connection of that id is still open. */
  connectionOpen(connectionId: string): boolean;
  /**
   * The transaction entered Completed: Timer K (§17.1.2.2: T4 for unreliable transports, zero for
   * reliable ones) from the layer's queue, not a timer of its own. Over a reliable transport the
   * layer calls its `timerK`; over UDP it keeps only the key for T4 (all that absorbing a
   * retransmitted response needs) and the transaction gets nothing more.
   */
  completed(tx: NonInviteClientTransaction, reliable: boolean): void;
  terminated(tx: NonInviteClientTransaction): void;
}

export class NonInviteClientTransaction {
  private current: NonInviteClientState = 'trying';
  private readonly timerSet: TimerSet;
  /** Hands the TU its final response; gone once it has (nothing of it stays for Timer K). */
  private settle: ((res: SipResponse) => void) | undefined;
  /**
   * The request with our Via on top (its branch names this transaction), for its retransmissions;
   * dropped with the final response: in Completed (Timer K) only response retransmissions are
   * absorbed, by the key (§17.1.2.2).
   */
  private request: SipRequest | undefined;
  /** The request's bytes, written once (§17.1.2.2: a retransmission is the same request again). */
  private bytes: Buffer | undefined;
  private target: Target;
  readonly method: string;

  /**
   * `settle` gets the final response: a real one, or a synthetic 408 / 503 (§8.1.3.1). `bytes`:
   * `request` serialized.
   */
  constructor(
    request: SipRequest,
    bytes: Buffer,
    target: Target,
    readonly key: string,
    private readonly ctx: ClientTransactionContext,
    settle: (res: SipResponse) => void,
  ) {
    this.request = request;
    this.bytes = bytes;
    this.method = request.method;
    this.target = target;
    this.timerSet = new TimerSet(ctx.queues);
    this.settle = settle;
  }

  get state(): NonInviteClientState {
    return this.current;
  }

  /**
   * §17.1.2.2: "The "Trying" state is entered when the TU initiates a new client transaction with a
   * request. When entering this state, the client transaction SHOULD set timer F to fire in 64*T1
   * seconds. The request MUST be passed to the transport layer for transmission. If an unreliable
   * transport is in use, the client transaction MUST set timer E to fire in T1 seconds."
   */
  start(): void {
    const t = this.ctx.timers;
    this.timerSet.set('F', 64 * t.t1, () => {
      // §17.1.2.2: "If Timer F fires while the client transaction is still in the "Trying" [or
      // "Proceeding"] state, the client transaction SHOULD inform the TU about the timeout, and then
      // it SHOULD enter the "Terminated" state." §8.1.3.1: the TU treats it as 408.
      if (this.current === 'trying' || this.current === 'proceeding') this.fail(408, 'Request Timeout');
    });
    this.transmit();
    if (!isReliable(this.target.transport)) this.scheduleTimerE(t.t1);
  }

  receiveResponse(res: SipResponse): void {
    if (this.current === 'completed' || this.current === 'terminated') {
      // §17.1.2.2: in "Completed" the transaction buffers any response retransmissions.
      return;
    }
    if (res.status < 200) {
      // §17.1.2.2: "If a provisional response is received while in the "Trying" state, the response
      // MUST be passed to the TU, and then the client transaction SHOULD move to the "Proceeding" state."
      this.current = 'proceeding';
      return;
    }
    // §17.1.2.2: "If a final response (status codes 200-699) is received while in the "Trying" [or
    // "Proceeding"] state, the response MUST be passed to the TU, and the client transaction MUST
    // transition to the "Completed" state."
    this.current = 'completed';
    this.timerSet.clear('E');
    this.timerSet.clear('F');
    this.resolve(() => res);
    this.request = undefined;
    this.bytes = undefined;
    // §17.1.2.2: "Once the client transaction enters the "Completed" state, it MUST set Timer K to fire
    // in T4 seconds for unreliable transports, and zero seconds for reliable transports."
    this.ctx.completed(this, isReliable(this.target.transport));
  }

  /** Timer K fired (the layer's queue): Completed -> Terminated. */
  timerK(): void {
    if (this.current === 'completed') this.toTerminated();
  }

  /**
   * A stream connection closed. When it is the one the request went over and no final response
   * came, the answer cannot come on it any more (§18.2.2 sends it "using the existing connection";
   * a restarted proxy has lost the transaction). The request goes again, same branch (a
   * retransmission, absorbed by a next hop that already has it), on a new connection to the same
   * hop (§18.1.1), as §18.2.2 has a server do for a response whose connection is gone. While no
   * connection can be opened it tries again at Timer E's intervals; Timer F still bounds it all.
   * A WebSocket peer cannot be reached on a new connection (RFC 7118 §5): a transport error
   * (§17.1.4; the TU sees 503, §8.1.3.1).
   */
  connectionClosed(connectionId: string): void {
    if (this.target.connectionId !== connectionId) return;
    if (this.current !== 'trying' && this.current !== 'proceeding') return;
    const { connectionId: _lost, ...rest } = this.target;
    this.target = rest;
    if (rest.transport === 'ws' || rest.transport === 'wss') {
      this.fail(503, 'Service Unavailable');
      return;
    }
    this.ctx.log('info', 'connection closed under a pending request; sending it again on a new one', {
      method: this.method,
      connectionId,
    });
    this.resendAfterLoss(this.ctx.timers.t1);
  }

  /** Leave at once; a still-pending TU gets a synthetic 503. */
  terminate(reason = 'Service Unavailable'): void {
    this.current = 'terminated';
    this.timerSet.clearAll();
    this.resolve((req) => createResponse(req, 503, { reason }));
  }

  private scheduleTimerE(interval: number): void {
    this.timerSet.set('E', interval, () => {
      if (this.current === 'trying') {
        // §17.1.2.2: "If timer E fires while still in this state, the timer is reset, but this time with
        // value MIN(2*T1, T2). When the timer fires again, it is reset to a MIN(4*T1, T2)."
        this.transmit();
        this.scheduleTimerE(Math.min(interval * 2, this.ctx.timers.t2));
      } else if (this.current === 'proceeding') {
        // §17.1.2.2: "If Timer E fires while in the "Proceeding" state, the request MUST be passed to the
        // transport layer for retransmission, and Timer E MUST be reset with a value of T2 seconds."
        this.transmit();
        this.scheduleTimerE(this.ctx.timers.t2);
      }
    });
  }

  private resendAfterLoss(interval: number): void {
    // A failed attempt is not final here: the hop may be restarting.
    this.send().catch((err: unknown) => {
      if (this.current !== 'trying' && this.current !== 'proceeding') return;
      this.ctx.log('debug', 'no new connection for a pending request yet', {
        method: this.method,
        error: String(err),
      });
      this.timerSet.set('E', interval, () => this.resendAfterLoss(Math.min(interval * 2, this.ctx.timers.t2)));
    });
  }

  /** One copy out; a stream connection it went over becomes the one the transaction watches. */
  private async send(): Promise<void> {
    if (!this.request || !this.bytes) return;
    const source = await this.ctx.send(this.request, this.target, this.bytes);
    if (source.connectionId === undefined || this.current === 'terminated') return;
    // Retransmissions follow the copy sent (same connection for stream transports).
    this.target = { ...this.target, connectionId: source.connectionId };
    // It may have closed before the copy was known to be written.
    if (!this.ctx.connectionOpen(source.connectionId)) this.connectionClosed(source.connectionId);
  }

  private transmit(): void {
    this.send().catch((err: unknown) => {
      // §17.1.4: "the client transaction SHOULD inform the TU that a transport failure has occurred,
      // and the client transaction SHOULD transition directly to the "Terminated" state." §8.1.3.1:
      // the TU treats it as a 503.
      this.ctx.log('warn', 'transport error on a client transaction', {
        method: this.method,
        error: String(err),
      });
      if (this.current === 'trying' || this.current === 'proceeding') this.fail(503, 'Service Unavailable');
    });
  }

  private fail(status: number, reason: string): void {
    this.resolve((req) => createResponse(req, status, { reason }));
    this.toTerminated();
  }

  /** The TU's answer, once; `answer` builds it from the request (a synthetic one needs it). */
  private resolve(answer: (req: SipRequest) => SipResponse): void {
    const settle = this.settle;
    const req = this.request;
    if (!settle || !req) return;
    this.settle = undefined;
    settle(answer(req));
  }

  private toTerminated(): void {
    if (this.current === 'terminated') return;
    this.current = 'terminated';
    this.timerSet.clearAll();
    this.ctx.terminated(this);
  }
}
