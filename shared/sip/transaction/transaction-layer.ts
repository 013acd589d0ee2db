/**
 * The transaction layer (RFC 3261 §17) between the transports and the edge (the TU): it matches
 * requests and responses to transactions, absorbs retransmissions, runs the timers, answers CANCEL
 * (§9.2) and retransmits the 2xx to INVITE until its ACK (§13.3.1.4).
 */
import { randomHex } from '#shared/random.ts';
import { createResponse, getHeader, ownCopy, serializeMessage, withFirstHeader } from '../messages/index.ts';
import type { SipMessage, SipRequest, SipResponse } from '../messages/index.ts';
import { viaTransportToken } from '../transport/index.ts';
import type { LogFn, Source, Target, TransportLayer } from '../transport/index.ts';
import { NonInviteClientTransaction } from './client-non-invite.ts';
import { CompletedResponses } from './completed-responses.ts';
import type { ClientTransactionContext } from './client-non-invite.ts';
import {
  ackMatchKey,
  clientKeyOf,
  clientTransactionKey,
  methodOfServerKey,
  newBranch,
  serverKeyPrefix,
  serverTransactionKey,
} from './keys.ts';
import { InviteServerTransaction } from './server-invite.ts';
import type { InviteServerContext } from './server-invite.ts';
import { NonInviteServerTransaction } from './server-non-invite.ts';
import type { ServerTransaction, ServerTransactionContext, ServerTransactionMachine } from './server-transaction.ts';
import { FixedDelayTimers, TRYING_DELAY_MS, TimerQueues, resolveTimers } from './timers.ts';
import type { Timers } from './timers.ts';

/** What the layer uses of the transport (a `TransportLayer`, or a fake in tests). */
export type TransactionTransport = Pick<
  TransportLayer,
  'onMessage' | 'onConnectionClosed' | 'connectionOpen' | 'sendResponse' | 'resendResponse' | 'sendRequest' | 'sentBy'
>;

export interface TransactionLayerOptions {
  log?: LogFn;
  /** §17.2.1's 200 ms before the transaction sends 100 Trying on its own. */
  tryingDelayMs?: number;
  /**
   * Server transactions held at most (each keeps its last response's bytes for Timer J, 64*T1 on
   * UDP). Past it a new request is answered 503 without a transaction (below); unbounded if unset.
   */
  maxServerTransactions?: number;
  /** The Retry-After (seconds) of that 503 (RFC 3261 §20.33); 5 if unset. */
  retryAfterSeconds?: number;
  /** Each request answered that way (for a metric). */
  onRefused?: () => void;
}

const noLog: LogFn = () => {};

export class TransactionLayer {
  private readonly timers: Timers;
  /** The timers every transaction sets (RFC 3261 §17), one queue per duration. */
  private readonly queues: TimerQueues;
  private readonly log: LogFn;
  private readonly tryingDelayMs: number;
  private readonly maxServers: number;
  private readonly retryAfter: string;
  private readonly onRefused: () => void;
  private readonly servers = new Map<string, ServerTransactionMachine>();
  private readonly clients = new Map<string, NonInviteClientTransaction>();
  /** INVITEs answered 2xx, by the key their ACK will carry (§13.3.1.4). */
  private readonly awaitingAck = new Map<string, InviteServerTransaction>();
  private requestCb: ((req: SipRequest, tx: ServerTransaction) => void) | undefined;
  private ackCb: ((ack: SipRequest, source: Source) => void) | undefined;
  private cancelCb: ((invite: SipRequest) => void) | undefined;
  private ackTimeoutCb: ((invite: SipRequest) => void) | undefined;
  private stopped = false;
  /** What every server transaction gets from the layer (one object, not one per transaction). */
  private readonly serverContext: ServerTransactionContext;
  private readonly inviteContext: InviteServerContext;
  private readonly clientContext: ClientTransactionContext;
  /**
   * Timer J of the completed non-INVITE server transactions kept as objects: over a reliable
   * transport (zero), and over UDP only when `parked` had no room.
   */
  private readonly timerJ: FixedDelayTimers<{ timerJ(): void }>;
  private readonly timerJReliable: FixedDelayTimers<{ timerJ(): void }>;
  /**
   * Completed non-INVITE server transactions over UDP, as the response they resend (not in
   * `servers`), and their Timer J: the position of each record, in the order they expire.
   */
  private readonly parked = new CompletedResponses();
  private readonly timerJParked: FixedDelayTimers<number>;
  /**
   * Completed non-INVITE client transactions over UDP (Timer K, T4): only their keys, which is all
   * that absorbing a retransmitted response needs (§17.1.2.2); and their Timer K.
   */
  private readonly completedClients = new Set<string>();
  private readonly timerK: FixedDelayTimers<string>;
  /** Timer K (zero) of those over a reliable transport: the transactions themselves. */
  private readonly timerKReliable: FixedDelayTimers<NonInviteClientTransaction>;

