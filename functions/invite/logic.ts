/**
 * INVITE naming an action per selected message (protocol.md "INVITE with actions"), steps
 * 10-13 of Figure 30: deletions are done before the 200; retrievals become a delivery session
 * queued on SQS, delivered over MSRP once the client connects to the path in the SDP answer.
 */
import type { SipHandlerResult, SipRequestEvent } from '#shared/events.ts';
import type { DeferredMessageEntry, DeliverySession } from '#shared/deferred/model.ts';
import { parseDispositionNotification } from '#shared/cpim/imdn.ts';
import { decodeActionList } from '#shared/deferred/actions.ts';
import { compareOldestFirst } from '#shared/deferred/list-codec.ts';
import { LIST_CONTENT_TYPE } from '#shared/deferred/names.ts';
import type { Policy } from '#shared/deferred/policy.ts';
import { getHeader, parseMediaType, parseMultipart } from '#shared/sip/messages/index.ts';
import type { SipRequest } from '#shared/sip/messages/types.ts';
import { createUasDialog, dialogIdOf } from '#shared/sip/dialog/index.ts';
import type { CertificateFingerprint } from '#shared/msrp/fingerprint.ts';
import { buildMsrpAnswer, offerRoleProblem, parseMsrpOffer } from '#shared/sdp/msrp-sdp.ts';
import type { DeferredMessageStore, DeliveryQueue, DeliverySessionStore } from '#shared/ports.ts';
import { servedUser, targetsOwnList } from '#shared/service/identity.ts';
import { reply, requestOfEvent } from '#shared/service/sip-event.ts';

export interface InviteDeps {
  messages: DeferredMessageStore;
  sessions: DeliverySessionStore;
  queue: DeliveryQueue;
  policy: Policy;
  serviceUris: string[];
  /** Where clients reach the MSRP listener (advertised in the SDP answer). */
  msrp: { host: string; port: number };
  /**
   * Where clients reach MSRP over TLS (the edge's own TLS listener, or a load balancer's), and
   * the fingerprint of the certificate presented there when the edge ends TLS itself. An offer
   * of TCP/TLS/MSRP, or an INVITE that came over TLS, gets an msrps: path there (RFC 4975 §15);
   * other INVITEs the plain one. Unset: an offer of TCP/TLS/MSRP gets 488.
   */
  msrps?: MsrpsEndpoint;
  newTag: () => string;
  /** A fresh MSRP session id for a session held by the edge task `edgeId` (the flow's). */
  newSessionId: (edgeId: string) => string;
  now: () => number;
  /**
   * A deleted message whose sender asked for negative-delivery gets an IMDN `failed`
   * (protocol.md "Deposit", last point; RFC 5438 §7.2.1.1).
   */
  sendFailureImdn?: (message: DeferredMessageEntry) => Promise<void>;
}

export interface MsrpsEndpoint {
  host: string;
  port: number;
  /** RFC 8122 §5: announced in the answer's a=fingerprint. */
  fingerprint?: CertificateFingerprint;
}

const ACCEPTED_BODY = `multipart/mixed, application/sdp, ${LIST_CONTENT_TYPE}`;

/** The SDP offer and the action list out of the INVITE body (RFC 2046 §5.1 multipart/mixed). */
function bodyParts(request: SipRequest): { sdp?: string; list?: string } {
  const contentType = getHeader(request, 'Content-Type');
  if (!contentType || request.body.length === 0) return {};
  const media = parseMediaType(contentType);
  if (!media) return {};
  const type = `${media.type}/${media.subtype}`.toLowerCase();
  if (type === 'application/sdp') return { sdp: request.body.toString('utf8') };
  if (type === LIST_CONTENT_TYPE) return { list: request.body.toString('utf8') };
  if (type !== 'multipart/mixed') return {};
  const out: { sdp?: string; list?: string } = {};
  for (const part of parseMultipart(request.body, contentType) ?? []) {
    const partType = part.headers.find((h) => h.name.toLowerCase() === 'content-type')?.value;
    const pm = partType ? parseMediaType(partType) : undefined;
    const t = pm ? `${pm.type}/${pm.subtype}`.toLowerCase() : 'text/plain';
    if (t === 'application/sdp' && out.sdp === undefined) out.sdp = part.body.toString('utf8');
    if (t === LIST_CONTENT_TYPE && out.list === undefined) out.list = part.body.toString('utf8');
  }
  return out;
}

