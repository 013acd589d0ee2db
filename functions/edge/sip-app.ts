/**
 * The edge's user agent core (RFC 3261 §8.2, §12, §15): takes each new request from the
 * transaction layer, answers what the edge itself owns (OPTIONS, BYE, unsupported methods) and
 * hands SUBSCRIBE, INVITE and MESSAGE to the handlers, which decide everything about deferred
 * messages. It then sends the handler's response, the NOTIFYs it built, and arms MSRP delivery.
 */
import type { Flow } from '#shared/sip/dialog/index.ts';
import { CPIM_CONTENT_TYPE, EVENT_PACKAGE, LIST_CONTENT_TYPE } from '#shared/deferred/names.ts';
import type { SipHandlerResult } from '#shared/events.ts';
import type { MsrpClientBinding } from '#shared/msrp/listener.ts';
import type { HandlerInvoker } from '#shared/ports.ts';
import { eventOfRequest } from '#shared/service/sip-event.ts';
import { dialogIdOf, newTag, recordRouteCopy } from '#shared/sip/dialog/index.ts';
import {
  createResponse,
  getHeader,
  getHeaders,
  parseMediaType,
  parseNameAddr,
  parseUri,
} from '#shared/sip/messages/index.ts';
import type { Header, SipRequest, SipResponse } from '#shared/sip/messages/types.ts';
import type { ServerTransaction } from '#shared/sip/transaction/index.ts';
import type { Source } from '#shared/sip/transport/index.ts';
import { failureStatus } from './handler-failure.ts';
import type { InDialogSender } from './in-dialog-sender.ts';
import type { OverloadGate, Refusal } from './overload-gate.ts';

