/**
 * What the transaction user (TU) sees of a server transaction, and what a server transaction
 * needs from the layer that owns it.
 */
import type { SipRequest, SipResponse } from '../messages/index.ts';
import type { LogFn, SentResponse, Source } from '../transport/index.ts';
import type { TimerQueues, Timers } from './timers.ts';

export interface ServerTransaction {
  readonly source: Source;
  /** Provisional or final. Responses the state machine no longer accepts are ignored (and logged). */
  respond(res: SipResponse): void;
  /** True once a CANCEL ended this INVITE with 487. */
  readonly cancelled: boolean;
}

export interface ServerTransactionContext {
  timers: Timers;
  /** Where the transaction's timers run (the layer's, shared by every transaction). */
  queues: TimerQueues;
  log: LogFn;
  /**
   * Hand a response to the transport (RFC 3261 §18.2.2); resolves with it as it left (what a
   * retransmission sends again), rejects on a transport error.
   */
  send(res: SipResponse, source: Source): Promise<SentResponse>;
  /** The same bytes to the same place again (a retransmission of a response). */
  resend(sent: SentResponse): Promise<void>;
  /**
   * A non-INVITE server transaction entered Completed: call its `timerJ` when Timer J fires (RFC
   * 3261 §17.2.2: 64*T1 for unreliable transports, zero for reliable ones).
   */
  completed(tx: { timerJ(): void }, reliable: boolean): void;
  /**
   * A non-INVITE server transaction over UDP entered Completed and its final response left as
   * `sent`: the layer keeps that under the transaction's key for Timer J in place of the
   * transaction (CompletedResponses), which is done. False when it could not: the transaction
   * stays, with `completed`.
   */
  park(tx: ServerTransactionMachine, sent: SentResponse): boolean;
  /** The transaction reached Terminated: forget it. */
  terminated(tx: ServerTransactionMachine): void;
}

/** Internal face of a server transaction, used by the transaction layer. */
export interface ServerTransactionMachine extends ServerTransaction {
  readonly key: string;
  readonly method: string;
  readonly state: string;
  /** Whether a final response was sent. */
  readonly answered: boolean;
  start(): void;
  /** A retransmission of the request that created the transaction. */
  receiveRequest(req: SipRequest): void;
  /** Stop timers and leave without sending anything more. */
  terminate(): void;
}