export function makeHandler(deps: InviteDeps) {
  return async function invite(event: SipRequestEvent): Promise<SipHandlerResult> {
    const request = requestOfEvent(event);
    const nowMs = deps.now();
    const nowSec = Math.floor(nowMs / 1000);

    const user = servedUser(request, event.trusted);
    if (!user) return { response: reply(400, 'Bad Request - No usable identity') };
    if (!targetsOwnList(request, user, deps.serviceUris)) {
      return { response: reply(403, 'Forbidden - Not your deferred-message list') };
    }
    if (request.body.length > deps.policy.maxInviteBodyBytes) {
      return { response: reply(413, 'Request Entity Too Large') };
    }

    const parts = bodyParts(request);
    if (parts.list === undefined) {
      return { response: reply(415, 'Unsupported Media Type', [{ name: 'Accept', value: ACCEPTED_BODY }]) };
    }
    const actions = decodeActionList(parts.list);
    if (!actions.ok) return { response: reply(400, `Bad Request - ${actions.reason}`) };
    if (parts.sdp === undefined) return { response: reply(488, 'Not Acceptable Here - No SDP offer') };
    const offer = parseMsrpOffer(parts.sdp);
    if (!offer.ok) return { response: reply(offer.status, offer.reason) };
    const roleProblem = offerRoleProblem(offer);
    if (roleProblem) return { response: reply(488, roleProblem) };
    // RFC 3264 §6: the answer keeps the offered transport; without MSRP over TLS here, refuse it.
    if (offer.tls && !deps.msrps) {
      return { response: reply(488, 'Not Acceptable Here - No MSRP over TLS (TCP/TLS/MSRP) here') };
    }

    // One bounded batch read, whatever the list names (issue 11: one read per id let 1,500
    // unknown ids hold a handler for seconds).
    if (actions.actions.length > deps.policy.maxInviteIds) {
      return {
        response: reply(
          400,
          `Bad Request - The action list names ${actions.actions.length} entries, at most ${deps.policy.maxInviteIds}`,
        ),
      };
    }
    const found = new Map(
      (
        await deps.messages.getMany(
          user,
          actions.actions.map((a) => a.id),
          nowSec,
        )
      ).map((m) => [m.id, m]),
    );
    // An id the user does not have (another user's included) is skipped and never revealed.
    const known = actions.actions.flatMap((a) => {
      const message = found.get(a.id);
      return message ? [{ ...a, message }] : [];
    });
    if (known.length === 0) return { response: reply(404, 'Not Found - No known message') };

    const toDelete = known.filter((a) => a.action === 'delete');
    const deletedIds = new Set(
      toDelete.length === 0
        ? []
        : await deps.messages.deleteMany(
            user,
            toDelete.map((a) => a.id),
          ),
    );
    const deleted = deletedIds.size;
    for (const a of toDelete) {
      if (!deletedIds.has(a.id)) continue;
      const wanted = parseDispositionNotification(a.message.dispositionNotification ?? '');
      // The IMDN is a courtesy: its failure must not undo or fail the user's request.
      if (wanted.has('negative-delivery')) await deps.sendFailureImdn?.(a.message).catch(() => undefined);
    }
    const retrieve = known
      .filter((a) => a.action === 'retrieve')
      .sort((x, y) => compareOldestFirst(x.message, y.message))
      .map((a) => a.id);

    const localTag = deps.newTag();
    const sessionId = deps.newSessionId(event.flow.edgeId);
    // RFC 4975 §15: TLS for the media when the offer asks for it or the signalling used it.
    const secure =
      deps.msrps !== undefined && (offer.tls || event.flow.transport === 'tls' || event.flow.transport === 'wss');
    const where = secure ? deps.msrps! : deps.msrp;
    const answer = buildMsrpAnswer({
      host: where.host,
      port: where.port,
      sessionId,
      secure,
      ...(secure && deps.msrps?.fingerprint ? { fingerprint: deps.msrps.fingerprint } : {}),
    });
    const dialog = createUasDialog(request, localTag, event.flow);
    const session: DeliverySession = {
      user,
      sessionId,
      dialogId: dialogIdOf(dialog),
      dialog,
      retrieve,
      clientPath: offer.path,
      localPath: answer.path,
      state: 'waiting',
      createdAt: new Date(nowMs).toISOString(),
      // The session record outlives any delivery attempt; TTL cleans it up.
      expiresAt: nowSec + 3600,
    };
    // The job carries the session: the delivery stores it as it takes it, in one write.
    await deps.queue.enqueue({ user, sessionId, edgeId: event.flow.edgeId, session });

    return {
      response: {
        status: 200,
        toTag: localTag,
        contentType: 'application/sdp',
        body: Buffer.from(answer.sdp, 'utf8').toString('base64'),
      },
      session: {
        sessionId,
        user,
        dialogId: session.dialogId,
        clientPath: offer.path,
        ...(secure ? { secure } : {}),
        // RFC 8122 §5: the certificate the client presents over TLS must have this fingerprint.
        ...(secure && offer.fingerprint ? { clientFingerprint: offer.fingerprint } : {}),
      },
      changedUsers: deleted > 0 ? [user] : [],
    };
  };
}
