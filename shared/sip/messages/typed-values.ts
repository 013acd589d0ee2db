/**
 * Readers of the header values every transaction looks at: name-addr (RFC 3261 §20.10, §25.1),
 * via-parm (§20.42, RFC 3581, RFC 5118 §4.5) and CSeq (§20.16), and a bounded memo of what they
 * built, keyed by the value text.
 *
 * The parser validates these values anyway (§8.1.1, §8.2), so it keeps what it built in the memo
 * and the views of `./headers.ts` read it back instead of parsing the same text again. A result
 * depends on the text alone, so the memo stays right whatever happens to the message later
 * (setHeader, removeHeaders, edits in place): a changed value is a different key. Views hand out
 * copies; the stored values never leave this module. Internal: not part of the barrel.
 */
import {
  isDigit,
  isTokenChar,
  parsePort,
  scanHost,
  scanParams,
  scanQuoted,
  scanToken,
  skipWs,
  trimWs,
  unquote,
} from './grammar.ts';
import { isValidUri } from './uri.ts';
import type { CSeq, NameAddr, UriParams, Via } from './types.ts';

// ---- memo -----------------------------------------------------------------------------------------

/** Values remembered per kind (a power of two): the last few messages' worth. */
const SLOTS = 32;

/**
 * The most recent text -> value pairs of one kind, in a ring. Lookups compare the text (length
 * first, then `===`, which is a pointer test when the view is given the very string the parser
 * stored), newest first, so a view right after parsing finds its value at once; nothing is hashed
 * and memory stays bounded. A text that has dropped out is simply read again.
 */
class ValueMemo<T> {
  private readonly texts: (string | undefined)[] = new Array<string | undefined>(SLOTS).fill(undefined);
  private readonly values: (T | undefined)[] = new Array<T | undefined>(SLOTS).fill(undefined);
  private next = 0;

  get(text: string): T | undefined {
    const texts = this.texts;
    const len = text.length;
    let i = this.next;
    for (let k = 0; k < SLOTS; k++) {
      i = (i - 1) & (SLOTS - 1);
      const t = texts[i];
      // Slots fill in order: an empty one means there is nothing older.
      if (t === undefined) return undefined;
      if (t.length === len && t === text) return this.values[i];
    }
    return undefined;
  }

  set(text: string, value: T): void {
    const i = this.next;
    this.texts[i] = text;
    this.values[i] = value;
    this.next = (i + 1) & (SLOTS - 1);
  }
}

const viaMemo = new ValueMemo<Via>();
const nameAddrMemo = new ValueMemo<NameAddr>();
const cseqMemo = new ValueMemo<CSeq>();

/** A `;__proto__` parameter gives its map another prototype, which a copy would lose: such values are not kept. */
function plainParams(params: UriParams): boolean {
  return Object.getPrototypeOf(params) === Object.prototype;
}

function copyVia(v: Via): Via {
  const out: Via = { transport: v.transport, host: v.host, params: { ...v.params } };
  if (v.port !== undefined) out.port = v.port;
  if (v.branch !== undefined) out.branch = v.branch;
  if (v.received !== undefined) out.received = v.received;
  if (v.rport !== undefined) out.rport = v.rport;
  return out;
}

function copyNameAddr(na: NameAddr): NameAddr {
  const params = { ...na.params };
  return na.displayName === undefined ? { uri: na.uri, params } : { displayName: na.displayName, uri: na.uri, params };
}

// ---- name-addr (RFC 3261 §20.10, §25.1) --------------------------------------------------------

/**
 * The name-addr `s[from, n)`. undefined: malformed; null: well-formed (not built, `build` false);
 * else the parsed value.
 */
function readNameAddr(s: string, from: number, n: number, build: boolean): NameAddr | null | undefined {
  let i = skipWs(s, from, n);
  let displayName: string | undefined;
  if (i < n && s.charCodeAt(i) === 34) {
    const q = scanQuoted(s, i, n);
    if (q === -1) return undefined;
    if (build) displayName = unquote(s.slice(i, q));
    i = skipWs(s, q, n);
    if (i >= n || s.charCodeAt(i) !== 60) return undefined;
  } else if (i < n && s.charCodeAt(i) !== 60) {
    // display-name = *(token LWS): scan tokens and whitespace; a "<" ends a display name, a ":"
    // right after the first token means it was a URI scheme (addr-spec form).
    let j = i;
    while (j < n) {
      const c = s.charCodeAt(j);
      if (isTokenChar(c) || c === 32 || c === 9) j++;
      else break;
    }
    if (j < n && s.charCodeAt(j) === 60) {
      if (build) {
        const name = trimWs(s.slice(i, j));
        if (name !== '') displayName = name;
      }
      i = j;
    } else if (j < n && s.charCodeAt(j) === 58 && scanToken(s, i, n) >= j) {
      // addr-spec: up to the first ";" or whitespace (RFC 3261 §20.10).
      let k = j;
      while (k < n) {
        const c = s.charCodeAt(k);
        if (c === 59 || c === 32 || c === 9) break;
        if (c === 60 || c === 62 || c === 34 || c === 44) return undefined;
        k++;
      }
      return finishNameAddr(s, i, k, k, n, displayName, build);
    } else return undefined;
  }
  // LAQUOT addr-spec RAQUOT: no whitespace inside the brackets (RFC 4475 §3.1.2.14 badaspec).
  const close = s.indexOf('>', i + 1);
  if (close === -1 || close >= n) return undefined;
  return finishNameAddr(s, i + 1, close, close + 1, n, displayName, build);
}

