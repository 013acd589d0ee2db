/**
 * Instant Message Disposition Notification, RFC 5438: reading what a sender asked for and
 * writing the `message/imdn+xml` notification the service sends back (a delivery `failed`
 * when a message expires or is deleted unread).
 */
import { IMDN_CONTENT_TYPE, IMDN_DISPOSITION, IMDN_NAMESPACE } from '../deferred/names.ts';
import { childOf, escapeXmlText, parseXml } from '../deferred/xml.ts';
import { wrapAsCpim } from './cpim.ts';

/** RFC 5438 §6.3 imdn.Disposition-Notification: a comma list of lower-cased tokens. */
export function parseDispositionNotification(value: string): Set<string> {
  return new Set(
    value
      .split(',')
      .map((t) => t.split(';')[0]!.trim().toLowerCase())
      .filter((t) => t.length > 0),
  );
}

export type ImdnKind = 'delivery-notification';
export type ImdnStatus = 'delivered' | 'failed' | 'forbidden' | 'error';

export interface ImdnInput {
  /** imdn.Message-ID of the message the notification is about. */
  messageId: string;
  /** DateTime of that message (RFC 5438 §7.2.1.2 <datetime>). */
  dateTime: string;
  recipientUri: string;
  originalRecipientUri?: string;
  status: ImdnStatus;
  kind: ImdnKind;
}

const STATUSES: readonly ImdnStatus[] = ['delivered', 'failed', 'forbidden', 'error'];

/** The notification document, RFC 5438 §7.2.1.1. */
export function buildImdn(input: ImdnInput): string {
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<imdn xmlns="${IMDN_NAMESPACE}">`,
    `  <message-id>${escapeXmlText(input.messageId)}</message-id>`,
    `  <datetime>${escapeXmlText(input.dateTime)}</datetime>`,
    `  <recipient-uri>${escapeXmlText(input.recipientUri)}</recipient-uri>`,
  ];
  if (input.originalRecipientUri !== undefined) {
    lines.push(`  <original-recipient-uri>${escapeXmlText(input.originalRecipientUri)}</original-recipient-uri>`);
  }
  lines.push(
    `  <${input.kind}>`,
    '    <status>',
    `      <${input.status}/>`,
    '    </status>',
    `  </${input.kind}>`,
    '</imdn>',
  );
  return lines.join('\n');
}

export type ParsedImdn =
  | {
      ok: true;
      messageId: string;
      dateTime: string;
      recipientUri?: string;
      originalRecipientUri?: string;
      kind: ImdnKind;
      status: ImdnStatus;
    }
  | { ok: false; reason: string };

/** Read a delivery notification; never throws. */
export function parseImdn(xml: string): ParsedImdn {
  const parsed = parseXml(xml);
  if (!parsed.ok) return parsed;
  const root = parsed.root;
  if (root.local !== 'imdn' || root.ns !== IMDN_NAMESPACE)
    return { ok: false, reason: `Root is not imdn in ${IMDN_NAMESPACE}` };
  const text = (name: string) => childOf(root, name, IMDN_NAMESPACE)?.text.trim();
  const messageId = text('message-id');
  const dateTime = text('datetime');
  if (!messageId) return { ok: false, reason: 'No message-id' };
  if (!dateTime) return { ok: false, reason: 'No datetime' };
  const notification = childOf(root, 'delivery-notification', IMDN_NAMESPACE);
  if (!notification) return { ok: false, reason: 'No delivery-notification' };
  const status = childOf(notification, 'status', IMDN_NAMESPACE)?.children.find(
    (c) => c.ns === IMDN_NAMESPACE && (STATUSES as readonly string[]).includes(c.local),
  );
  if (!status) return { ok: false, reason: 'No known status' };
  const out: ParsedImdn = {
    ok: true,
    messageId,
    dateTime,
    kind: 'delivery-notification',
    status: status.local as ImdnStatus,
  };
  const recipient = text('recipient-uri');
  if (recipient) out.recipientUri = recipient;
  const original = text('original-recipient-uri');
  if (original) out.originalRecipientUri = original;
  return out;
}

/**
 * The CPIM that carries a notification (RFC 5438 §7.1.1): from the recipient to the original
 * sender, its own imdn.Message-ID, `Content-Disposition: notification`, and no request for
 * notifications of its own.
 */
export function wrapImdnInCpim(input: {
  from: string;
  to: string;
  dateTime: string;
  /** A fresh imdn.Message-ID for the notification itself. */
  messageId: string;
  imdn: ImdnInput;
}): Buffer {
  return wrapAsCpim({
    from: input.from,
    to: input.to,
    dateTime: input.dateTime,
    messageId: input.messageId,
    contentType: IMDN_CONTENT_TYPE,
    contentHeaders: [{ name: 'Content-Disposition', value: IMDN_DISPOSITION }],
    body: Buffer.from(buildImdn(input.imdn), 'utf8'),
  });
}
