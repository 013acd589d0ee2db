/**
 * Ports: what the handlers need from the outside world. Adapters in `./adapters/` implement
 * them over DynamoDB, SQS and the edge's control API; unit tests pass in-memory fakes.
 */
import type {
  DeferredMessage,
  DeferredMessageEntry,
  DeliveryJob,
  DeliveryReport,
  DeliverySession,
  DeliveryTransfer,
  Subscription,
} from './deferred/model.ts';
import type { Flow } from './sip/dialog/types.ts';
import type { InDialogRequestSpec, SipHandlerResult, SipRequestEvent } from './events.ts';

/**
 * The deferred messages. Every access costs the same whatever the mailbox depth
 * (docs/architecture.md "Data"): a count is one small summary read, a list reads only the
 * entries it returns (without payloads), an INVITE's ids are one batch read.
 */
export interface DeferredMessageStore {
  /**
   * Store a message once: a second deposit with the same (user, from, messageId) stores
   * nothing and returns the first one with `created: false`, also after the first was
   * delivered or deleted (until its expiry). `message.id` is `depositId(user, from,
   * messageId)`: the DynamoDB adapter's duplicate check is the message's own conditional put.
   * A created message adds 1 to the user's summary count.
   */
  put(message: DeferredMessage, limits?: StoreLimits): Promise<{ created: boolean; message: DeferredMessage }>;
  /**
   * The user's messages without payloads, oldest first (arrivedAt, then id), not expired at
   * `now` (epoch seconds). Read from a projection without payloads; reads at most about
   * `limit` entries, never the whole mailbox.
   */
  list(user: string, now: number, limit?: number): Promise<DeferredMessageEntry[]>;
  /**
   * How many messages the user has stored: the per-user summary counter (atomic add on
   * put/delete; the same summary holds their bytes), one small read at any depth. A message past its expiry still counts until the
   * sweep (or TTL) removes it, so it may run ahead of `list` by the not-yet-swept ones.
   * `seen`: a summary revision the count must include (ChangeDetail.revision); stores whose
   * reads may lag (DynamoDB) then read eventually consistent first, strongly when behind it.
   */
  count(user: string, now: number, seen?: number): Promise<number>;
  /** One of the user's messages by id, with its payload, or undefined (also when expired). */
  get(user: string, id: string, now: number): Promise<DeferredMessage | undefined>;
  /**
   * The user's unexpired messages among `ids`, without payloads, in one batch read (DynamoDB:
   * BatchGetItem of up to 100 keys, unprocessed keys retried). Unknown, foreign and expired ids
   * are left out; order is not kept. Callers bound `ids` (the INVITE takes at most
   * `policy.maxInviteIds`). A message stored before the call is never left out; one removed a
   * moment before may still be listed (DynamoDB reads eventually consistent first), so what acts
   * on the list must do so with conditional writes (claims, deletes).
   */
  getMany(user: string, ids: readonly string[], now: number): Promise<DeferredMessageEntry[]>;
  /**
   * Take messages for one delivery (a message is claimed by one delivery at a time): for each
   * id its own conditional write leasing it to `holder` (the delivery session's id) until
   * `nowSec + leaseSeconds`, allowed when it exists, is unexpired and no other holder has a
   * live lease. The same holder may take it again (a retried job of the same session). Each id
   * stands alone, not all or nothing: one gone, expired or held by another delivery (which
   * delivers it or gives it back) is left out. Returns the ones taken with their payloads, in
   * the order of `ids` (a repeated id once). The local store reads them in one statement and keeps
   * the leases in its process's memory (one process per database; none outlives it); DynamoDB
   * sends one conditional UpdateItem each, side by side.
   */
  claimMany(
    user: string,
    ids: readonly string[],
    holder: string,
    nowSec: number,
    leaseSeconds: number,
  ): Promise<DeferredMessage[]>;
  /**
   * Give claimed messages back after a delivery that did not get a 200, so the next session can
   * deliver them at once; each only while `holder` still holds it. Returns the ids given back
   * (left out: gone, given back already, or held by another delivery).
   */
  releaseMany(user: string, ids: readonly string[], holder: string): Promise<string[]>;
  /**
   * Remove each of `ids`, whatever its lease, and take those removed off the user's summary
   * (count and bytes) together: in the same transaction (SQLite), or in one summary update after
   * the removals (DynamoDB; a crash in between leaves the count high until the sweep's recount).
   * Returns the ids that were there, in the order of `ids` (a repeated id once).
   */
  deleteMany(user: string, ids: readonly string[]): Promise<string[]>;
  /**
   * Take removals the store did not make itself off the user's summary (count and bytes):
   * DynamoDB TTL's, which `expire` counts off.
   */
  uncount(user: string, removed: Removed): Promise<void>;
  /** Messages expired at `now` across users, for the sweep (none in DynamoDB: TTL only). */
  listExpired(now: number, limit: number): Promise<DeferredMessage[]>;
  /**
   * One page of the user's unexpired messages, oldest first (the operator API and console):
   * at most `limit`, after the opaque `cursor` a previous page returned; `cursor` in the result
   * when more follow.
   */
  listPage(user: string, now: number, page: { limit: number; cursor?: string }): Promise<MessagePage>;
  /** Unexpired messages across users and how many users hold them (operator gauges). */
  stats(now: number): Promise<{ pending: number; users: number }>;
}