function finishNameAddr(
  s: string,
  uriStart: number,
  uriEnd: number,
  paramsFrom: number,
  n: number,
  displayName: string | undefined,
  build: boolean,
): NameAddr | null | undefined {
  // Whitespace, "<" and DQUOTE are in no URI character class, so this also rejects them.
  if (!isValidUri(s, uriStart, uriEnd)) return undefined;
  // Header parameters: the common empty list needs no scan and no map.
  if (paramsFrom === n) {
    if (!build) return null;
    const uri = s.slice(uriStart, uriEnd);
    return displayName === undefined ? { uri, params: {} } : { displayName, uri, params: {} };
  }
  const params: UriParams | null = build ? {} : null;
  if (scanParams(s, paramsFrom, n, params) !== n) return undefined;
  if (params === null) return null;
  const uri = s.slice(uriStart, uriEnd);
  return displayName === undefined ? { uri, params } : { displayName, uri, params };
}

/** A copy of the name-addr `s` reads as, from the memo when the parser (or a view) read it before. */
export function nameAddrView(s: string): NameAddr | undefined {
  const known = nameAddrMemo.get(s);
  if (known !== undefined) return copyNameAddr(known);
  const na = readNameAddr(s, 0, s.length, true);
  if (!na) return undefined;
  if (plainParams(na.params)) nameAddrMemo.set(s, na);
  return copyNameAddr(na);
}

/** Whether `s` is a name-addr; never reads the memo (validation does the full work). */
export function isNameAddr(s: string, from = 0, end = s.length): boolean {
  return readNameAddr(s, from, end, false) !== undefined;
}

/**
 * Validation that keeps its result: whether `value` is a name-addr, storing it for the views when
 * so. `value` may be given as `src[from, end)` (the parser's head text, so no sliced string is
 * scanned); the stored key is `value`.
 */
export function checkNameAddr(value: string, src = value, from = 0, end = value.length): boolean {
  const na = readNameAddr(src, from, end, true);
  if (!na) return false;
  if (plainParams(na.params)) nameAddrMemo.set(value, na);
  return true;
}

// ---- Via (RFC 3261 §20.42, RFC 3581, RFC 5118 §4.5) ---------------------------------------------

/** The transport upper-cased: UDP, TCP, TLS (RFC 3261 §20.42), WS, WSS (RFC 7118 §5) without allocating. */
function transportName(s: string, from: number, end: number): string {
  const len = end - from;
  const c0 = s.charCodeAt(from) & ~32;
  if (len === 3) {
    const c1 = s.charCodeAt(from + 1) & ~32;
    const c2 = s.charCodeAt(from + 2) & ~32;
    if (c0 === 84 && c1 === 67 && c2 === 80) return 'TCP';
    if (c0 === 85 && c1 === 68 && c2 === 80) return 'UDP';
    if (c0 === 84 && c1 === 76 && c2 === 83) return 'TLS';
    if (c0 === 87 && c1 === 83 && c2 === 83) return 'WSS';
  } else if (len === 2) {
    if (c0 === 87 && (s.charCodeAt(from + 1) & ~32) === 83) return 'WS';
  }
  return s.slice(from, end).toUpperCase();
}

/**
 * One via-parm `s[from, n)`: sent-protocol LWS sent-by *( SEMI via-params ), LWS allowed around
 * "/" (RFC 4475 §3.1.1.1 wsinv). undefined: malformed; null: well-formed (not built); else the
 * parsed value.
 */
