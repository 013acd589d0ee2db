/**
 * Deposit (protocol.md "Deposit"): a message for a user who is away becomes deferred. Reached by
 * SIP MESSAGE (RFC 3428) through the edge, and over HTTP for operators and other CPM functions.
 * Stored once per (recipient, sender, imdn.Message-ID); 202 once stored durably.
 */
import { z } from 'zod';
import { depositId, newUlid } from '#shared/deferred/ids.ts';
import type { SipHandlerResult, SipRequestEvent } from '#shared/events.ts';
import { deferredFromCpim, MAX_ADDRESS_OCTETS } from '#shared/deferred/message.ts';
import type { Policy } from '#shared/deferred/policy.ts';
import { CPIM_CONTENT_TYPE } from '#shared/deferred/names.ts';
import { wrapAsCpim } from '#shared/cpim/cpim.ts';
import { getHeader, normalizeUri, parseMediaType, parseUri } from '#shared/sip/messages/index.ts';
import type { DeferredMessageStore } from '#shared/ports.ts';
import { authenticatedSenders } from '#shared/service/identity.ts';
import { reply, requestOfEvent } from '#shared/service/sip-event.ts';

export interface DepositDeps {
  messages: DeferredMessageStore;
  policy: Policy;
  /** The served domain (SIP_DOMAIN): deposits for anyone else's users are refused (404). */
  servedDomain: string;
  /** The host named in Warning headers (RFC 3261 §20.43). */
  warnAgent: string;
  now: () => number;
}

export type DepositOutcome =
  { status: 202; id: string; created: boolean; user: string } | { status: 400 | 403 | 404 | 413 | 486; reason: string };

/** RFC 3261 §19.1.4: host comparison is case-insensitive. */
function inServedDomain(uri: string, domain: string): boolean {
  const parsed = parseUri(uri);
  if (!parsed) return false;
  // A tel URI (RFC 3966) names a number, not a domain: numbers are the SIP/IP Core's to route.
  if (!('host' in parsed)) return true;
  return parsed.host.toLowerCase() === domain.toLowerCase();
}

/**
 * Why `user` cannot be deposited for, as a status and reason naming the field, or undefined.
 * The user is the partition key of every store: its size is bounded here, at the edge.
 */
function recipientProblem(
  deps: DepositDeps,
  user: string,
  field: string,
): { status: 400 | 404; reason: string } | undefined {
  if (Buffer.byteLength(user) > MAX_ADDRESS_OCTETS) {
    return { status: 400, reason: `Bad Request - ${field} over ${MAX_ADDRESS_OCTETS} octets` };
  }
  if (!inServedDomain(user, deps.servedDomain)) {
    return { status: 404, reason: `Not Found - ${field} is not a user of ${deps.servedDomain}` };
  }
  return undefined;
}

/**
 * The shared core of both entries: store one CPIM message for `user`. `senders`, when given,
 * are the authenticated identities of whoever deposits (normal form): the CPIM From must be one
 * of them, so that nobody can deposit, nor claim a Message-ID, in someone else's name.
 */
export async function depositCpim(
  deps: DepositDeps,
  user: string,
  cpim: Buffer,
  limitBytes: number,
  senders?: readonly string[],
): Promise<DepositOutcome> {
  if (cpim.length > limitBytes) return { status: 413, reason: 'Request Entity Too Large' };
  const nowMs = deps.now();
  const built = deferredFromCpim({
    user,
    cpim,
    now: new Date(nowMs),
    retentionSeconds: deps.policy.retentionSeconds,
    // Stands in for a missing imdn.Message-ID (then the deposit is not deduplicated); the
    // stored id is derived below, once the sender is known.
    id: newUlid(nowMs),
  });
  if (!built.ok) return { status: 400, reason: `Bad Request - ${built.reason}` };
  if (senders) {
    // Deduplication keys on (sender, Message-ID): the sender must be the authenticated one.
    const from = normalizeUri(built.message.from);
    if (!senders.includes(from)) {
      return { status: 403, reason: 'Forbidden - CPIM From is not the authenticated sender' };
    }
    built.message.from = from;
  }
  built.message.id = depositId(user, built.message.from, built.message.messageId);
  const nowSec = Math.floor(nowMs / 1000);
  const count = await deps.messages.count(user, nowSec);
  if (count >= deps.policy.maxMessagesPerUser) {
    // A repeated deposit of a message already stored is still answered 202 (protocol.md).
    const first = (await deps.messages.list(user, nowSec)).find(
      (m) => m.from === built.message.from && m.messageId === built.message.messageId,
    );
    if (first) return { status: 202, id: first.id, created: false, user };
    return { status: 486, reason: 'Busy Here - Deferred message store full' };
  }
  const { created, message } = await deps.messages.put(built.message);
  return { status: 202, id: message.id, created, user };
}

