/**
 * Parsing one SIP message from octets (RFC 3261 §7, §18.3, §25), validating what every element
 * relies on: the start line, header syntax, the mandatory headers of §8.1.1 and the framing.
 * Hand-written scanners, no regular expressions over the message: linear time on any input.
 * Never throws: a malformed message gives a ParseResult with the status to answer it with.
 */
import { isCallId, isDigit, isToken, isTokenChar, splitList, trimWs } from './grammar.ts';
import { knownHeaderAt, knownHeaderHashed, nameHashStep } from './header-names.ts';
import { checkRequire } from './headers.ts';
import { isValidMediaType } from './body.ts';
import { checkCSeq, checkNameAddr, checkVia, isNameAddr, isVia } from './typed-values.ts';
import { isValidUri, uriScheme } from './uri.ts';
import type { Header, ParseOptions, ParseResult, SipMessage } from './types.ts';

const DEFAULT_MAX_HEADERS = 256;
const DEFAULT_URI_SCHEMES: readonly string[] = ['sip', 'sips', 'tel'];
const CRLFCRLF = Buffer.from('\r\n\r\n');

type Failure = Extract<ParseResult, { ok: false }>;
type Kind = Failure['kind'];

interface StartLine {
  kind: Kind;
  method?: string;
  uri?: string;
  status?: number;
  reason?: string;
  /** Status and reason when the start line is unacceptable. */
  error?: { status: number; reason: string };
}

function bad(fault: string): { status: number; reason: string } {
  return { status: 400, reason: `Bad Request - ${fault}` };
}

/** "SIP/2.0" (the literal is case-insensitive, RFC 3261 §7.1); 'other' for another SIP/x.y. */
function readVersion(s: string): 'ok' | 'other' | 'bad' {
  if (s === 'SIP/2.0') return 'ok';
  if (s.length < 7 || s.slice(0, 4).toUpperCase() !== 'SIP/') return 'bad';
  const dot = s.indexOf('.', 4);
  if (dot <= 4 || dot === s.length - 1) return 'bad';
  for (let i = 4; i < s.length; i++) if (i !== dot && !isDigit(s.charCodeAt(i))) return 'bad';
  return Number(s.slice(4, dot)) === 2 && Number(s.slice(dot + 1)) === 0 ? 'ok' : 'other';
}

/** Whether `s` has "SIP/" (any case, as toUpperCase reads it) at `at`. */
function isSipSlash(s: string, at: number): boolean {
  const c0 = s.charCodeAt(at);
  const c1 = s.charCodeAt(at + 1);
  const c2 = s.charCodeAt(at + 2);
  if ((c0 | c1 | c2) < 128)
    return (c0 | 32) === 115 && (c1 | 32) === 105 && (c2 | 32) === 112 && s.charCodeAt(at + 3) === 47;
  // Non-ASCII letters may upper-case to ASCII ones (U+017F to "S"): keep toUpperCase's reading.
  return s.slice(at, at + 4).toUpperCase() === 'SIP/';
}

/**
 * RFC 3261 §7.1 Request-Line = Method SP Request-URI SP SIP-Version CRLF, single spaces
 * (RFC 4475 §3.1.2.9 lwsstart, §3.1.2.8 lwsruri); §7.2 Status-Line = SIP-Version SP Status-Code
 * SP Reason-Phrase CRLF, the reason possibly empty (RFC 4475 §3.1.1.13 noreason). `line` is the
 * start of `head`.
 */