function readVia(s: string, from: number, n: number, build: boolean): Via | null | undefined {
  let i = skipWs(s, from, n);
  const protoEnd = scanToken(s, i, n);
  if (protoEnd - i !== 3) return undefined;
  const p0 = s.charCodeAt(i) | 32;
  const p1 = s.charCodeAt(i + 1) | 32;
  const p2 = s.charCodeAt(i + 2) | 32;
  if (p0 !== 115 || p1 !== 105 || p2 !== 112) return undefined; // "SIP", any case
  i = skipWs(s, protoEnd, n);
  if (i >= n || s.charCodeAt(i) !== 47) return undefined;
  i = skipWs(s, i + 1, n);
  const versionEnd = scanToken(s, i, n);
  if (versionEnd - i !== 3 || s.charCodeAt(i) !== 50 || s.charCodeAt(i + 1) !== 46 || s.charCodeAt(i + 2) !== 48) {
    return undefined; // "2.0"
  }
  i = skipWs(s, versionEnd, n);
  if (i >= n || s.charCodeAt(i) !== 47) return undefined;
  i = skipWs(s, i + 1, n);
  const transportStart = i;
  const transportEnd = scanToken(s, i, n);
  if (transportEnd === i) return undefined;
  i = skipWs(s, transportEnd, n);
  if (i === transportEnd) return undefined;
  const hostEnd = scanHost(s, i, n);
  if (hostEnd === -1) return undefined;
  const hostStart = i;
  i = skipWs(s, hostEnd, n);
  let port: number | undefined;
  if (i < n && s.charCodeAt(i) === 58) {
    i = skipWs(s, i + 1, n);
    let j = i;
    while (j < n && isDigit(s.charCodeAt(j))) j++;
    port = parsePort(s, i, j);
    if (port === undefined) return undefined;
    i = j;
  }
  const params: UriParams = {};
  if (scanParams(s, i, n, params) !== n) return undefined;
  // RFC 3581 §3: rport = "rport" [EQUAL 1*DIGIT]
  const rport = params.rport;
  let rportValue: number | null | undefined;
  if (rport !== undefined) {
    rportValue = rport === null ? null : parsePort(rport, 0, rport.length);
    if (rportValue === undefined) return undefined;
  }
  if (!build) return null;
  const via: Via = {
    transport: transportName(s, transportStart, transportEnd),
    host: s.slice(hostStart, hostEnd),
    params,
  };
  if (port !== undefined) via.port = port;
  const branch = params.branch;
  if (typeof branch === 'string') via.branch = branch;
  const received = params.received;
  if (typeof received === 'string') via.received = received;
  if (rportValue !== undefined) via.rport = rportValue;
  return via;
}

/** A copy of the via-parm `s` reads as, from the memo when the parser (or a view) read it before. */
export function viaView(s: string): Via | undefined {
  const known = viaMemo.get(s);
  if (known !== undefined) return copyVia(known);
  const via = readVia(s, 0, s.length, true);
  if (!via) return undefined;
  if (plainParams(via.params)) viaMemo.set(s, via);
  return copyVia(via);
}

/**
 * Remember `via` as what `text` reads as, for a text formatted from it (formatReadVia); the caller
 * vouches that reading `text` gives this value. A copy is kept.
 */
export function noteVia(text: string, via: Via): void {
  if (plainParams(via.params)) viaMemo.set(text, copyVia(via));
}

/** Whether `s` is one via-parm; never reads the memo. */
export function isVia(s: string, from = 0, end = s.length): boolean {
  return readVia(s, from, end, false) !== undefined;
}

/** Validation that keeps its result (as checkNameAddr): whether `value` is one via-parm. */
export function checkVia(value: string, src = value, from = 0, end = value.length): boolean {
  const via = readVia(src, from, end, true);
  if (!via) return false;
  if (plainParams(via.params)) viaMemo.set(value, via);
  return true;
}

// ---- CSeq (RFC 3261 §20.16) ---------------------------------------------------------------------

/** CSeq `s[from, n)` = 1*DIGIT LWS Method, the number below 2**31 (§8.1.1.5). */
function readCSeq(s: string, from: number, n: number): CSeq | undefined {
  const i = skipWs(s, from, n);
  let j = i;
  let seq = 0;
  while (j < n) {
    const c = s.charCodeAt(j);
    if (!isDigit(c)) break;
    seq = seq * 10 + (c - 48);
    j++;
  }
  if (j === i || j - i > 10 || seq >= 2 ** 31) return undefined;
  const k = skipWs(s, j, n);
  if (k === j) return undefined;
  const methodEnd = scanToken(s, k, n);
  if (methodEnd === k || skipWs(s, methodEnd, n) !== n) return undefined;
  return { seq, method: s.slice(k, methodEnd) };
}

/** A copy of the CSeq `s` reads as, from the memo when the parser (or a view) read it before. */
export function cseqView(s: string): CSeq | undefined {
  const known = cseqMemo.get(s);
  if (known !== undefined) return { seq: known.seq, method: known.method };
  const cs = readCSeq(s, 0, s.length);
  if (!cs) return undefined;
  cseqMemo.set(s, cs);
  return { seq: cs.seq, method: cs.method };
}

/** Validation that keeps its result (as checkNameAddr): the CSeq `value` reads as, or undefined. */
export function checkCSeq(value: string, src = value, from = 0, end = value.length): CSeq | undefined {
  const cs = readCSeq(src, from, end);
  if (cs) cseqMemo.set(value, cs);
  return cs;
}