/**
 * What a deposit may fill, checked in the same write that counts it (no read before): over
 * one, `put` throws StoreFullError, unless the message is already stored (a duplicate is
 * answered as before). `maxStoreBytes` is held where the store keeps a total (SQLite);
 * DynamoDB holds the per-user caps only.
 */
export interface StoreLimits {
  maxMessagesPerUser: number;
  maxBytesPerUser: number;
  maxStoreBytes: number;
}

/** A deposit over a cap: the user's message count or bytes, or the whole store's bytes. */
export class StoreFullError extends Error {
  constructor(readonly cap: 'messages' | 'bytes' | 'total') {
    super(`deferred message store full (${cap})`);
    this.name = 'StoreFullError';
  }
}

/** What a removal takes off a user's summary: messages and their stored (CPIM) bytes. */
export interface Removed {
  messages: number;
  bytes: number;
}

/** The bytes a message counts against the caps: its stored CPIM payload. */
export function storedBytes(message: { cpim: Uint8Array }): number {
  return message.cpim.byteLength;
}

export interface MessagePage {
  /** Metadata only: an operator never needs the payload. */
  messages: DeferredMessageEntry[];
  cursor?: string;
}

/** One NOTIFY's counters, and the subscription they were taken from. */
export interface NotifyTurn {
  cseq: number;
  version: number;
  subscription: Subscription;
}

/**
 * The turn nextNotify would take from `sub` as stored (the dialog's next CSeq, this NOTIFY's
 * version), with the subscription as that update would leave it: endNotify's answer.
 */
export function lastTurn(sub: Subscription): NotifyTurn {
  const cseq = sub.dialog.localCSeq + 1;
  return {
    cseq,
    version: sub.version,
    subscription: { ...sub, version: sub.version + 1, dialog: { ...sub.dialog, localCSeq: cseq } },
  };
}

export interface SubscriptionStore {
  put(sub: Subscription): Promise<void>;
  get(user: string, dialogId: string, now: number): Promise<Subscription | undefined>;
  /** Active, unexpired subscriptions of a user. */
  listByUser(user: string, now: number): Promise<Subscription[]>;
  delete(user: string, dialogId: string): Promise<void>;
  /**
   * Set a new expiry on an existing subscription without touching its counters (a refresh), the
   * dialog's remote CSeq when given (RFC 3261 §12.2.2), and the flow the refresh came on when
   * given: the subscription moves to the edge task that holds the client now (a replaced task's
   * address is dead). False when it no longer exists. One conditional UpdateItem.
   */
  renew(user: string, dialogId: string, expiresAt: number, remoteCSeq?: number, flow?: Flow): Promise<boolean>;
  /**
   * Atomically take the next CSeq and NOTIFY version of a dialog (single-item update), with the
   * subscription as that update left it (its flow, expiry and state: the same write returns
   * them, so a NOTIFY for a dialog known by id needs no read of its own). Returns undefined when
   * the subscription no longer exists.
   */
  nextNotify(user: string, dialogId: string): Promise<NotifyTurn | undefined>;
  /**
   * End a subscription (an unsubscribe, its expiry): take its last NOTIFY's counters as
   * nextNotify would and remove it, in one write (a delete returning the old item). Returns
   * undefined when it no longer exists.
   */
  endNotify(user: string, dialogId: string): Promise<NotifyTurn | undefined>;
  /** Subscriptions expired at `now`, for the sweep. */
  listExpired(now: number, limit: number): Promise<Subscription[]>;
  /** Unexpired subscriptions across users (operator gauge). */
  countActive(now: number): Promise<number>;
}