  constructor(
    private readonly transport: TransactionTransport,
    timers?: Partial<Timers>,
    options: TransactionLayerOptions = {},
  ) {
    this.timers = resolveTimers(timers);
    this.log = options.log ?? noLog;
    this.queues = new TimerQueues(this.log);
    this.tryingDelayMs = options.tryingDelayMs ?? TRYING_DELAY_MS;
    this.maxServers = options.maxServerTransactions ?? Number.POSITIVE_INFINITY;
    this.retryAfter = String(options.retryAfterSeconds ?? 5);
    this.onRefused = options.onRefused ?? (() => {});
    this.timerJ = new FixedDelayTimers(64 * this.timers.t1, (tx) => tx.timerJ(), this.log);
    this.timerJReliable = new FixedDelayTimers(0, (tx) => tx.timerJ(), this.log);
    this.timerJParked = new FixedDelayTimers(64 * this.timers.t1, (at) => this.parked.expire(at), this.log);
    this.timerK = new FixedDelayTimers(this.timers.t4, (key) => this.completedClients.delete(key), this.log);
    this.timerKReliable = new FixedDelayTimers(0, (tx) => tx.timerK(), this.log);
    this.serverContext = this.makeServerContext();
    this.clientContext = {
      timers: this.timers,
      queues: this.queues,
      log: this.log,
      send: (r, t, bytes) => this.transport.sendRequest(r, t, bytes),
      connectionOpen: (id) => this.transport.connectionOpen(id),
      completed: (tx, reliable) => {
        if (reliable) {
          this.timerKReliable.add(tx);
          return;
        }
        // The transaction is done with but for Timer K: its key stands in for it (the object, its
        // timers and target would outlive several of V8's scavenges for nothing).
        if (this.clients.get(tx.key) === tx) this.clients.delete(tx.key);
        if (this.stopped) return;
        this.completedClients.add(tx.key);
        this.timerK.add(tx.key);
      },
      terminated: (done) => {
        if (this.clients.get(done.key) === done) this.clients.delete(done.key);
      },
    };
    this.inviteContext = this.makeInviteContext();
    transport.onMessage((msg, source) => this.receive(msg, source));
    transport.onConnectionClosed((id) => {
      for (const tx of [...this.clients.values()]) tx.connectionClosed(id);
    });
  }

  /** Each new request once (retransmissions are absorbed); never ACK or CANCEL. */
  onRequest(cb: (req: SipRequest, tx: ServerTransaction) => void): void {
    this.requestCb = cb;
  }

  /** The ACK for a 2xx (dialog-level); ACKs for non-2xx responses stay in their transaction. */
  onAck(cb: (ack: SipRequest, source: Source) => void): void {
    this.ackCb = cb;
  }

  /** After the layer answered CANCEL with 200 and the INVITE with 487. */
  onCancel(cb: (invite: SipRequest) => void): void {
    this.cancelCb = cb;
  }