function readStartLine(line: string, head: string, schemes: readonly string[]): StartLine {
  if (line.length >= 4 && line.charCodeAt(3) === 47 && line.slice(0, 4).toUpperCase() === 'SIP/') {
    const sp = line.indexOf(' ');
    const version = readVersion(sp === -1 ? line : line.slice(0, sp));
    if (version === 'bad') return { kind: 'response', error: bad('Bad Status-Line') };
    if (version === 'other') return { kind: 'response', error: { status: 505, reason: 'Version Not Supported' } };
    const codeEnd = line.indexOf(' ', sp + 1);
    const code = line.slice(sp + 1, codeEnd === -1 ? line.length : codeEnd);
    // Status-Code = 3DIGIT (RFC 4475 §3.1.2.19 bigcode: anything else is dropped).
    if (
      code.length !== 3 ||
      !isDigit(code.charCodeAt(0)) ||
      !isDigit(code.charCodeAt(1)) ||
      !isDigit(code.charCodeAt(2))
    ) {
      return { kind: 'response', error: bad('Bad Status-Code') };
    }
    const status = Number(code);
    if (status < 100 || status > 699) return { kind: 'response', error: bad('Bad Status-Code') };
    return { kind: 'response', status, reason: codeEnd === -1 ? '' : line.slice(codeEnd + 1) };
  }
  // Trailing whitespace after the version is tolerated (RFC 4475 §3.1.2.10 trws: our stated choice).
  const text = trimWs(line);
  const sp1 = text.indexOf(' ');
  const sp2 = sp1 === -1 ? -1 : text.indexOf(' ', sp1 + 1);
  const method = sp1 === -1 ? text : text.slice(0, sp1);
  const kind: Kind = sp2 !== -1 && isSipSlash(text, text.lastIndexOf(' ') + 1) ? 'request' : 'unknown';
  const methodOk = isToken(method);
  const start: StartLine = { kind };
  if (methodOk) start.method = method;
  if (sp2 === -1 || text.indexOf(' ', sp2 + 1) !== -1 || text.indexOf('\t') !== -1 || sp2 === sp1 + 1) {
    return { ...start, error: bad('Bad Request-Line') };
  }
  const uri = text.slice(sp1 + 1, sp2);
  start.uri = uri;
  if (!methodOk) return { ...start, error: bad('Bad Method') };
  // The common "SIP/2.0" is compared in place; anything else goes through readVersion.
  const version =
    text.length - sp2 === 8 && text.startsWith('SIP/2.0', sp2 + 1) ? 'ok' : readVersion(text.slice(sp2 + 1));
  if (version === 'bad') return { ...start, error: bad('Bad SIP-Version') };
  // RFC 3261 §8.2.2 / §21.5.6: 505 for a version we do not speak.
  if (version === 'other') return { ...start, error: { status: 505, reason: 'Version Not Supported' } };
  const scheme = uriScheme(uri);
  if (scheme === undefined) return { ...start, error: bad('Bad Request-URI') };
  // RFC 3261 §8.2.2.1: a scheme we do not serve gets 416 (decided after the headers are read).
  if (!schemes.includes(scheme)) return { ...start, error: { status: 416, reason: 'Unsupported URI Scheme' } };
  // RFC 3261 §19.1.1 (table): URI headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11 escruri).
  // Checked where it stands in `head` (flat text: `line` is its start), past the whitespace trimmed.
  let lead = 0;
  while (line.charCodeAt(lead) === 32 || line.charCodeAt(lead) === 9) lead++;
  if (!isValidUri(head, lead + sp1 + 1, lead + sp2)) return { ...start, error: bad('Bad Request-URI') };
  if (scheme === 'sip' || scheme === 'sips') {
    // "?" may occur in the user part; after the host it starts URI headers.
    const at = uri.indexOf('@');
    if (uri.indexOf('?', at === -1 ? 0 : at) !== -1) return { ...start, error: bad('Bad Request-URI') };
  }
  return start;
}

interface HeaderRead {
  headers: Header[];
  error?: { status: number; reason: string };
}

/**
 * Header fields (RFC 3261 §7.3): name [LWS] ":" value, names matched case-insensitively and
 * stored in canonical long form (§7.3.3), folded lines (§7.3.1: CRLF followed by SP/HTAB)
 * joined with one space. Lines must end in CRLF: a bare CR or LF is an error. `starts` gets where
 * each value begins in `text` (-1 for a folded one, which is not a piece of it): the checks scan
 * the values there, in the flat head text, rather than through the sliced value strings.
 */