/** Methods this UAS implements; everything else it knows of gets 405 with this Allow (RFC 3261 §8.2.1). */
export const ALLOWED_METHODS = ['INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'SUBSCRIBE', 'MESSAGE'] as const;
/** Methods from RFC 3261 and its extensions this UAS recognises but does not serve. */
const KNOWN_METHODS = new Set(['REGISTER', 'NOTIFY', 'PUBLISH', 'INFO', 'UPDATE', 'REFER', 'PRACK']);
/** Bodies an INVITE may carry here: the SDP offer and the action list, alone or together. */
const INVITE_BODY_TYPES = ['multipart/mixed', 'application/sdp', LIST_CONTENT_TYPE];
/** No option tags are supported; a Require naming any gets 420 (RFC 3261 §8.2.2.3). */
const SUPPORTED_OPTION_TAGS = new Set<string>();
/** Methods whose work is the handlers' (a store call); only these are ever refused for load. */
const HANDLER_METHODS = new Set(['SUBSCRIBE', 'INVITE', 'MESSAGE']);
/**
 * RFC 3261 §20.33: how long a refused client should wait. Seconds, so a shed client's retry
 * lands after the burst; RFC 3261 §21.5.4 lets the 503 carry it.
 */
export const RETRY_AFTER_SECONDS = 5;

export interface TransactionPort {
  onRequest(cb: (req: SipRequest, tx: ServerTransaction) => void): void;
  onAck(cb: (ack: SipRequest, source: Source) => void): void;
  onAckTimeout(cb: (invite: SipRequest) => void): void;
}

export interface MsrpPort {
  /** `binding.clientAddress`: a direct client's source address, the only one its MSRP connection may come from. */
  expect(sessionId: string, clientPath: string, binding?: MsrpClientBinding): void;
  closeSession(sessionId: string): void;
}

export interface SipAppDeps {
  transactions: TransactionPort;
  invoker: HandlerInvoker;
  sender: InDialogSender;
  msrp: MsrpPort;
  edgeId: string;
  isTrusted: (address: string) => boolean;
  /** Sources admitted as direct clients (their From is their identity); others must be trusted peers. */
  isDirectClient: (address: string) => boolean;
  /** The service's Contact for a transport the request came on (RFC 3261 §12.1.1). */
  contactFor: (source: Source) => string;
  userChanged: (user: string) => Promise<void>;
  /** Admission of handler work (load shedding); shared with the HTTP deposits. */
  gate: OverloadGate;
  /** Longest wait for the ACK of a session's 2xx before in-dialog requests go anyway (64*T1). */
  ackWaitMs?: number;
  onRequest?: (method: string) => void;
  /** Every response to a received request, with the time since the request reached the app. */
  onResponse?: (method: string, status: number, elapsedMs: number) => void;
  /** A request refused with 503 + Retry-After for load (the gate's reason). */
  onShed?: (reason: Refusal) => void;
  log?: (level: 'debug' | 'info' | 'warn' | 'error', msg: string, extra?: object) => void;
}

/** An INVITE dialog the edge holds for its MSRP delivery session. */
interface SessionDialog {
  sessionId: string;
  ackSeen: () => void;
}

/** A session's INVITE dialog, by the session's id (the flow ladder asks at every MSRP message). */
interface DialogOfSession {
  dialogId: string;
  callId: string;
}

/** How often the dialogs of closed sessions are looked at (`msrpSessionClosed`). */
const CLOSED_SWEEP_MS = 1_000;

export class SipApp {
  private readonly sessionDialogs = new Map<string, SessionDialog>();
  /** The same dialogs by session id. */
  private readonly dialogOfSession = new Map<string, DialogOfSession>();
  /**
   * Session dialogs a BYE ended (either side's), each until when it is remembered, oldest first:
   * the service's BYE for one of them is not sent again (see `byeWanted`).
   */
  private readonly endedDialogs = new Map<string, number>();
  /**
   * Sessions whose MSRP side closed, each until when its dialog is kept, oldest first (one wait
   * for all): a Map and one sweep, not a Node timer per session held for 64 s.
   */
  private readonly closedSessions = new Map<string, number>();
  private closedSweep: NodeJS.Timeout | undefined;
  /** INVITEs being handled, by Call-ID, until answered (see `inviteAnswered`). */
  private readonly invitesInHand = new Map<string, Promise<void>>();
  private readonly arrivals = new WeakMap<SipRequest, number>();

  constructor(private readonly deps: SipAppDeps) {
    deps.transactions.onRequest((req, tx) => {
      void this.handle(req, tx).catch((err: unknown) => {
        deps.log?.('error', 'request handling failed', { method: req.method, error: String(err) });
        this.respond(tx, req, 500, { reason: 'Server Internal Error' });
      });
    });
    deps.transactions.onAck((ack) => this.sessionDialogs.get(dialogIdOf(ack))?.ackSeen());
    // RFC 3261 §13.3.1.4: no ACK within 64*T1 -> the dialog is dead; let a BYE through anyway.
    deps.transactions.onAckTimeout((invite) => {
      for (const [id, d] of this.sessionDialogs) if (id.startsWith(`${getHeader(invite, 'Call-ID')};`)) d.ackSeen();
    });
  }

  /** Sessions whose INVITE dialogs are still up (for the dashboard). */
  get openSessions(): number {
    return this.sessionDialogs.size;
  }

  /** The Call-ID of the INVITE dialog that owns an MSRP session (the flow ladder). */
  callIdOfSession(sessionId: string): string | undefined {
    return this.dialogOfSession.get(sessionId)?.callId;
  }

  /** Forget a session dialog (both maps). */
  private dropSessionDialog(dialogId: string): SessionDialog | undefined {
    const dialog = this.sessionDialogs.get(dialogId);
    if (!dialog) return undefined;
    this.sessionDialogs.delete(dialogId);
    if (this.dialogOfSession.get(dialog.sessionId)?.dialogId === dialogId)
      this.dialogOfSession.delete(dialog.sessionId);
    return dialog;
  }

  private async handle(req: SipRequest, tx: ServerTransaction): Promise<void> {
    this.arrivals.set(req, performance.now());
    this.deps.onRequest?.(req.method);
    if (HANDLER_METHODS.has(req.method)) {
      // Admission first, before the URI, the body or any store call is looked at: a refused
      // request costs its 503 only. Its server transaction keeps the 503 and sends it again for
      // each retransmission (RFC 3261 §17.2.2, §17.2.1), so the retransmission is not new work.
      const refusal = this.deps.gate.refusal(toTagOf(req) !== undefined);
      if (refusal) {
        this.deps.onShed?.(refusal);
        return this.respond(tx, req, 503, { reason: 'Service Unavailable', headers: [retryAfter()] });
      }
    }
    // RFC 3261 §8.2.2.1: an unsupported Request-URI scheme gets 416.
    const uri = parseUri(req.uri);
    if (!uri || !['sip', 'sips', 'tel'].includes(uri.scheme)) {
      return this.respond(tx, req, 416, { reason: 'Unsupported URI Scheme' });
    }
    // RFC 3261 §8.2.2.3: Require with option tags we do not support -> 420 listing them.
    const unsupported = getHeaders(req, 'Require').filter((t) => !SUPPORTED_OPTION_TAGS.has(t.toLowerCase()));
    if (unsupported.length > 0) {
      return this.respond(tx, req, 420, { headers: [{ name: 'Unsupported', value: unsupported.join(', ') }] });
    }
    switch (req.method) {
      case 'OPTIONS':
        return this.respond(tx, req, 200, { headers: this.capabilities() });
      case 'SUBSCRIBE':
        return this.viaHandler(req, tx, (e) => this.deps.invoker.subscribe(e));
      case 'INVITE':
        if (toTagOf(req)) return this.respond(tx, req, 481, { reason: 'Call/Transaction Does Not Exist' });
        // RFC 3261 §8.2.3: a body type or encoding the UAS cannot handle gets 415 with what it accepts.
        if (!bodyUnderstood(req, INVITE_BODY_TYPES)) {
          return this.respond(tx, req, 415, {
            headers: [
              { name: 'Accept', value: INVITE_BODY_TYPES.join(', ') },
              { name: 'Accept-Encoding', value: 'identity' },
            ],
          });
        }
        return this.viaHandler(req, tx, (e) => this.deps.invoker.invite(e));
      case 'MESSAGE':
        if (toTagOf(req)) return this.respond(tx, req, 481, { reason: 'Call/Transaction Does Not Exist' });
        return this.viaHandler(req, tx, (e) => this.deps.invoker.deposit(e));
      case 'BYE':
        return this.bye(req, tx);
      default:
        if (KNOWN_METHODS.has(req.method)) {
          return this.respond(tx, req, 405, { headers: [{ name: 'Allow', value: ALLOWED_METHODS.join(', ') }] });
        }
        // RFC 3261 §21.5.2: a method the UAS does not recognise.
        return this.respond(tx, req, 501, {
          reason: 'Not Implemented',
          headers: [{ name: 'Allow', value: ALLOWED_METHODS.join(', ') }],
        });
    }
  }

  private capabilities(): Header[] {
    return [
      { name: 'Allow', value: ALLOWED_METHODS.join(', ') },
      { name: 'Accept', value: `application/sdp, multipart/mixed, ${LIST_CONTENT_TYPE}, ${CPIM_CONTENT_TYPE}` },
      { name: 'Allow-Events', value: EVENT_PACKAGE },
    ];
  }

  /** RFC 3261 §15.1.2: BYE ends the delivery session's dialog; undelivered messages stay deferred. */
  private bye(req: SipRequest, tx: ServerTransaction): void {
    const id = dialogIdOf(req);
    const dialog = this.dropSessionDialog(id);
    if (!dialog) return this.respond(tx, req, 481, { reason: 'Call/Transaction Does Not Exist' });
    this.remember(id);
    dialog.ackSeen();
    this.deps.msrp.closeSession(dialog.sessionId);
    this.respond(tx, req, 200);
  }

  /**
   * Whether the service's BYE for a session dialog should go out: not when a BYE already ended
   * it (RFC 3261 §15: BYE terminates the dialog; the UA would answer a second one 481). A
   * delivery report settled twice (the delivery queue delivers at least once) asks twice; so
   * does a report settled after the client hung up. True marks it ended: of two asking at once,
   * one sends. Remembered as long as an ended session's dialog is kept (`msrpSessionClosed`).
   */
  byeWanted(dialogId: string): boolean {
    this.forgetEnded();
    if (this.endedDialogs.has(dialogId)) return false;
    this.remember(dialogId);
    return true;
  }

  private remember(dialogId: string): void {
    this.forgetEnded();
    this.endedDialogs.delete(dialogId);
    this.endedDialogs.set(dialogId, Date.now() + 2 * (this.deps.ackWaitMs ?? 32_000));
  }

  /** Oldest first (insertion order, one lifetime for all): stop at the first still remembered. */
  private forgetEnded(): void {
    const now = Date.now();
    for (const [id, until] of this.endedDialogs) {
      if (until > now) break;
      this.endedDialogs.delete(id);
    }
  }

  /** The service ended a session dialog itself (its BYE went out). */
  sessionEnded(dialogId: string): void {
    this.dropSessionDialog(dialogId)?.ackSeen();
  }

  /**
   * The MSRP session is over (delivered, never connected, or its connection closed). Its dialog is
   * forgotten a little later, leaving time for the BYE in either direction; a session whose BYE
   * never comes (its job in the dead-letter queue) does not stay forever.
   */
  msrpSessionClosed(sessionId: string): void {
    this.closedSessions.delete(sessionId);
    this.closedSessions.set(sessionId, Date.now() + 2 * (this.deps.ackWaitMs ?? 32_000));
    if (this.closedSweep) return;
    this.closedSweep = setInterval(() => this.forgetClosedSessions(), CLOSED_SWEEP_MS);
    this.closedSweep.unref();
  }

  /** The dialogs of sessions closed long enough ago are forgotten; the sweep stops with none left. */
  private forgetClosedSessions(): void {
    const now = Date.now();
    for (const [sessionId, until] of this.closedSessions) {
      if (until > now) break;
      this.closedSessions.delete(sessionId);
      const dialog = this.dialogOfSession.get(sessionId);
      if (dialog) this.sessionEnded(dialog.dialogId);
    }
    if (this.closedSessions.size === 0) {
      clearInterval(this.closedSweep);
      this.closedSweep = undefined;
    }
  }

  /**
   * Resolves once the INVITE of this Call-ID that is being handled has been answered, its ACK
   * gate set (at once when none is). RFC 3261 §15: the callee sends BYE only after the ACK for its
   * 2xx (or its timeout). A delivery with nothing to send asks for the BYE as soon as the INVITE's
   * handler has queued its job, which can come before the 2xx and the gate that holds the BYE.
   */
  inviteAnswered(callId: string): Promise<void> {
    return this.invitesInHand.get(callId) ?? Promise.resolve();
  }

  private async viaHandler(
    req: SipRequest,
    tx: ServerTransaction,
    call: (event: ReturnType<typeof eventOfRequest>) => Promise<SipHandlerResult>,
  ): Promise<void> {
    if (req.method !== 'INVITE') return this.callHandler(req, tx, call);
    const callId = getHeader(req, 'Call-ID') ?? '';
    let answered: () => void = () => undefined;
    const inHand = new Promise<void>((resolve) => (answered = resolve));
    this.invitesInHand.set(callId, inHand);
    try {
      await this.callHandler(req, tx, call);
    } finally {
      if (this.invitesInHand.get(callId) === inHand) this.invitesInHand.delete(callId);
      answered();
    }
  }

  private async callHandler(
    req: SipRequest,
    tx: ServerTransaction,
    call: (event: ReturnType<typeof eventOfRequest>) => Promise<SipHandlerResult>,
  ): Promise<void> {
    const source = tx.source;
    const trusted = this.deps.isTrusted(source.remoteAddress);
    if (!trusted && !this.deps.isDirectClient(source.remoteAddress)) {
      // protocol.md "Who is asking": without the SIP/IP Core's assertion, only admitted direct
      // clients may name themselves in From; anyone else could claim any user's list.
      return this.respond(tx, req, 403, { reason: 'Forbidden - Not from the SIP/IP Core' });
    }
    // RFC 3325 §5: P-Asserted-Identity from outside the trust domain is removed and ignored.
    const request = trusted ? req : { ...req, headers: req.headers.filter((h) => h.name !== 'P-Asserted-Identity') };
    const flow: Flow = {
      edgeId: this.deps.edgeId,
      transport: source.transport,
      remoteAddress: source.remoteAddress,
      remotePort: source.remotePort,
      ...(source.connectionId ? { connectionId: source.connectionId } : {}),
    };
    let result: SipHandlerResult;
    try {
      result = await this.deps.gate.run(() => call(eventOfRequest(request, flow, trusted)));
    } catch (err) {
      if (failureStatus(err) === 500) {
        this.deps.log?.('error', 'handler failed', { method: req.method, error: String(err) });
        return this.respond(tx, req, 500, { reason: 'Server Internal Error' });
      }
      this.deps.log?.('warn', 'handler unreachable', { method: req.method, error: String(err) });
      return this.respond(tx, req, 503, { reason: 'Service Unavailable', headers: [retryAfter()] });
    }

    const spec = result.response;
    const ok = spec.status >= 200 && spec.status < 300;
    const dialogCreating = ok && (req.method === 'SUBSCRIBE' || req.method === 'INVITE') && spec.toTag !== undefined;
    if (req.method === 'INVITE' && tx.cancelled) {
      // CANCEL won the race (RFC 3261 §9.2): the 487 is out; the session will never be connected.
      // Deletions the handler already made stand, so the watchers still hear of them.
      if (result.session) this.deps.msrp.closeSession(result.session.sessionId);
      for (const user of result.changedUsers ?? []) void this.deps.userChanged(user);
      return;
    }
    if (req.method === 'INVITE' && ok && result.session) {
      const session = result.session;
      try {
        // Issue 11 item 5: a direct client's MSRP connection must come from where its INVITE did.
        this.deps.msrp.expect(session.sessionId, session.clientPath, {
          ...(session.secure ? { secure: true } : {}),
          ...(trusted ? {} : { clientAddress: source.remoteAddress }),
          ...(session.clientFingerprint ? { clientFingerprint: session.clientFingerprint } : {}),
        });
      } catch (err) {
        // The handler accepted an offer whose path the MSRP layer cannot use (RFC 4975 §9).
        this.deps.log?.('warn', 'MSRP session refused', { error: String(err) });
        return this.respond(tx, req, 488, { reason: 'Not Acceptable Here - Unusable MSRP path' });
      }
      const { ack, ackSeen } = ackGate(this.deps.ackWaitMs ?? 32_000);
      this.sessionDialogs.set(session.dialogId, { sessionId: session.sessionId, ackSeen });
      this.dialogOfSession.set(session.sessionId, {
        dialogId: session.dialogId,
        callId: session.dialogId.split(';', 1)[0]!,
      });
      this.deps.sender.hold(session.dialogId, ack);
    }
    this.respond(tx, req, spec.status, {
      ...(spec.reason ? { reason: spec.reason } : {}),
      ...(spec.toTag ? { toTag: spec.toTag } : {}),
      headers: [
        ...(spec.headers ?? []),
        ...(dialogCreating ? [...recordRouteCopy(req), { name: 'Contact', value: this.deps.contactFor(source) }] : []),
      ],
      ...(spec.body !== undefined ? { body: Buffer.from(spec.body, 'base64') } : {}),
      ...(spec.contentType ? { contentType: spec.contentType } : {}),
    });
    for (const request of result.requests ?? []) {
      void this.deps.sender.send(request).catch((err: unknown) => {
        this.deps.log?.('warn', 'in-dialog request failed', { method: request.method, error: String(err) });
      });
    }
    for (const user of result.changedUsers ?? []) void this.deps.userChanged(user);
  }

  private respond(
    tx: ServerTransaction,
    req: SipRequest,
    status: number,
    opts: { reason?: string; toTag?: string; headers?: Header[]; body?: Buffer; contentType?: string } = {},
  ): void {
    // RFC 3261 §8.2.6.2: a final response outside a dialog gets a To tag of ours (one in the
    // request's To is kept); only 100 Trying may go without.
    const toTag = opts.toTag ?? (status > 100 ? newTag() : undefined);
    const response: SipResponse = createResponse(req, status, { ...opts, ...(toTag ? { toTag } : {}) });
    const arrived = this.arrivals.get(req);
    this.deps.onResponse?.(req.method, status, arrived === undefined ? 0 : performance.now() - arrived);
    tx.respond(response);
  }
}

function bodyUnderstood(req: SipRequest, types: readonly string[]): boolean {
  if (req.body.length === 0) return true;
  const encoding = getHeader(req, 'Content-Encoding');
  if (encoding && encoding.trim().toLowerCase() !== 'identity') return false;
  const media = parseMediaType(getHeader(req, 'Content-Type') ?? '');
  return media !== undefined && types.includes(`${media.type}/${media.subtype}`);
}

function retryAfter(): Header {
  return { name: 'Retry-After', value: String(RETRY_AFTER_SECONDS) };
}

function toTagOf(req: SipRequest): string | undefined {
  const to = getHeader(req, 'To');
  return (to ? parseNameAddr(to)?.params.tag : undefined) ?? undefined;
}

/**
 * The gate that holds a session's BYE until the ACK for its 2xx (RFC 3261 §15), opened without one
 * after `waitMs` (the 2xx could not be sent, §13.3.1.4: 64*T1). Its timer is cleared when the ACK
 * opens it, and it is made here, away from the handler's scope: a closure made in the handler
 * would keep the handler's whole context (the INVITE as parsed, its transaction) for those 32 s.
 */
function ackGate(waitMs: number): { ack: Promise<void>; ackSeen: () => void } {
  let open!: () => void;
  const ack = new Promise<void>((resolve) => (open = resolve));
  const timer = setTimeout(() => open(), waitMs);
  timer.unref();
  return {
    ack,
    ackSeen: () => {
      clearTimeout(timer);
      open();
    },
  };
}