  /** The 2xx to an INVITE was never ACKed (64*T1). */
  onAckTimeout(cb: (invite: SipRequest) => void): void {
    this.ackTimeoutCb = cb;
  }

  /**
   * Send a non-INVITE request in a new client transaction (§17.1.2) and resolve with its final
   * response: a real one, a synthetic 408 on Timer F, or a synthetic 503 on a transport error
   * (§8.1.3.1). The request gets our Via (fresh z9hG4bK branch, RFC 3581 rport) on top.
   * `serialized`: `serializeMessage(req)`, when the caller has it already (its size chose the
   * transport, §18.1.1): the request leaves as those bytes with our Via line put in first, not
   * serialized again.
   */
  request(req: SipRequest, target: Target, serialized?: Buffer): Promise<SipResponse> {
    if (req.method === 'INVITE' || req.method === 'ACK') {
      return Promise.reject(new Error(`${req.method} is not sent through a non-INVITE client transaction`));
    }
    const sentBy = this.transport.sentBy(target.transport);
    const branch = newBranch();
    const via = `SIP/2.0/${viaTransportToken(target.transport)} ${sentBy.host}:${sentBy.port};branch=${branch};rport`;
    const headers = [{ name: 'Via', value: via }, ...req.headers];
    // §8.1.1.6: "A UAC MUST insert a Max-Forwards header field into each request it originates".
    const maxForwards = getHeader(req, 'Max-Forwards') !== undefined;
    if (!maxForwards) headers.push({ name: 'Max-Forwards', value: '70' });
    const sent: SipRequest = { ...req, headers };
    const bytes =
      (serialized !== undefined && maxForwards ? withFirstHeader(serialized, 'Via', via) : undefined) ??
      serializeMessage(sent);
    const key = clientKeyOf(branch, req.method);
    let settle!: (res: SipResponse) => void;
    const result = new Promise<SipResponse>((resolve) => (settle = resolve));
    const tx = new NonInviteClientTransaction(sent, bytes, target, key, this.clientContext, settle);
    if (this.stopped) {
      tx.terminate('Transaction layer stopped');
      return result;
    }
    this.clients.set(key, tx);
    tx.start();
    return result;
  }

  /** Stop every timer; pending client transactions resolve with 503. */
  stop(): void {
    this.stopped = true;
    this.timerJ.clear();
    this.timerJReliable.clear();
    this.timerJParked.clear();
    this.parked.clear();
    this.timerK.clear();
    this.completedClients.clear();
    this.timerKReliable.clear();
    for (const tx of this.servers.values()) tx.terminate();
    for (const tx of this.clients.values()) tx.terminate('Transaction layer stopped');
    this.servers.clear();
    this.clients.clear();
    this.awaitingAck.clear();
    this.queues.clear();
  }

  /** Live transactions (for tests and metrics). */
  get size(): { server: number; client: number } {
    return { server: this.servers.size + this.parked.size, client: this.clients.size + this.completedClients.size };
  }

  // ---- dispatch ----------------------------------------------------------------------------

  private receive(msg: SipMessage, source: Source): void {
    if (this.stopped) return;
    try {
      if (msg.kind === 'response') this.receiveResponse(msg);
      else this.receiveRequest(msg, source);
    } catch (err) {
      this.log('error', 'transaction layer failed on a message', { error: String(err), ...source });
    }
  }

  private receiveResponse(res: SipResponse): void {
    // §17.1.3: match on the top Via branch and the CSeq method.
    const key = clientTransactionKey(res);
    const tx = key === undefined ? undefined : this.clients.get(key);
    if (!tx) {
      // §17.1.2.2: in Completed, a retransmitted response is absorbed.
      if (key !== undefined && this.completedClients.has(key)) return;
      this.log('debug', 'response matches no client transaction; dropped', { status: res.status });
      return;
    }
    tx.receiveResponse(res);
  }