export function makeSipHandler(deps: DepositDeps) {
  return async function depositMessage(event: SipRequestEvent): Promise<SipHandlerResult> {
    const request = requestOfEvent(event);
    const recipient = parseUri(request.uri);
    if (!recipient || (recipient.scheme !== 'sip' && recipient.scheme !== 'sips' && recipient.scheme !== 'tel')) {
      return { response: reply(400, 'Bad Request - Recipient is not a SIP or tel URI') };
    }
    const user = normalizeUri(request.uri);
    const refused = recipientProblem(deps, user, 'Request-URI');
    if (refused) return { response: reply(refused.status, refused.reason) };
    const senders = authenticatedSenders(request, event.trusted);
    if (senders.length === 0) return { response: reply(400, 'Bad Request - No usable sender identity') };
    const limit = event.flow.transport === 'udp' ? deps.policy.maxDepositBytesUdp : deps.policy.maxDepositBytesStream;
    if (request.body.length === 0) return { response: reply(400, 'Bad Request - Empty MESSAGE body') };
    // The limit is on what the sender sent, before any wrapping by the service.
    if (request.body.length > limit) return { response: reply(413, 'Request Entity Too Large') };

    const contentType = getHeader(request, 'Content-Type') ?? 'text/plain';
    const media = parseMediaType(contentType);
    let cpim = request.body;
    if (!media || `${media.type}/${media.subtype}`.toLowerCase() !== CPIM_CONTENT_TYPE) {
      // Any other body is wrapped into CPIM by the service (protocol.md "Deposit").
      cpim = wrapAsCpim({
        from: senders[0]!,
        to: user,
        dateTime: new Date(deps.now()).toISOString(),
        messageId: newUlid(),
        contentType,
        body: request.body,
      });
    }
    const outcome = await depositCpim(deps, user, cpim, Math.max(limit, cpim.length), senders);
    if (outcome.status !== 202) {
      const headers =
        outcome.status === 486
          ? [{ name: 'Warning', value: `399 ${deps.warnAgent} "Deferred message store full"` }]
          : [];
      return { response: reply(outcome.status, outcome.reason, headers) };
    }
    return { response: reply(202, 'Accepted'), changedUsers: outcome.created ? [user] : [] };
  };
}

/** The operator API's request body: either a ready CPIM (base64) or a plain body to wrap. */
const CpimDepositBody = z.object({ to: z.string().min(4), cpim: z.string().min(1) }).strict();
const PlainDepositBody = z
  .object({
    to: z.string().min(4),
    from: z.string().min(4),
    contentType: z.string().default('text/plain;charset=UTF-8'),
    body: z.string(),
    messageId: z.string().min(1).optional(),
    subject: z.string().optional(),
    dispositionNotification: z.string().optional(),
  })
  .strict();
export const HttpDepositBody = z.union([CpimDepositBody, PlainDepositBody]);

/**
 * Validate a deposit body, naming the first bad field (`"from": expected string, received
 * undefined`): the shape is chosen by the presence of `cpim`, so an error speaks of the
 * fields the caller meant to send, not of "invalid input" to either shape.
 */
export function parseDepositBody(
  json: unknown,
): { ok: true; value: z.infer<typeof HttpDepositBody> } | { ok: false; error: string } {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { ok: false, error: 'body: a JSON object expected ({"to", "from", "body"} or {"to", "cpim"})' };
  }
  const schema = 'cpim' in json ? CpimDepositBody : PlainDepositBody;
  const parsed = schema.safeParse(json);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issue = parsed.error.issues[0]!;
  const field = issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : issue.path.map(String).join('.') || 'body';
  const detail = issue.message.replace(/^Invalid input: /, '');
  const what = /received undefined$/.test(detail) ? `missing (${detail.replace(/, received undefined$/, '')})` : detail;
  return { ok: false, error: `"${field}": ${what}` };
}

const isMessagingUri = (value: string): boolean => {
  const uri = parseUri(value);
  return uri !== undefined && uri !== null && (uri.scheme === 'sip' || uri.scheme === 'sips' || uri.scheme === 'tel');
};

export interface HttpResult {
  statusCode: number;
  body: string;
  /** Users whose list changed, for the watchers' NOTIFY. */
  changedUsers: string[];
}

export function makeHttpHandler(deps: DepositDeps) {
  return async function depositHttp(json: unknown): Promise<HttpResult> {
    const parsed = parseDepositBody(json);
    if (!parsed.ok) return { statusCode: 400, body: JSON.stringify({ error: parsed.error }), changedUsers: [] };
    const input = parsed.value;
    if (!isMessagingUri(input.to)) {
      return { statusCode: 400, body: JSON.stringify({ error: '"to": not a SIP or tel URI' }), changedUsers: [] };
    }
    // The sender becomes the CPIM From (RFC 3862 §3.3: a URI); free text there is refused, not stored.
    if ('from' in input && !isMessagingUri(input.from)) {
      return { statusCode: 400, body: JSON.stringify({ error: '"from": not a SIP or tel URI' }), changedUsers: [] };
    }
    const user = normalizeUri(input.to);
    const refused = recipientProblem(deps, user, '`to`');
    if (refused) {
      return { statusCode: refused.status, body: JSON.stringify({ error: refused.reason }), changedUsers: [] };
    }
    const limit = deps.policy.maxDepositBytesStream;
    const sent = 'cpim' in input ? Buffer.from(input.cpim, 'base64') : Buffer.from(input.body, 'utf8');
    if (sent.length > limit) {
      return { statusCode: 413, body: JSON.stringify({ error: 'Request Entity Too Large' }), changedUsers: [] };
    }
    const cpim =
      'cpim' in input
        ? sent
        : wrapAsCpim({
            from: input.from,
            to: user,
            dateTime: new Date(deps.now()).toISOString(),
            messageId: input.messageId ?? newUlid(),
            contentType: input.contentType,
            body: sent,
            ...(input.subject ? { subject: input.subject } : {}),
            ...(input.dispositionNotification ? { dispositionNotification: input.dispositionNotification } : {}),
          });
    const outcome = await depositCpim(deps, user, cpim, Math.max(limit, cpim.length));
    if (outcome.status !== 202) {
      const code = outcome.status === 486 ? 507 : outcome.status;
      return { statusCode: code, body: JSON.stringify({ error: outcome.reason }), changedUsers: [] };
    }
    return {
      statusCode: outcome.created ? 201 : 200,
      body: JSON.stringify({ id: outcome.id, user, created: outcome.created }),
      changedUsers: outcome.created ? [user] : [],
    };
  };
}