function readHeaders(text: string, from: number, maxHeaders: number, starts: number[]): HeaderRead {
  const headers: Header[] = [];
  const n = text.length;
  let pos = from;
  let name: string | undefined;
  let value = '';
  let valueStart = 0;
  let folded = false;
  while (pos < n) {
    // One LF search per line finds its end and any bare LF; one CR search finds any bare CR.
    const lf = text.indexOf('\n', pos);
    let eol: number;
    if (lf === -1) eol = n;
    else {
      if (lf === pos || text.charCodeAt(lf - 1) !== 13) return { headers, error: bad('Bare CR or LF') };
      eol = lf - 1;
    }
    const cr = text.indexOf('\r', pos);
    if (cr !== -1 && cr < eol) return { headers, error: bad('Bare CR or LF') };
    const c0 = text.charCodeAt(pos);
    if (c0 === 32 || c0 === 9) {
      // RFC 3261 §7.3.1: a continuation line of the previous header field.
      if (name === undefined) return { headers, error: bad('Bad header folding') };
      const more = trimWs(text.slice(pos, eol));
      if (more !== '') value = value === '' ? more : `${value} ${more}`;
      folded = true;
      pos = eol + 2;
      continue;
    }
    if (name !== undefined) {
      headers.push({ name, value: folded ? trimWs(value) : value });
      starts.push(folded ? -1 : valueStart);
      if (headers.length > maxHeaders) return { headers, error: bad('Too many headers') };
    }
    // The name is hashed as it is scanned for the lookup of its canonical form; a line that is
    // not plainly name [WS] ":" is left to the general reading below, which names the fault.
    let i = pos;
    let hash = 0;
    while (i < eol) {
      const c = text.charCodeAt(i);
      if (c === 58 || c === 32 || c === 9) break;
      hash = nameHashStep(hash, c);
      i++;
    }
    let nameEnd = i;
    while (i < eol && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
    let colon: number;
    if (nameEnd > pos && i < eol && text.charCodeAt(i) === 58) {
      colon = i;
      name = knownHeaderHashed(text, pos, nameEnd, hash);
    } else {
      colon = text.indexOf(':', pos);
      if (colon === -1 || colon > eol) return { headers, error: bad('Malformed header line') };
      nameEnd = colon;
      while (nameEnd > pos && (text.charCodeAt(nameEnd - 1) === 32 || text.charCodeAt(nameEnd - 1) === 9)) nameEnd--;
      if (nameEnd === pos) return { headers, error: bad('Malformed header line') };
      name = knownHeaderAt(text, pos, nameEnd);
    }
    if (name === undefined) {
      for (let k = pos; k < nameEnd; k++) {
        if (!isTokenChar(text.charCodeAt(k))) return { headers, error: bad('Malformed header name') };
      }
      name = text.slice(pos, nameEnd);
    }
    let a = colon + 1;
    let b = eol;
    while (a < b && (text.charCodeAt(a) === 32 || text.charCodeAt(a) === 9)) a++;
    while (b > a && (text.charCodeAt(b - 1) === 32 || text.charCodeAt(b - 1) === 9)) b--;
    value = text.slice(a, b);
    valueStart = a;
    folded = false;
    pos = eol + 2;
  }
  if (name !== undefined) {
    headers.push({ name, value: folded ? trimWs(value) : value });
    starts.push(folded ? -1 : valueStart);
    if (headers.length > maxHeaders) return { headers, error: bad('Too many headers') };
  }
  return { headers };
}

/** RFC 3261 §20.17 Date = rfc1123-date, always "GMT" (RFC 4475 §3.1.2.12 baddate). */
const WKDAYS = new Set(['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']);
const MONTHS = new Set(['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']);

function isRfc1123Date(v: string): boolean {
  // "Sat, 13 Nov 2010 23:29:00 GMT": fixed layout, 29 characters.
  if (v.length !== 29) return false;
  if (!WKDAYS.has(v.slice(0, 3)) || v.slice(3, 5) !== ', ' || !MONTHS.has(v.slice(8, 11))) return false;
  const digitsAt = [5, 6, 12, 13, 14, 15, 17, 18, 20, 21, 23, 24];
  for (const i of digitsAt) if (!isDigit(v.charCodeAt(i))) return false;
  return v[7] === ' ' && v[11] === ' ' && v[16] === ' ' && v[19] === ':' && v[22] === ':' && v.slice(25) === ' GMT';
}

function allDigits(v: string): boolean {
  if (v.length === 0) return false;
  for (let i = 0; i < v.length; i++) if (!isDigit(v.charCodeAt(i))) return false;
  return true;
}

/**
 * Every element of a name-addr list header must be readable (Route, Record-Route, Contact).
 * With `keep` the elements built are kept for the views (typed-values.ts). `value` is
 * `src[from, from + value.length)`.
 */
function nameAddrListOk(value: string, src: string, from: number, allowStar: boolean, keep: boolean): boolean {
  if (value.indexOf(',') === -1) {
    const end = from + value.length;
    return (keep ? checkNameAddr(value, src, from, end) : isNameAddr(src, from, end)) || (allowStar && value === '*');
  }
  const parts = splitList(value);
  for (const part of parts) if (!(keep ? checkNameAddr(part) : isNameAddr(part))) return false;
  return true;
}

/** `check` on header `index`, given as its value and where it stands in `text` (see readHeaders). */
function checkValue<R>(
  check: (value: string, src: string, from: number, end: number) => R,
  headers: Header[],
  text: string,
  starts: number[],
  index: number,
): R {
  const value = headers[index]!.value;
  const start = starts[index]!;
  return start === -1 ? check(value, value, 0, value.length) : check(value, text, start, start + value.length);
}

function isCallIdValue(_value: string, src: string, from: number, end: number): boolean {
  return isCallId(src, from, end);
}

interface Checked {
  error?: { status: number; reason: string };
  contentLength?: number;
}

/**
 * The request checks of RFC 3261 §8.1.1 / §8.2 / §20 that the message layer owns: exactly one To,
 * From, CSeq, Call-ID (RFC 4475 §3.3.8 multi01), at least one Via, each readable (§3.1.2.1
 * badinv01); CSeq below 2**31 (§8.1.1.5, RFC 4475 §3.1.2.4 scalar02) and naming the request's
 * method (RFC 4475 §3.1.2.17 mismatch01, §3.1.2.18 mismatch02); Max-Forwards 0-255 when present
 * (scalar02); one well-formed Content-Length (RFC 4475 §3.3.9 mcl01, §3.1.2.3 ncl); Date in GMT
 * (§3.1.2.12 baddate); readable Contact, Route, Record-Route, Content-Type and Expires when present.
 */
function checkRequestHeaders(headers: Header[], text: string, starts: number[], method: string): Checked {
  let via = 0;
  let fromAt = -1;
  let fromCount = 0;
  let toAt = -1;
  let toCount = 0;
  let callIdAt = -1;
  let callIdCount = 0;
  let cseqAt = -1;
  let cseqCount = 0;
  let maxForwardsCount = 0;
  let contentLength: string | undefined;
  let contentLengthCount = 0;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    const v = h.value;
    // The value is scanned where it stands in the head text when it is a piece of it.
    const start = starts[i]!;
    const src = start === -1 ? v : text;
    const at = start === -1 ? 0 : start;
    switch (h.name) {
      case 'Via': {
        // The top via-parm is kept for the views (§18.2.2, §17.2.3 read it); the others are checked.
        if (v.indexOf(',') === -1) {
          const end = at + v.length;
          if (!(via === 0 ? checkVia(v, src, at, end) : isVia(src, at, end))) return { error: bad('Bad Via') };
          via++;
          break;
        }
        const parts = splitList(v);
        for (let k = 0; k < parts.length; k++) {
          const part = parts[k]!;
          if (!(via === 0 && k === 0 ? checkVia(part) : isVia(part))) return { error: bad('Bad Via') };
        }
        via += parts.length;
        break;
      }
      case 'From':
        fromAt = i;
        fromCount++;
        break;
      case 'To':
        toAt = i;
        toCount++;
        break;
      case 'Call-ID':
        callIdAt = i;
        callIdCount++;
        break;
      case 'CSeq':
        cseqAt = i;
        cseqCount++;
        break;
      case 'Max-Forwards': {
        maxForwardsCount++;
        if (!allDigits(v) || Number(v) > 255) return { error: bad('Bad Max-Forwards') };
        break;
      }
      case 'Content-Length':
        contentLength = v;
        contentLengthCount++;
        break;
      case 'Contact':
        if (!nameAddrListOk(v, src, at, true, true)) return { error: bad('Bad Contact') };
        break;
      case 'Route':
      case 'Record-Route':
        if (!nameAddrListOk(v, src, at, false, false)) return { error: bad(`Bad ${h.name}`) };
        break;
      case 'Content-Type':
        if (!isValidMediaType(v)) return { error: bad('Bad Content-Type') };
        break;
      case 'Expires':
        if (!allDigits(v)) return { error: bad('Bad Expires') };
        break;
      case 'Date':
        if (!isRfc1123Date(v)) return { error: bad('Bad Date') };
        break;
      default:
        break;
    }
  }
  if (via === 0 || toCount !== 1 || fromCount !== 1 || callIdCount !== 1 || cseqCount !== 1) {
    const missing: string[] = [];
    const multiple: string[] = [];
    const counts: [number, string][] = [
      [via, 'Via'],
      [toCount, 'To'],
      [fromCount, 'From'],
      [callIdCount, 'Call-ID'],
      [cseqCount, 'CSeq'],
    ];
    for (const [count, name] of counts) {
      if (count === 0) missing.push(name);
      else if (count > 1 && name !== 'Via') multiple.push(name);
    }
    return { error: bad(missing.length > 0 ? `Missing ${missing.join(', ')}` : `Multiple ${multiple.join(', ')}`) };
  }
  if (maxForwardsCount > 1) return { error: bad('Multiple Max-Forwards') };
  if (contentLengthCount > 1) return { error: bad('Multiple Content-Length') };
  if (!checkValue(checkNameAddr, headers, text, starts, fromAt)) return { error: bad('Bad From') };
  if (!checkValue(checkNameAddr, headers, text, starts, toAt)) return { error: bad('Bad To') };
  if (!checkValue(isCallIdValue, headers, text, starts, callIdAt)) return { error: bad('Bad Call-ID') };
  const cs = checkValue(checkCSeq, headers, text, starts, cseqAt);
  if (!cs) return { error: bad('Bad CSeq') };
  if (cs.method !== method) return { error: bad('CSeq method mismatch') };
  return contentLengthOf(contentLength);
}