  private receiveRequest(req: SipRequest, source: Source): void {
    const key = serverTransactionKey(req);
    if (key === undefined) {
      this.log('warn', 'request without a readable top Via; dropped', { method: req.method });
      return;
    }
    if (req.method === 'ACK') {
      this.receiveAck(req, source, key);
      return;
    }
    const existing = this.servers.get(key);
    if (existing) {
      // §17.2.3: a retransmission goes to the transaction, never to the TU again.
      existing.receiveRequest(req);
      return;
    }
    const completed = this.parked.get(key);
    if (completed) {
      // §17.2.2: in Completed, "the final response" again for each retransmission of the request.
      this.transport.resendResponse(completed).catch((err: unknown) => {
        // §17.2.4: a transport failure terminates the server transaction.
        this.log('warn', 'transport error on a server transaction response', {
          status: completed.status,
          error: String(err),
        });
        this.parked.delete(key);
      });
      return;
    }
    if (req.method === 'CANCEL') {
      this.receiveCancel(req, source, key);
      return;
    }
    if (this.servers.size + this.parked.size >= this.maxServers) {
      this.refuseStateless(req, source);
      return;
    }
    // The key lives as long as the transaction: a copy, not a rope of slices of the request text.
    const own = ownCopy(key);
    const tx =
      req.method === 'INVITE'
        ? new InviteServerTransaction(req, source, own, this.inviteContext)
        : new NonInviteServerTransaction(source, own, this.serverContext);
    this.servers.set(own, tx);
    tx.start();
    this.passToTu(req, tx);
  }

  /**
   * RFC 3261 §8.2.7: a stateless UAS answers without a transaction; §21.5.4: 503 for a temporary
   * overload, with Retry-After (§20.33). Holding no state is what keeps memory bounded when the
   * table is full; a retransmission of this request comes back here and, while the table is
   * still full, gets a 503 again. The UAS core never sees it (§8.2.7: no TU processing).
   */
  private refuseStateless(req: SipRequest, source: Source): void {
    this.onRefused();
    const res = createResponse(req, 503, {
      reason: 'Service Unavailable',
      toTag: randomHex(6),
      headers: [{ name: 'Retry-After', value: this.retryAfter }],
    });
    this.transport.sendResponse(res, source).catch((err: unknown) => {
      this.log('debug', 'could not send a stateless 503', { error: String(err) });
    });
  }

  private passToTu(req: SipRequest, tx: ServerTransactionMachine): void {
    if (!this.requestCb) {
      tx.respond(createResponse(req, 503, { reason: 'Service Unavailable' }));
      return;
    }
    try {
      this.requestCb(req, tx);
    } catch (err) {
      this.log('error', 'request handler threw', { method: req.method, error: String(err) });
      if (!tx.answered) tx.respond(createResponse(req, 500, { reason: 'Server Internal Error' }));
    }
  }

  private receiveAck(ack: SipRequest, source: Source, key: string): void {
    const invite = this.servers.get(key);
    if (invite instanceof InviteServerTransaction && invite.absorbsAck) {
      // §17.2.1: the ACK for a non-2xx final response belongs to the INVITE transaction ("Completed" ->
      // "Confirmed") and is not passed to the TU.
      invite.receiveAck();
      return;
    }
    // §17.1.1.3 / §13.3.1.4: the ACK for a 2xx is its own transaction; it stops the 2xx retransmissions.
    const accepted = this.awaitingAck.get(ackMatchKey(ack));
    if (accepted) {
      // A repeated ACK (the UAC resends it for each 2xx copy it got): the TU already has it.
      if (!accepted.receive2xxAck()) return;
    }
    if (!this.ackCb) return;
    try {
      this.ackCb(ack, source);
    } catch (err) {
      this.log('error', 'ACK handler threw', { error: String(err) });
    }
  }

