/**
 * Message bodies: media types (RFC 3261 §20.15, RFC 2045 §5.1) and multipart bodies
 * (RFC 2046 §5.1, as RFC 5621 uses them in SIP).
 */
import { readParams, scanParams, scanToken, skipWs, trimWs, unquote } from './grammar.ts';
import { canonicalHeaderName } from './header-names.ts';
import type { Header } from './types.ts';

export interface MediaType {
  /** Lower-cased, e.g. "multipart". */
  type: string;
  /** Lower-cased, e.g. "mixed". */
  subtype: string;
  /** Names lower-cased; quoted values unquoted. */
  params: Record<string, string>;
}

/** RFC 3261 §20.15: media-type = m-type SLASH m-subtype *( SEMI m-parameter ). */
export function parseMediaType(value: string): MediaType | undefined {
  if (typeof value !== 'string') return undefined;
  const s = value;
  const n = s.length;
  let i = skipWs(s, 0, n);
  const typeEnd = scanToken(s, i, n);
  if (typeEnd === i) return undefined;
  const type = s.slice(i, typeEnd).toLowerCase();
  i = skipWs(s, typeEnd, n);
  if (s.charCodeAt(i) !== 47) return undefined;
  i = skipWs(s, i + 1, n);
  const subEnd = scanToken(s, i, n);
  if (subEnd === i) return undefined;
  const subtype = s.slice(i, subEnd).toLowerCase();
  const raw = readParams(s, subEnd);
  if (!raw) return undefined;
  const params: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (v === null) return undefined; // m-parameter = m-attribute EQUAL m-value
    params[k] = v.charCodeAt(0) === 34 ? unquote(v) : v;
  }
  return { type, subtype, params };
}

/** Whether `value` is a media-type parseMediaType accepts, without building it. */
export function isValidMediaType(value: string): boolean {
  if (typeof value !== 'string') return false;
  const s = value;
  const n = s.length;
  let i = skipWs(s, 0, n);
  const typeEnd = scanToken(s, i, n);
  if (typeEnd === i) return false;
  i = skipWs(s, typeEnd, n);
  if (s.charCodeAt(i) !== 47) return false;
  i = skipWs(s, i + 1, n);
  const subEnd = scanToken(s, i, n);
  if (subEnd === i) return false;
  // m-parameter = m-attribute EQUAL m-value: a bare name is not one.
  return scanParams(s, subEnd, n, null, true) === n;
}

export interface BodyPart {
  headers: Header[];
  body: Buffer;
}

const CRLF = Buffer.from('\r\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');

/** Part headers: the MIME header block of one body part (no folding expected, but handled). */
function parsePartHeaders(text: string): Header[] | undefined {
  const headers: Header[] = [];
  if (text === '') return headers;
  for (const line of text.split('\r\n')) {
    const c = line.charCodeAt(0);
    if (c === 32 || c === 9) {
      const last = headers[headers.length - 1];
      if (!last) return undefined;
      last.value = trimWs(`${last.value} ${trimWs(line)}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) return undefined;
    const name = trimWs(line.slice(0, colon));
    if (scanToken(name, 0) !== name.length || name.length === 0) return undefined;
    headers.push({ name: canonicalHeaderName(name), value: trimWs(line.slice(colon + 1)) });
  }
  return headers;
}

/**
 * Split a multipart body (RFC 2046 §5.1.1). Each delimiter is CRLF "--" boundary (the first may
 * open the body without the CRLF); the preamble and epilogue are ignored; the close delimiter
 * "--" boundary "--" is required. Each part is its header block, an empty line, and its body
 * (a part without headers starts with the empty line). Undefined when `contentType` is not
 * multipart with a boundary, or the body does not follow that structure.
 */
export function parseMultipart(body: Buffer, contentType: string): BodyPart[] | undefined {
  try {
    const mt = parseMediaType(contentType);
    if (!mt || mt.type !== 'multipart') return undefined;
    const boundary = mt.params.boundary;
    // RFC 2046 §5.1.1: 1 to 70 characters.
    if (!boundary || boundary.length > 70) return undefined;
    const dash = Buffer.from(`--${boundary}`);
    const delimiter = Buffer.from(`\r\n--${boundary}`);
    // First delimiter: at the very start, or after a preamble.
    let pos: number;
    if (body.subarray(0, dash.length).equals(dash)) pos = dash.length;
    else {
      const at = body.indexOf(delimiter);
      if (at === -1) return undefined;
      pos = at + delimiter.length;
    }
    const parts: BodyPart[] = [];
    for (;;) {
      // After a delimiter: "--" closes; otherwise transport padding (LWSP) then CRLF.
      if (body[pos] === 45 && body[pos + 1] === 45) return parts.length > 0 ? parts : undefined;
      while (body[pos] === 32 || body[pos] === 9) pos++;
      if (body[pos] !== 13 || body[pos + 1] !== 10) return undefined;
      pos += 2;
      // Searching from the CRLF just read also finds a delimiter that follows it at once (an empty part).
      const next = body.indexOf(delimiter, pos - 2);
      if (next === -1) return undefined;
      const part = next < pos ? body.subarray(pos, pos) : body.subarray(pos, next);
      let headerText: string;
      let partBody: Buffer;
      if (part.subarray(0, 2).equals(CRLF)) {
        headerText = '';
        partBody = part.subarray(2);
      } else {
        const blank = part.indexOf(CRLFCRLF);
        if (blank === -1) {
          headerText = part.toString('utf8');
          partBody = Buffer.alloc(0);
        } else {
          headerText = part.subarray(0, blank).toString('utf8');
          partBody = part.subarray(blank + 4);
        }
      }
      const headers = parsePartHeaders(headerText);
      if (!headers) return undefined;
      parts.push({ headers, body: partBody });
      pos = next + delimiter.length;
    }
  } catch {
    return undefined;
  }
}

/** A multipart body for `parts` (RFC 2046 §5.1.1), ending with the close delimiter and CRLF. */
export function buildMultipart(parts: BodyPart[], boundary: string): Buffer {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    let head = `--${boundary}\r\n`;
    for (const h of part.headers) head += `${h.name}: ${h.value}\r\n`;
    head += '\r\n';
    chunks.push(Buffer.from(head, 'utf8'), part.body, CRLF);
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}
