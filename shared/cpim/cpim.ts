/**
 * Common Presence and Instant Messaging message format, RFC 3862: message headers, an empty
 * line, then a MIME entity (content headers, an empty line, the body). Bodies stay bytes.
 */
import { IMDN_NAMESPACE, IMDN_PREFIX } from '../deferred/names.ts';

export interface CpimHeader {
  name: string;
  value: string;
}

export interface CpimMessage {
  /** Message headers in order; prefixed names kept as written, e.g. "imdn.Message-ID". */
  headers: CpimHeader[];
  /** Headers of the encapsulated MIME entity (Content-Type, ...). */
  contentHeaders: CpimHeader[];
  body: Buffer;
  /** The URI inside <> of the first From (RFC 3862 §5.1), or its bare value. */
  from?: string;
  /** The URI of the first To (RFC 3862 §5.2). */
  to?: string;
  dateTime?: string;
  /** Namespace prefixes declared by NS headers (RFC 3862 §5.7); "" is the default namespace. */
  ns: Record<string, string>;
}

export type CpimParseResult = ({ ok: true } & CpimMessage) | { ok: false; reason: string };

const MAX_HEADER_LINES = 200;
/** RFC 3862 §3.1: Name (with an optional "prefix." in front) is a token. */
const HEADER_LINE = /^([A-Za-z0-9!#$%&'*+\-.^_`|~]+):[ \t]*(.*)$/s;
const UTF8 = new TextDecoder('utf-8', { fatal: true });

type Block = { headers: CpimHeader[]; next: number } | { error: string };

/**
 * Header lines from `start` up to the empty line that ends them (CRLF, LF tolerated). The lines
 * are decoded in one call (a decoder call per line was a third of a parse): a line end is ASCII,
 * never part of a multi-byte sequence, so the block is UTF-8 exactly when each line is.
 */
function readHeaderBlock(buf: Buffer, start: number, what: string): Block {
  // The empty line's offset and the offset after it; without one, the complete lines are still
  // read (their faults come first), then the missing end is the error.
  let pos = start;
  let next = -1;
  for (;;) {
    const lf = buf.indexOf(0x0a, pos);
    if (lf < 0) break;
    if (lf === pos || (lf === pos + 1 && buf[pos] === 0x0d)) {
      next = lf + 1;
      break;
    }
    pos = lf + 1;
  }
  let text: string;
  try {
    text = UTF8.decode(buf.subarray(start, pos));
  } catch {
    return { error: `${what} are not UTF-8` };
  }
  const headers: CpimHeader[] = [];
  const lines = text.split('\n');
  // The text ends with a line end (or is empty): the last item is not a line.
  for (let i = 0; i < lines.length - 1; i++) {
    const raw = lines[i]!;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (/^[ \t]/.test(line) && headers.length > 0) {
      // Folded continuation (tolerated as in MIME, RFC 5322 §2.2.3).
      headers[headers.length - 1]!.value += ` ${line.trim()}`;
      continue;
    }
    const m = HEADER_LINE.exec(line);
    if (!m) return { error: `${what}: malformed line "${line.slice(0, 40)}"` };
    if (headers.length >= MAX_HEADER_LINES) return { error: `${what}: too many lines` };
    headers.push({ name: m[1]!, value: m[2]!.trim() });
  }
  if (next < 0) return { error: `${what} are not ended by an empty line` };
  return { headers, next };
}

/** The URI inside <> of a From/To value ("Bob <sip:bob@example.net>"), else the bare value. */
export function cpimAddressUri(value: string): string {
  // Two index scans, not a regex: /<([^>]*)>/ retries every "<" to the end, quadratic on "<<<<...".
  const open = value.indexOf('<');
  const close = open < 0 ? -1 : value.indexOf('>', open + 1);
  return (close < 0 ? value : value.slice(open + 1, close)).trim();
}

/** Parse a message/cpim body; never throws. */
export function parseCpim(buf: Buffer): CpimParseResult {
  if (buf.length === 0) return { ok: false, reason: 'Empty CPIM message' };
  const message = readHeaderBlock(buf, 0, 'CPIM message headers');
  if ('error' in message) return { ok: false, reason: message.error };
  const content = readHeaderBlock(buf, message.next, 'CPIM content headers');
  if ('error' in content) return { ok: false, reason: content.error };

  const ns: Record<string, string> = {};
  let from: string | undefined;
  let to: string | undefined;
  let dateTime: string | undefined;
  for (const h of message.headers) {
    const name = h.name.toLowerCase();
    if (name === 'from') from ??= h.value;
    else if (name === 'to') to ??= h.value;
    else if (name === 'datetime') dateTime ??= h.value;
    else if (name === 'ns') {
      // RFC 3862 §5.7: NS: [prefix SP] "<" URI ">"
      const m = /^(?:([A-Za-z0-9\-_]+)\s*)?<([^>]*)>$/.exec(h.value);
      if (!m) return { ok: false, reason: `Malformed NS header "${h.value}"` };
      ns[m[1] ?? ''] = m[2]!;
    }
  }
  const out: { ok: true } & CpimMessage = {
    ok: true,
    headers: message.headers,
    contentHeaders: content.headers,
    body: buf.subarray(content.next),
    ns,
  };
  if (from !== undefined) out.from = cpimAddressUri(from);
  if (to !== undefined) out.to = cpimAddressUri(to);
  if (dateTime !== undefined) out.dateTime = dateTime;
  return out;
}

/**
 * The value of a namespaced message header, e.g. (IMDN_NAMESPACE, "Message-ID") for
 * "imdn.Message-ID" (RFC 3862 §5.7). The conventional "imdn" prefix also counts when no NS
 * header binds it to anything else.
 */
export function namespacedHeader(
  msg: Pick<CpimMessage, 'headers' | 'ns'>,
  namespace: string,
  name: string,
): string | undefined {
  const prefixes = new Set(
    Object.entries(msg.ns)
      .filter(([, uri]) => uri === namespace)
      .map(([p]) => p),
  );
  if (namespace === IMDN_NAMESPACE && msg.ns[IMDN_PREFIX] === undefined) prefixes.add(IMDN_PREFIX);
  for (const h of msg.headers) {
    const dot = h.name.lastIndexOf('.');
    const prefix = dot >= 0 ? h.name.slice(0, dot) : '';
    const local = dot >= 0 ? h.name.slice(dot + 1) : h.name;
    if (prefix !== '' && prefixes.has(prefix) && local.toLowerCase() === name.toLowerCase()) return h.value;
  }
  return undefined;
}

/** A value that cannot break out of its header line. */
function oneLine(value: string): string {
  return value.replace(/[\r\n]+/g, ' ').trim();
}

function angle(uri: string): string {
  const v = oneLine(uri);
  return v.includes('<') ? v : `<${v}>`;
}

export interface WrapCpimInput {
  from: string;
  to: string;
  dateTime: string;
  messageId: string;
  contentType: string;
  body: Buffer;
  subject?: string;
  dispositionNotification?: string;
  /** More content headers after Content-Type (e.g. Content-Disposition: notification). */
  contentHeaders?: CpimHeader[];
}

/** A message/cpim body with IMDN headers, CRLF line ends, as protocol.md shows it. */
export function wrapAsCpim(input: WrapCpimInput): Buffer {
  const lines = [`From: ${angle(input.from)}`, `To: ${angle(input.to)}`, `DateTime: ${oneLine(input.dateTime)}`];
  if (input.subject !== undefined) lines.push(`Subject: ${oneLine(input.subject)}`);
  lines.push(`NS: ${IMDN_PREFIX} <${IMDN_NAMESPACE}>`, `${IMDN_PREFIX}.Message-ID: ${oneLine(input.messageId)}`);
  if (input.dispositionNotification !== undefined) {
    lines.push(`${IMDN_PREFIX}.Disposition-Notification: ${oneLine(input.dispositionNotification)}`);
  }
  lines.push('', `Content-Type: ${oneLine(input.contentType)}`);
  for (const h of input.contentHeaders ?? []) lines.push(`${oneLine(h.name)}: ${oneLine(h.value)}`);
  lines.push('', '');
  return Buffer.concat([Buffer.from(lines.join('\r\n'), 'utf8'), input.body]);
}
