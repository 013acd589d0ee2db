/**
 * What the transport does with the bytes of one received message: hand a well-formed message up,
 * answer a broken request itself, or drop it (RFC 3261 §18.3, §16.3 / §8.2.2 style checks done by
 * the parser). Pure: no sockets here.
 */
import { createErrorResponse, createResponse, parseMessage, reasonPhrase } from '../messages/index.ts';
import type { SipMessage, SipResponse } from '../messages/index.ts';

export type InboundOutcome =
  | { action: 'deliver'; message: SipMessage }
  | { action: 'reply'; response: SipResponse }
  | { action: 'drop'; reason: string };

export interface InboundLimits {
  /** Datagram transports: the packet bounds the message (RFC 3261 §18.3). */
  datagram: boolean;
  maxBytes: number;
  maxHeaders: number;
  /** When set, a Require naming anything else is answered 420 with Unsupported (RFC 3261 §8.2.2.3). */
  supportedOptionTags?: readonly string[];
}

/** `400` + "Missing CSeq" -> "Bad Request - Missing CSeq"; a reason that already names the status stays. */
export function faultReason(status: number, fault: string): string {
  const phrase = reasonPhrase(status);
  if (fault === '' || fault.toLowerCase().startsWith(phrase.toLowerCase())) return fault === '' ? phrase : fault;
  return `${phrase} - ${fault}`;
}

export function readMessage(bytes: Buffer, limits: InboundLimits): InboundOutcome {
  if (bytes.length > limits.maxBytes) {
    // RFC 3261 §21.5.14: 513 "the server was unable to process the request since the message
    // length exceeded its capabilities".
    return rejectHead(bytes, 513, `Message Too Large (${bytes.length} > ${limits.maxBytes} octets)`);
  }
  // The limits are parse options as they are (maxBytes is already checked): no copy per message.
  const parsed = parseMessage(bytes, limits);
  if (parsed.ok) return { action: 'deliver', message: parsed.message };
  if (parsed.kind !== 'request') return { action: 'drop', reason: `malformed ${parsed.kind}: ${parsed.reason}` };
  const response = parsed.partial ? createErrorResponse(parsed.partial, parsed.status, parsed.reason) : undefined;
  if (!response) return { action: 'drop', reason: `unanswerable request: ${parsed.reason}` };
  if (parsed.status === 420 && parsed.unsupported?.length) {
    // RFC 3261 §8.2.2.3: the 420 "MUST list the option tags it does not understand" in Unsupported.
    response.headers.push({ name: 'Unsupported', value: parsed.unsupported.join(', ') });
  }
  return { action: 'reply', response };
}

/**
 * An error response for a message we will not read to the end (framing error, too large): built
 * from whatever its header says. Responses and unreadable heads are dropped.
 */
export function rejectHead(head: Buffer, status: number, fault: string): InboundOutcome {
  const reason = status === 513 ? 'Message Too Large' : faultReason(status, fault);
  const parsed = parseMessage(closeHead(head), { datagram: true, maxHeaders: Number.MAX_SAFE_INTEGER });
  if (parsed.ok) {
    if (parsed.message.kind === 'response') return { action: 'drop', reason: `response: ${fault}` };
    return { action: 'reply', response: createResponse(parsed.message, status, { reason }) };
  }
  if (parsed.kind === 'response') return { action: 'drop', reason: `response: ${fault}` };
  const response = parsed.partial ? createErrorResponse(parsed.partial, status, reason) : undefined;
  if (!response) return { action: 'drop', reason: `unanswerable request: ${fault}` };
  return { action: 'reply', response };
}

/** Cut a head to its last complete header line and end it, so the parser can read those lines. */
function closeHead(head: Buffer): Buffer {
  const end = head.indexOf('\r\n\r\n');
  if (end >= 0) return head.subarray(0, end + 4);
  const lastLine = head.lastIndexOf('\r\n');
  if (lastLine < 0) return head;
  return Buffer.concat([head.subarray(0, lastLine), Buffer.from('\r\n\r\n')]);
}