/**
 * A response needs what its client transaction is matched and checked with: a readable top Via
 * (RFC 3261 §18.1.2 compares its sent-by) and one readable CSeq (§17.1.3 matches its method;
 * RFC 4475 §3.1.2.5 scalarlg), plus sound framing and Content-Type. The rest is not checked: an
 * error response echoes the faults of the request it answers (§8.2.6.2 copies From, To, Call-ID),
 * and the client still has to see it to end its transaction.
 */
function checkResponseHeaders(headers: Header[], text: string, starts: number[]): Checked {
  let topViaAt = -1;
  let cseqAt = -1;
  let cseqCount = 0;
  let contentLength: string | undefined;
  let contentLengthCount = 0;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    switch (h.name) {
      case 'Via':
        if (topViaAt === -1) topViaAt = i;
        break;
      case 'CSeq':
        cseqAt = i;
        cseqCount++;
        break;
      case 'Content-Length':
        contentLength = h.value;
        contentLengthCount++;
        break;
      case 'Content-Type':
        if (!isValidMediaType(h.value)) return { error: bad('Bad Content-Type') };
        break;
      default:
        break;
    }
  }
  if (topViaAt === -1) return { error: bad('Missing Via') };
  const topVia = headers[topViaAt]!.value;
  const viaOk =
    topVia.indexOf(',') === -1
      ? checkValue(checkVia, headers, text, starts, topViaAt)
      : checkVia(splitList(topVia)[0]!);
  if (!viaOk) return { error: bad('Bad Via') };
  if (cseqCount === 0) return { error: bad('Missing CSeq') };
  if (cseqCount > 1) return { error: bad('Multiple CSeq') };
  if (!checkValue(checkCSeq, headers, text, starts, cseqAt)) return { error: bad('Bad CSeq') };
  if (contentLengthCount > 1) return { error: bad('Multiple Content-Length') };
  return contentLengthOf(contentLength);
}

