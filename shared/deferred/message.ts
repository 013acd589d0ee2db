/**
 * From a deposited CPIM (RFC 3862) to the stored DeferredMessage, and from a stored message to
 * the IMDN its sender asked for when it is dropped undelivered (RFC 5438 §7.2.1.1).
 */
import { namespacedHeader, parseCpim } from '../cpim/cpim.ts';
import { wrapImdnInCpim } from '../cpim/imdn.ts';
import type { DeferredMessage, FailureImdnJob } from './model.ts';
import { CPIM_CONTENT_TYPE, IMDN_NAMESPACE } from './names.ts';

/** RFC 3862 §5.4: DateTime is an RFC 3339 date-time. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

/** The value of the first message header whose name (prefix aside) is `local`. */
function headerByLocalName(headers: { name: string; value: string }[], local: string): string | undefined {
  const wanted = local.toLowerCase();
  return headers.find((h) => h.name.slice(h.name.lastIndexOf('.') + 1).toLowerCase() === wanted)?.value;
}

/** RFC 3862 §5.6: `Subject:;lang=fr text` -> "text". */
function subjectText(value: string): string {
  return value.replace(/^;\s*lang=[^\s]*\s?/i, '');
}

/**
 * Largest CPIM From / To URI and imdn.Message-ID kept (octets). They become store keys (the
 * deduplication key holds From and Message-ID; DynamoDB allows 1 KiB of sort key), so a larger
 * one is a client error named here, not a store failure later.
 */
export const MAX_ADDRESS_OCTETS = 256;
export const MAX_MESSAGE_ID_OCTETS = 256;

/** The name of the first field over its limit or holding control characters, or undefined. */
function fieldProblem(fields: [string, string | undefined, number][]): string | undefined {
  for (const [name, value, max] of fields) {
    if (value === undefined) continue;
    if (Buffer.byteLength(value) > max) return `${name} over ${max} octets`;

    if (/[\u0000-\u001f\u007f]/.test(value)) return `${name} holds control characters`;
  }
  return undefined;
}

export type DeferredFromCpim = { ok: true; message: DeferredMessage } | { ok: false; reason: string };

/**
 * The message to store for `user`. A CPIM without imdn.Message-ID is accepted and named by the
 * service id (so only messages that carry one deposit idempotently).
 */
export function deferredFromCpim(input: {
  user: string;
  cpim: Buffer;
  now: Date;
  retentionSeconds: number;
  id: string;
}): DeferredFromCpim {
  const cpim = parseCpim(input.cpim);
  if (!cpim.ok) return { ok: false, reason: cpim.reason };
  if (!cpim.from) return { ok: false, reason: 'Missing CPIM From' };
  const messageId = namespacedHeader(cpim, IMDN_NAMESPACE, 'Message-ID');
  const tooLarge = fieldProblem([
    ['CPIM From', cpim.from, MAX_ADDRESS_OCTETS],
    ['CPIM To', cpim.to, MAX_ADDRESS_OCTETS],
    ['imdn.Message-ID', messageId, MAX_MESSAGE_ID_OCTETS],
  ]);
  if (tooLarge) return { ok: false, reason: tooLarge };

  let date = input.now.toISOString();
  if (cpim.dateTime !== undefined) {
    const ms = Date.parse(cpim.dateTime);
    if (!RFC3339.test(cpim.dateTime) || Number.isNaN(ms)) {
      return { ok: false, reason: `Bad CPIM DateTime "${cpim.dateTime.slice(0, 40)}"` };
    }
    date = new Date(ms).toISOString();
  }

  const contentType = cpim.contentHeaders.find((h) => h.name.toLowerCase() === 'content-type')?.value || 'text/plain';
  const message: DeferredMessage = {
    user: input.user,
    id: input.id,
    messageId: messageId || input.id,
    from: cpim.from,
    to: cpim.to || input.user,
    date,
    contentType,
    size: cpim.body.length,
    cpim: new Uint8Array(input.cpim),
    arrivedAt: input.now.toISOString(),
    expiresAt: Math.floor(input.now.getTime() / 1000) + input.retentionSeconds,
  };
  const subject = cpim.headers.find((h) => h.name.toLowerCase() === 'subject')?.value;
  if (subject !== undefined) message.subject = subjectText(subject);
  const conversationId = headerByLocalName(cpim.headers, 'Conversation-ID');
  if (conversationId) message.conversationId = conversationId;
  const contributionId = headerByLocalName(cpim.headers, 'Contribution-ID');
  if (contributionId) message.contributionId = contributionId;
  const disposition = namespacedHeader(cpim, IMDN_NAMESPACE, 'Disposition-Notification');
  if (disposition) message.dispositionNotification = disposition;
  return { ok: true, message };
}

/**
 * The `failed` delivery notification for a message dropped without delivery (expiry, or
 * `delete`): from the served user to the original sender, sent as a SIP MESSAGE body.
 */
export function failedDeliveryImdn(
  message: FailureImdnJob,
  opts: { now: Date; messageId: string },
): { from: string; to: string; contentType: string; cpim: Buffer } {
  const cpim = wrapImdnInCpim({
    from: message.user,
    to: message.from,
    dateTime: opts.now.toISOString(),
    messageId: opts.messageId,
    imdn: {
      messageId: message.messageId,
      dateTime: message.date,
      recipientUri: message.user,
      ...(message.to !== message.user ? { originalRecipientUri: message.to } : {}),
      status: 'failed',
      kind: 'delivery-notification',
    },
  });
  return { from: message.user, to: message.from, contentType: CPIM_CONTENT_TYPE, cpim };
}
