/**
 * Records of the deferred-messaging domain. Plain data: what DynamoDB stores and what the
 * handlers pass around. Times are ISO-8601 strings; `expiresAt` is epoch seconds (DynamoDB TTL).
 */
import type { DialogState } from '#shared/sip/dialog/types.ts';

export type { DialogState, Flow } from '#shared/sip/dialog/types.ts';

/** A message stored for a user who was away (one DynamoDB item). */
export interface DeferredMessage {
  /** Served user, normalised SIP URI (RFC 3261 §19.1.4): the partition key. */
  user: string;
  /** Opaque, URL-safe handle shown in the list (a ULID); the sort key is `${arrivedAt}#${id}`. */
  id: string;
  /** The original imdn.Message-ID. */
  messageId: string;
  /** Sender URI as in CPIM From (used with messageId for idempotent deposit). */
  from: string;
  to: string;
  /** CPIM DateTime (ISO-8601). */
  date: string;
  subject?: string;
  /** Content-Type of the inner payload, e.g. "text/plain;charset=UTF-8". */
  contentType: string;
  /** Size in octets of the inner payload. */
  size: number;
  conversationId?: string;
  contributionId?: string;
  /** imdn.Disposition-Notification, e.g. "positive-delivery, display". */
  dispositionNotification?: string;
  /**
   * The whole message/cpim payload as deposited (or as wrapped by the service). Possibly a view
   * into a larger, shared ArrayBuffer (node's buffer pool, an SDK's response): read it through its
   * byteOffset and byteLength, never its `.buffer` whole.
   */
  cpim: Uint8Array;
  /** When the service stored it (ISO-8601). */
  arrivedAt: string;
  /** Epoch seconds after which it is gone (retention). */
  expiresAt: number;
}

/**
 * A stored message without its payload: what the list (NOTIFY, operator API) and an INVITE's
 * lookups need. Stores read it from a projection without the payload, so its cost does not
 * grow with the message size.
 */
export type DeferredMessageEntry = Omit<DeferredMessage, 'cpim'>;

export interface Subscription {
  user: string;
  /** `${callId};${localTag};${remoteTag}` */
  dialogId: string;
  dialog: DialogState;
  /** Count of NOTIFYs sent in this subscription (the list's `version`). */
  version: number;
  /** Epoch seconds when the subscription runs out. */
  expiresAt: number;
  state: 'active' | 'terminated';
}

/** An INVITE's delivery session: the retrievals it asked for, delivered over MSRP. */
export interface DeliverySession {
  user: string;
  /** MSRP session id (the last path segment of our a=path). */
  sessionId: string;
  dialogId: string;
  dialog: DialogState;
  /** Entry ids to deliver, oldest first. */
  retrieve: string[];
  /** The client's MSRP path (its a=path), used as To-Path. */
  clientPath: string;
  /** Our MSRP path (our a=path), used as From-Path. */
  localPath: string;
  state: 'waiting' | 'delivering' | 'done';
  /** Epoch seconds until which the attempt that claimed the session holds it ('delivering'). */
  leaseUntil?: number;
  createdAt: string;
  expiresAt: number;
}

/** A delivery job on the queue: one session, all of its retrievals. */
export interface DeliveryJob {
  user: string;
  sessionId: string;
  /** The edge task that owns the MSRP connection for this session. */
  edgeId: string;
  /**
   * The session itself: the delivery stores it when it takes it (`DeliverySessionStore.begin`),
   * so the INVITE writes nothing. Absent in jobs queued before it was carried: read from the store.
   */
  session?: DeliverySession;
}

/**
 * One part of a session's hand-off to the edge task holding its MSRP connection
 * (EdgeGateway.transfer): the messages `deliver` claimed, which the edge SENDs in order in the
 * background. Once it has sent the final part (or at `deadline`) it queues a DeliveryReport.
 */
export interface DeliveryTransfer {
  user: string;
  sessionId: string;
  /** The edge task that owns the MSRP connection. */
  edgeId: string;
  /** The INVITE dialog, for the BYE that ends the session once the report is settled. */
  dialog: DialogState;
  byeCSeq: number;
  /**
   * Epoch ms: no SEND starts after this (the claims' leases end soon after); the edge reports
   * then even when the final part never came.
   */
  deadline: number;
  messages: TransferredMessage[];
  /** The last part: the edge reports once it has sent it. */
  final: boolean;
}

/** A claimed message as handed to the edge: what its SEND and its settling need. */
export interface TransferredMessage {
  id: string;
  cpim: Uint8Array;
  /** What the report hands back for the delivery metrics. */
  arrivedAt: string;
  from: string;
  /**
   * Its stored bytes (storedBytes), reported back with its status. Settling does not read it (a
   * delete counts off the bytes it removed); the control API (admin-server) still requires it.
   */
  bytes: number;
}

/**
 * What the edge queued on the delivery queue after a hand-off: each message's MSRP status (200
 * delivered; 408/481 also for those not sent after a stop or past the deadline), for `deliver`
 * to settle (delete on 200, release the rest, count, close, BYE, fan-out).
 */
export interface DeliveryReport {
  type: 'delivery-report';
  user: string;
  sessionId: string;
  edgeId: string;
  dialog: DialogState;
  byeCSeq: number;
  results: DeliveryResult[];
}

export interface DeliveryResult {
  id: string;
  status: number;
  /** False when the edge stopped before sending it (an earlier 408/481, or the deadline). */
  sent: boolean;
  arrivedAt: string;
  from: string;
  bytes: number;
}

/**
 * An IMDN `failed` to send (RFC 5438 §7.2.1.1): what the notification names of the dropped
 * message, never its payload. `id` is the store's handle, kept for the logs.
 */
export type FailureImdnJob = Pick<DeferredMessage, 'user' | 'id' | 'messageId' | 'from' | 'to' | 'date'>;