function contentLengthOf(value: string | undefined): Checked {
  if (value === undefined) return {};
  if (!allDigits(value) || value.length > 15) return { error: bad('Bad Content-Length') };
  return { contentLength: Number(value) };
}

function failure(
  kind: Kind,
  error: { status: number; reason: string },
  start: StartLine | undefined,
  headers: Header[] | undefined,
): Failure {
  const out: Failure = { ok: false, kind, status: error.status, reason: error.reason };
  if (kind === 'request' || headers) {
    const partial: { method?: string; uri?: string; headers: Header[] } = { headers: headers ?? [] };
    if (start?.method !== undefined) partial.method = start.method;
    if (start?.uri !== undefined) partial.uri = start.uri;
    out.partial = partial;
  }
  return out;
}

function parseUnchecked(data: Buffer, opts: ParseOptions): ParseResult {
  // RFC 3261 §7.5: CRLFs before the start line are ignored.
  let start = 0;
  while (start + 1 < data.length && data[start] === 13 && data[start + 1] === 10) start += 2;
  if (start >= data.length) return { ok: false, kind: 'unknown', status: 400, reason: 'Bad Request - Empty message' };
  const headEnd = data.indexOf(CRLFCRLF, start);
  const text = data.toString('utf8', start, headEnd === -1 ? data.length : headEnd);
  const firstEol = text.indexOf('\r\n');
  const line = firstEol === -1 ? text : text.slice(0, firstEol);
  if (line.indexOf('\n') !== -1 || line.indexOf('\r') !== -1) {
    return { ok: false, kind: 'unknown', status: 400, reason: 'Bad Request - Bare CR or LF' };
  }
  const startLine = readStartLine(line, text, opts.uriSchemes ?? DEFAULT_URI_SCHEMES);
  const kind = startLine.kind;
  const starts: number[] = [];
  const read =
    firstEol === -1
      ? { headers: [] as Header[] }
      : readHeaders(text, firstEol + 2, opts.maxHeaders ?? DEFAULT_MAX_HEADERS, starts);
  const headers = read.headers;
  // Precedence: a start line we cannot use (400, 505), then header syntax, then framing, then
  // header semantics, then 416 and 420 for requests that are otherwise fine.
  if (startLine.error && startLine.error.status !== 416) return failure(kind, startLine.error, startLine, headers);
  if (kind === 'unknown') return failure(kind, bad('Bad start line'), startLine, headers);
  if (read.error) return failure(kind, read.error, startLine, headers);
  if (headEnd === -1) return failure(kind, bad('Missing empty line after headers'), startLine, headers);
  const checked =
    kind === 'request'
      ? checkRequestHeaders(headers, text, starts, startLine.method!)
      : checkResponseHeaders(headers, text, starts);
  if (checked.error) return failure(kind, checked.error, startLine, headers);
  if (startLine.error) return failure(kind, startLine.error, startLine, headers);

  // RFC 3261 §18.3 framing.
  const bodyStart = headEnd + 4;
  const available = data.length - bodyStart;
  let bodyLength: number;
  if (checked.contentLength !== undefined) {
    // RFC 4475 §3.1.2.2 clerr: a Content-Length larger than what arrived is an error; octets
    // past it are not part of this message (§18.3: extra datagram octets MUST be discarded).
    if (checked.contentLength > available) return failure(kind, bad('Content-Length mismatch'), startLine, headers);
    bodyLength = checked.contentLength;
  } else if (opts.datagram) {
    // §18.3: without Content-Length the datagram ends the body.
    bodyLength = available;
  } else {
    // §18.3, §20.14: on a stream transport Content-Length MUST be present.
    if (available > 0) return failure(kind, bad('Missing Content-Length'), startLine, headers);
    bodyLength = 0;
  }
  const body = data.subarray(bodyStart, bodyStart + bodyLength);

  let message: SipMessage;
  if (kind === 'request') {
    message = { kind: 'request', method: startLine.method!, uri: startLine.uri!, headers, body };
    if (opts.supportedOptionTags) {
      const unsupported = checkRequire(message, opts.supportedOptionTags);
      if (unsupported.length > 0) {
        const out = failure(kind, { status: 420, reason: 'Bad Extension' }, startLine, headers);
        out.unsupported = unsupported;
        return out;
      }
    }
  } else {
    message = { kind: 'response', status: startLine.status!, reason: startLine.reason!, headers, body };
  }
  return { ok: true, message };
}

