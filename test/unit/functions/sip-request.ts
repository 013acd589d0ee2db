/**
 * Handler test input built the way the edge builds it: real SIP text through parseMessage,
 * then the edge/handler JSON contract (eventOfRequest).
 */
import type { Flow } from '#shared/sip/dialog/index.ts';
import type { SipRequestEvent, SipResponseSpec } from '#shared/events.ts';
import { eventOfRequest } from '#shared/service/sip-event.ts';
import { parseMessage } from '#shared/sip/messages/index.ts';

export interface RequestOptions {
  body?: string | Buffer;
  trusted?: boolean;
  transport?: Flow['transport'];
  receivedAt?: number;
}

/** A request from header lines (Content-Length is added) and an optional body. */
export function sipEvent(headerLines: string[], opts: RequestOptions = {}): SipRequestEvent {
  const body = typeof opts.body === 'string' ? Buffer.from(opts.body, 'utf8') : (opts.body ?? Buffer.alloc(0));
  const head = `${headerLines.join('\r\n')}\r\nContent-Length: ${body.length}\r\n\r\n`;
  const parsed = parseMessage(Buffer.concat([Buffer.from(head, 'utf8'), body]));
  if (!parsed.ok || parsed.message.kind !== 'request') {
    throw new Error(`test request does not parse: ${parsed.ok ? 'not a request' : parsed.reason}`);
  }
  const flow: Flow = {
    edgeId: 'edge-1',
    transport: opts.transport ?? 'tcp',
    remoteAddress: '192.0.2.10',
    remotePort: 50211,
    connectionId: 'conn-1',
  };
  return eventOfRequest(parsed.message, flow, opts.trusted ?? false, opts.receivedAt ?? 0);
}

/** Text with LF line ends as CRLF (SIP and SDP want CRLF; examples are easier to write with LF). */
export function crlf(text: string): string {
  return text.replace(/\r?\n/g, '\r\n');
}

/** A response header's value, name case-insensitive. */
export function responseHeader(response: SipResponseSpec, name: string): string | undefined {
  return response.headers?.find((h) => h.name.toLowerCase() === name.toLowerCase())?.value;
}

/** A base64 body of the handler contract, as text. */
export function bodyText(base64: string | undefined): string {
  return Buffer.from(base64 ?? '', 'base64').toString('utf8');
}