  private receiveCancel(cancel: SipRequest, source: Source, key: string): void {
    const tx = new NonInviteServerTransaction(source, ownCopy(key), this.serverContext);
    this.servers.set(tx.key, tx);
    tx.start();
    const target = this.cancelTarget(cancel);
    if (!target) {
      // §9.2: "If the UAS did not find a matching transaction for the CANCEL according to the procedure
      // above, it SHOULD respond to the CANCEL with a 481 (Call Leg/Transaction Does Not Exist)."
      tx.respond(createResponse(cancel, 481, { reason: 'Call/Transaction Does Not Exist' }));
      return;
    }
    // §9.2: "The To tag of the response to the CANCEL and the response to the original request SHOULD
    // be the same."
    const toTag = (target instanceof InviteServerTransaction ? target.toTag : undefined) ?? randomHex(6);
    // §9.2: "Regardless of the method of the original request, as long as the CANCEL matched an existing
    // transaction, the UAS answers the CANCEL request itself with a 200 (OK) response."
    tx.respond(createResponse(cancel, 200, { toTag }));
    const invite = target instanceof InviteServerTransaction ? target.request : undefined;
    if (invite && target instanceof InviteServerTransaction && target.cancel(toTag)) {
      if (!this.cancelCb) return;
      try {
        this.cancelCb(invite);
      } catch (err) {
        this.log('error', 'CANCEL handler threw', { error: String(err) });
      }
    }
  }

  /**
   * §9.2: the transaction a CANCEL cancels has the same branch and sent-by (§17.2.3), any method
   * but CANCEL; `true` when it is a completed one kept only as its response (nothing to cancel).
   */
  private cancelTarget(cancel: SipRequest): ServerTransactionMachine | true | undefined {
    const inviteKey = serverTransactionKey(cancel, 'INVITE');
    const invite = inviteKey === undefined ? undefined : this.servers.get(inviteKey);
    if (invite) return invite;
    const prefix = serverKeyPrefix(cancel);
    if (prefix === undefined) return undefined;
    for (const [k, tx] of this.servers) {
      if (k.startsWith(prefix) && tx.method !== 'CANCEL') return tx;
    }
    for (const k of this.parked.keys()) {
      if (k.startsWith(prefix) && methodOfServerKey(k) !== 'CANCEL') return true;
    }
    return undefined;
  }

  private makeServerContext(): ServerTransactionContext {
    return {
      timers: this.timers,
      queues: this.queues,
      log: this.log,
      send: (res, source) => this.transport.sendResponse(res, source),
      resend: (sent) => this.transport.resendResponse(sent),
      completed: (tx, reliable) => (reliable ? this.timerJReliable : this.timerJ).add(tx),
      park: (tx, sent) => {
        if (this.stopped || this.servers.get(tx.key) !== tx) return false;
        const at = this.parked.add(tx.key, sent);
        if (at === undefined) return false;
        this.servers.delete(tx.key);
        this.timerJParked.add(at);
        return true;
      },
      terminated: (tx) => {
        if (this.servers.get(tx.key) === tx) this.servers.delete(tx.key);
        const ackKey = tx instanceof InviteServerTransaction ? tx.ackKey : undefined;
        if (ackKey !== undefined && this.awaitingAck.get(ackKey) === tx) this.awaitingAck.delete(ackKey);
      },
    };
  }

  private makeInviteContext(): InviteServerContext {
    return {
      ...this.serverContext,
      tryingDelayMs: this.tryingDelayMs,
      accepted: (tx, res) => {
        // Kept for the transaction's life (Timer L): a copy, not a slice of the request text.
        const key = ownCopy(ackMatchKey(res));
        this.awaitingAck.set(key, tx);
        return key;
      },
      ackTimeout: (tx) => {
        // Never acknowledged, so the transaction still holds its INVITE.
        if (!tx.request) return;
        if (!this.ackTimeoutCb) {
          this.log('warn', 'the 2xx to an INVITE was never acknowledged', { callId: getHeader(tx.request, 'Call-ID') });
          return;
        }
        try {
          this.ackTimeoutCb(tx.request);
        } catch (err) {
          this.log('error', 'ACK timeout handler threw', { error: String(err) });
        }
      },
    };
  }
}