export interface DeliverySessionStore {
  put(session: DeliverySession): Promise<void>;
  get(sessionId: string): Promise<DeliverySession | undefined>;
  update(sessionId: string, patch: Partial<Pick<DeliverySession, 'state' | 'retrieve'>>): Promise<void>;
  /**
   * Take the session for one delivery attempt: one conditional write setting `state` to
   * 'delivering' and `leaseUntil` to `nowSec + leaseSeconds`, allowed when the session exists,
   * is unexpired and is 'waiting' or 'delivering' with a lease that ran out. False when it is
   * done, missing, or another attempt holds a live lease (SQS may run a job twice at once).
   */
  claim(sessionId: string, nowSec: number, leaseSeconds: number): Promise<boolean>;
  /**
   * Give a claimed session back ('waiting', no lease) so a retry need not wait out the lease;
   * only while it is still 'delivering' under this `leaseUntil`, so a later holder keeps its own.
   */
  release(sessionId: string, leaseUntil: number): Promise<void>;
  /** Atomically take the next CSeq of the session's dialog (for BYE). */
  nextCSeq(sessionId: string): Promise<number | undefined>;
  /**
   * Take a session for one delivery attempt, storing it from its job when it is not stored
   * yet: one conditional write leaves it 'delivering', leased until `nowSec + leaseSeconds`,
   * with the dialog's next CSeq taken for BYE (RFC 3261 §12.2.1.1). Allowed when it is absent,
   * 'waiting', or 'delivering' with a lease that ran out, and not expired. Returns BYE's CSeq,
   * or undefined when another attempt holds it or it expired. The session stays 'delivering'
   * after the attempt (no further write); its lease keeps a second copy of the job out.
   */
  begin(session: DeliverySession, nowSec: number, leaseSeconds: number): Promise<number | undefined>;
  delete(sessionId: string): Promise<void>;
}

export interface DeliveryQueue {
  enqueue(job: DeliveryJob): Promise<void>;
  /** Queue an edge's report of a hand-off, for `deliver` to settle (same queue, same consumer). */
  report(report: DeliveryReport): Promise<void>;
}

/** The edge task that holds a client's flow or MSRP connection, seen from a handler. */
export interface EdgeGateway {
  /** Send an in-dialog request (NOTIFY, BYE) and wait for its final response. */
  send(edgeId: string, request: InDialogRequestSpec): Promise<{ status: number; retryAfter?: number }>;
  /**
   * Hand claimed messages to the edge holding the session's MSRP connection. Resolves once the
   * edge took them; it SENDs them in the background (waiting for the client to connect first,
   * protocol.md: 30 s), stops at 408/481 or the deadline, and after the final part queues a
   * DeliveryReport with each message's status on the delivery queue. Never deletes anything.
   * Repeating a part is harmless: the edge sends each message of a session once.
   */
  transfer(edgeId: string, transfer: DeliveryTransfer): Promise<void>;
  /** Forget the session's MSRP binding and close its connection. */
  closeSession(edgeId: string, sessionId: string): Promise<void>;
}

/** What a change fan-out knows of a change, passed on to the NOTIFYs it causes. */
export interface ChangeDetail {
  /** The watchers' dialogs on the edge told (the NOTIFYs need not list them again). */
  dialogIds?: readonly string[];
  /**
   * The user's summary revision after the change (DeferredMessageStore.count's `seen`): the
   * NOTIFYs' count must include it, so it may be read eventually consistent.
   */
  revision?: number;
}

/** Tells the edges holding a user's subscriptions that the user's list changed. */
export interface ChangeFeed {
  userChanged(user: string): Promise<void>;
}

/**
 * How the edge reaches the handlers that decide (architecture.md: Lambda RequestResponse in AWS, a
 * direct call in the local default). A rejection means the handler could not be reached in
 * time; the edge answers 503 with Retry-After.
 */
export interface HandlerInvoker {
  subscribe(event: SipRequestEvent | SubscriptionSignal): Promise<SipHandlerResult>;
  invite(event: SipRequestEvent): Promise<SipHandlerResult>;
  deposit(event: SipRequestEvent): Promise<SipHandlerResult>;
}

/** Events the edge sends the subscribe handler without a SIP request behind them. */
export type SubscriptionSignal =
  | { type: 'notify-failed'; user: string; dialogId: string; status: number }
  /**
   * With `edgeId`, only the subscriptions that edge task holds are notified. With `dialogIds`,
   * those dialogs (the ones the change fan-out found on that edge) are notified without listing
   * the user's subscriptions a second time; with `revision`, the count read must include it.
   */
  | { type: 'user-changed'; user: string; edgeId?: string; dialogIds?: string[]; revision?: number };

/**
 * Requests the service originates outside any dialog, handed to whichever edge task sends them
 * (architecture.md: handlers never open a socket).
 */
export interface ImdnOutbox {
  /**
   * Have the edge send the message's sender an IMDN `failed` (RFC 5438 §7.2.1.1; protocol.md
   * "Deposit", last point). Resolves once the job is durably queued, not when it is sent.
   */
  failed(message: DeferredMessageEntry): Promise<void>;
}
