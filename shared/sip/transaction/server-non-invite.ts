/**
 * The non-INVITE server transaction of RFC 3261 §17.2.2 (Figure 8):
 *
 *                  Request received / pass to TU
 *   Trying --1xx from TU/send--> Proceeding --200-699 from TU/send--> Completed --Timer J--> Terminated
 *     |                                                                   ^
 *     +------------------------ 200-699 from TU / send -------------------+
 */
import type { SipRequest, SipResponse } from '../messages/index.ts';
import { isReliable } from '../transport/index.ts';
import type { Source } from '../transport/index.ts';
import type { ServerTransactionContext, ServerTransactionMachine } from './server-transaction.ts';
import { TimerSet } from './timers.ts';

export type NonInviteServerState = 'trying' | 'proceeding' | 'completed' | 'terminated';

export class NonInviteServerTransaction implements ServerTransactionMachine {
  private current: NonInviteServerState = 'trying';
  private lastProvisional: SipResponse | undefined;
  private final: SipResponse | undefined;
  private readonly timerSet: TimerSet;
  readonly cancelled = false;

  constructor(
    readonly request: SipRequest,
    readonly source: Source,
    readonly key: string,
    private readonly ctx: ServerTransactionContext,
  ) {
    this.timerSet = new TimerSet(ctx.log);
  }

  get state(): NonInviteServerState {
    return this.current;
  }

  get finalResponse(): SipResponse | undefined {
    return this.final;
  }

  /** §17.2.2: "The state machine is initialized in the "Trying" state and is passed a request". */
  start(): void {
    // Not in RFC 3261: a TU that never answers must not pin the transaction forever. The client
    // gave up after Timer F (64*T1), so nothing answered later could still be used.
    this.timerSet.set('guard', 64 * this.ctx.timers.t1, () => {
      this.ctx.log('warn', 'non-INVITE server transaction got no final response from the TU', {
        method: this.request.method,
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
        if (this.lastProvisional) this.transmit(this.lastProvisional);
        return;
      case 'completed':
        // §17.2.2: "While in the "Completed" state, the server transaction MUST pass the final
        // response to the transport layer for retransmission whenever a retransmission of the request is received."
        if (this.final) this.transmit(this.final);
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
      this.lastProvisional = res;
      this.transmit(res);
      return;
    }
    // §17.2.2: "If the TU passes a final response (status codes 200-699) to the server while in the
    // "Proceeding" [or "Trying"] state, the transaction MUST enter the "Completed" state, and the
    // response MUST be passed to the transport layer for transmission."
    this.current = 'completed';
    this.final = res;
    this.timerSet.clear('guard');
    this.transmit(res);
    // §17.2.2: "When the server transaction enters the "Completed" state, it MUST set Timer J to fire
    // in 64*T1 seconds for unreliable transports, and zero seconds for reliable transports."
    const timerJ = isReliable(this.source.transport) ? 0 : 64 * this.ctx.timers.t1;
    this.timerSet.set('J', timerJ, () => this.toTerminated());
  }

  terminate(): void {
    this.current = 'terminated';
    this.timerSet.clearAll();
  }

  private transmit(res: SipResponse): void {
    this.ctx.send(res, this.source).catch((err: unknown) => {
      // §17.2.4: "If ... fails [the transport layer], the server transaction SHOULD transition to
      // the terminated state and inform the TU."
      this.ctx.log('warn', 'transport error on a server transaction response', {
        status: res.status,
        error: String(err),
      });
      this.toTerminated();
    });
  }

  private toTerminated(): void {
    if (this.current === 'terminated') return;
    this.terminate();
    this.ctx.terminated(this);
  }
}
