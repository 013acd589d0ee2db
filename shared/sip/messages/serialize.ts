/**
 * Writing a message to octets (RFC 3261 §7): start line, header fields in order, an empty line,
 * the body. Content-Length is always written and always equals the body length (§18.3, §20.14).
 */
import { sameHeaderName } from './header-names.ts';
import type { SipMessage } from './types.ts';

const EMPTY = Buffer.alloc(0);

/** A value must not break the framing: CR / LF (with any folding whitespace) become one space. */
function safeValue(value: string): string {
  if (value.indexOf('\r') === -1 && value.indexOf('\n') === -1) return value;
  return value.replace(/[\r\n]+[ \t]*/g, ' ');
}

function safeToken(text: string): string {
  return text.replace(/[\s]+/g, '');
}

/**
 * Serialize `msg`. The Content-Length field keeps its place when the message has one (a second
 * one is dropped); otherwise it is appended after the other headers. Never throws.
 */
export function serializeMessage(msg: SipMessage): Buffer {
  const body = Buffer.isBuffer(msg.body) ? msg.body : msg.body ? Buffer.from(msg.body) : EMPTY;
  let head =
    msg.kind === 'request'
      ? `${safeToken(String(msg.method))} ${safeToken(String(msg.uri))} SIP/2.0\r\n`
      : `SIP/2.0 ${Number(msg.status) | 0} ${safeValue(String(msg.reason ?? ''))}\r\n`;
  let wroteLength = false;
  const headers = Array.isArray(msg.headers) ? msg.headers : [];
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    const name = String(h.name);
    if (name === 'Content-Length' || sameHeaderName(name, 'Content-Length')) {
      if (!wroteLength) head += `Content-Length: ${body.length}\r\n`;
      wroteLength = true;
      continue;
    }
    head += `${safeToken(name)}: ${safeValue(String(h.value))}\r\n`;
  }
  if (!wroteLength) head += `Content-Length: ${body.length}\r\n`;
  head += '\r\n';
  if (body.length === 0) return Buffer.from(head, 'utf8');
  const headLength = Buffer.byteLength(head, 'utf8');
  const out = Buffer.allocUnsafe(headLength + body.length);
  out.write(head, 0, 'utf8');
  body.copy(out, headLength);
  return out;
}

/**
 * `bytes` (a message as `serializeMessage` wrote it) with the header field `name: value` put in
 * as its first, right after the start line: what serializing the message with that field first
 * would write, without writing the rest again (a transaction's Via on a request its caller has
 * serialized already, RFC 3261 §8.1.1.7). Undefined when `bytes` has no start line.
 */
export function withFirstHeader(bytes: Buffer, name: string, value: string): Buffer | undefined {
  const eol = bytes.indexOf('\r\n');
  if (eol < 0) return undefined;
  const line = `${safeToken(name)}: ${safeValue(value)}\r\n`;
  const lineLength = Buffer.byteLength(line, 'utf8');
  const out = Buffer.allocUnsafe(bytes.length + lineLength);
  bytes.copy(out, 0, 0, eol + 2);
  out.write(line, eol + 2, 'utf8');
  bytes.copy(out, eol + 2 + lineLength, eol + 2);
  return out;
}