/**
 * Parse one message. `data` is one datagram, or exactly one message cut from a stream by
 * `frameStream`. The body is a view into `data` (no copy). Never throws.
 */
export function parseMessage(data: Buffer, opts: ParseOptions = {}): ParseResult {
  try {
    if (!Buffer.isBuffer(data)) {
      const raw: unknown = data;
      if (!(raw instanceof Uint8Array))
        return { ok: false, kind: 'unknown', status: 400, reason: 'Bad Request - Not octets' };
      data = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    }
    const options = opts ?? {};
    if (options.maxBytes !== undefined && data.length > options.maxBytes) {
      // RFC 3261 §21.5.7 (513): still read the head so that the request can be answered.
      const head = parseUnchecked(data, { ...options, maxBytes: undefined, datagram: true });
      const status = 513;
      const reason = 'Message Too Large';
      if (head.ok) {
        const m = head.message;
        const kind: Kind = m.kind;
        const partial: { method?: string; uri?: string; headers: Header[] } = { headers: m.headers };
        if (m.kind === 'request') {
          partial.method = m.method;
          partial.uri = m.uri;
        }
        return { ok: false, kind, status, reason, partial };
      }
      return { ok: false, kind: head.kind, status, reason, ...(head.partial ? { partial: head.partial } : {}) };
    }
    return parseUnchecked(data, options);
  } catch {
    return { ok: false, kind: 'unknown', status: 400, reason: 'Bad Request - Unreadable message' };
  }
}
