/**
 * Character classes and small scanners for the RFC 3261 §25.1 grammar.
 *
 * Everything works on char codes with a lookup table: no regular expressions on untrusted
 * input, so no backtracking, and every scanner is linear in its input.
 */

// Bit flags of the ASCII lookup table.
const ALPHA = 1;
const DIGIT = 2;
/** RFC 3261 §25.1 token: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" */
const TOKEN = 4;
/** RFC 3261 §25.1 unreserved: alphanum / mark ("-" "_" "." "!" "~" "*" "'" "(" ")") */
const UNRESERVED = 8;
/** user-unreserved: "&" / "=" / "+" / "$" / "," / ";" / "?" / "/" */
const USER_EXTRA = 16;
/** password extra: "&" / "=" / "+" / "$" / "," */
const PASSWORD_EXTRA = 32;
/** param-unreserved: "[" / "]" / "/" / ":" / "&" / "+" / "$" */
const PARAM_EXTRA = 64;
/** hnv-unreserved: "[" / "]" / "/" / "?" / ":" / "+" / "$" */
const HNV_EXTRA = 128;
/** Call-ID word: alphanum and "-.!%*_+`'~()<>:\"/[]?{}" */
const WORD = 256;
/** reserved: ";" / "/" / "?" / ":" / "@" / "&" / "=" / "+" / "$" / "," */
const RESERVED = 512;
const HEX = 1024;
/** gen-value characters outside quotes: token / host (":" "[" "]" of IPv6 references), RFC 3261 §25.1. */
const GEN_VALUE = 2048;

const TABLE = new Uint16Array(128);

function mark(chars: string, flag: number): void {
  for (let i = 0; i < chars.length; i++) TABLE[chars.charCodeAt(i)]! |= flag;
}

(() => {
  const lower = 'abcdefghijklmnopqrstuvwxyz';
  const upper = lower.toUpperCase();
  const digits = '0123456789';
  mark(lower + upper, ALPHA | TOKEN | UNRESERVED | WORD);
  mark(digits, DIGIT | TOKEN | UNRESERVED | WORD | HEX);
  mark('abcdefABCDEF', HEX);
  mark("-.!%*_+`'~", TOKEN);
  mark("-_.!~*'()", UNRESERVED);
  mark('&=+$,;?/', USER_EXTRA);
  mark('&=+$,', PASSWORD_EXTRA);
  mark('[]/:&+$', PARAM_EXTRA);
  mark('[]/?:+$', HNV_EXTRA);
  mark('-.!%*_+`\'~()<>:\\"/[]?{}', WORD);
  mark(';/?:@&=+$,', RESERVED);
  for (let c = 0; c < 128; c++) if ((TABLE[c]! & TOKEN) !== 0) TABLE[c]! |= GEN_VALUE;
  mark(':[]', GEN_VALUE);
})();

export function isTokenChar(c: number): boolean {
  return c < 128 && (TABLE[c]! & TOKEN) !== 0;
}

export function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

export function isAlpha(c: number): boolean {
  return c < 128 && (TABLE[c]! & ALPHA) !== 0;
}

export function isAlphanum(c: number): boolean {
  return c < 128 && (TABLE[c]! & (ALPHA | DIGIT)) !== 0;
}

export function isHexChar(c: number): boolean {
  return c < 128 && (TABLE[c]! & HEX) !== 0;
}

export function isUnreservedChar(c: number): boolean {
  return c < 128 && (TABLE[c]! & UNRESERVED) !== 0;
}

/** Which extra characters an escaped URI component admits besides unreserved and %HH. */
export const UriPart = {
  User: USER_EXTRA,
  Password: PASSWORD_EXTRA,
  Param: PARAM_EXTRA,
  Header: HNV_EXTRA,
  /** RFC 2396 uric: reserved / unreserved / escaped (opaque parts of other schemes). */
  Uric: RESERVED,
} as const;
export type UriPart = (typeof UriPart)[keyof typeof UriPart];

/**
 * End of the run of `part` characters (unreserved, the part's extras, or %HH escapes)
 * starting at `from`; -1 when a "%" is not followed by two hex digits.
 */
export function scanEscaped(s: string, from: number, end: number, part: UriPart): number {
  const allowed = UNRESERVED | part;
  let i = from;
  while (i < end) {
    const c = s.charCodeAt(i);
    if (c === 37) {
      // RFC 3261 §25.1: escaped = "%" HEXDIG HEXDIG
      if (i + 2 >= end) return -1;
      if (!isHexChar(s.charCodeAt(i + 1)) || !isHexChar(s.charCodeAt(i + 2))) return -1;
      i += 3;
      continue;
    }
    if (c >= 128 || (TABLE[c]! & allowed) === 0) break;
    i++;
  }
  return i;
}

/** End of the token starting at `from` (== from when there is none). */
export function scanToken(s: string, from: number, end: number = s.length): number {
  let i = from;
  while (i < end) {
    const c = s.charCodeAt(i);
    if (c >= 128 || (TABLE[c]! & TOKEN) === 0) break;
    i++;
  }
  return i;
}

export function isToken(s: string): boolean {
  return s.length > 0 && scanToken(s, 0) === s.length;
}

/** RFC 3261 §25.1 callid = word [ "@" word ], for `s[from, n)`. */
export function isCallId(s: string, from = 0, n: number = s.length): boolean {
  if (n <= from) return false;
  let at = -1;
  for (let i = from; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 64) {
      if (at !== -1 || i === from || i === n - 1) return false;
      at = i;
      continue;
    }
    if (c >= 128 || (TABLE[c]! & WORD) === 0) return false;
  }
  return true;
}

/** Skip SP / HTAB (folding has already been collapsed to single spaces by the parser). */
export function skipWs(s: string, from: number, end: number = s.length): number {
  let i = from;
  while (i < end) {
    const c = s.charCodeAt(i);
    if (c !== 32 && c !== 9) break;
    i++;
  }
  return i;
}

/** `s` without leading/trailing SP / HTAB (the LWS of RFC 3261 §25.1; CR LF never reach here). */
export function trimWs(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 32 || s.charCodeAt(a) === 9)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 32 || s.charCodeAt(b - 1) === 9)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/**
 * RFC 3261 §25.1 quoted-string starting at `from` (which holds the DQUOTE): returns the index
 * after the closing DQUOTE, or -1 when it is not closed.
 */
export function scanQuoted(s: string, from: number, end: number = s.length): number {
  let i = from + 1;
  while (i < end) {
    const c = s.charCodeAt(i);
    if (c === 92) {
      // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
      if (i + 1 >= end) return -1;
      i += 2;
      continue;
    }
    if (c === 34) return i + 1;
    i++;
  }
  return -1;
}

/** The content of a quoted-string (with its quotes) with quoted-pairs resolved. */
export function unquote(q: string): string {
  const inner = q.slice(1, -1);
  if (inner.indexOf('\\') === -1) return inner;
  let out = '';
  for (let i = 0; i < inner.length; i++) {
    const ch = inner[i]!;
    if (ch === '\\' && i + 1 < inner.length) {
      out += inner[i + 1];
      i++;
    } else out += ch;
  }
  return out;
}

/** A quoted-string for `text` (RFC 3261 §25.1), escaping DQUOTE and backslash. */
export function quote(text: string): string {
  return `"${text.replace(/[\\"]/g, (m) => `\\${m}`)}"`;
}

/** RFC 3261 §25.1 IPv4address, each part 0-255. */
export function isIPv4(s: string, from = 0, end = s.length): boolean {
  let parts = 0;
  let digits = 0;
  let value = 0;
  for (let i = from; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0) return false;
      parts++;
      digits = 0;
      value = 0;
      continue;
    }
    if (!isDigit(c) || ++digits > 3) return false;
    value = value * 10 + (c - 48);
    if (value > 255) return false;
  }
  return digits > 0 && parts === 3;
}

function hex4(s: string, from: number, end: number): boolean {
  const n = end - from;
  if (n < 1 || n > 4) return false;
  for (let i = from; i < end; i++) if (!isHexChar(s.charCodeAt(i))) return false;
  return true;
}

/**
 * RFC 3261 §25.1 IPv6address (hexpart [ ":" IPv4address ]), the grammar RFC 5118 §4.4 / §4.5
 * tests: at most one "::", at most 8 groups (6 before a trailing IPv4), no ":::".
 */
export function isIPv6(s: string, from = 0, end = s.length): boolean {
  if (end - from < 2) return false;
  const text = from === 0 && end === s.length ? s : s.slice(from, end);
  const dbl = text.indexOf('::');
  if (dbl !== -1 && text.indexOf('::', dbl + 1) !== -1) return false;
  let groups = 0;
  const countGroups = (part: string, allowV4: boolean): boolean => {
    if (part.length === 0) return true;
    let start = 0;
    for (;;) {
      const colon = part.indexOf(':', start);
      const stop = colon === -1 ? part.length : colon;
      if (colon === -1 && allowV4 && part.indexOf('.', start) !== -1) {
        if (!isIPv4(part, start, stop)) return false;
        groups += 2;
        return true;
      }
      if (!hex4(part, start, stop)) return false;
      groups++;
      if (colon === -1) return true;
      start = colon + 1;
    }
  };
  if (dbl === -1) {
    if (!countGroups(text, true)) return false;
    return groups === 8;
  }
  const head = text.slice(0, dbl);
  const tail = text.slice(dbl + 2);
  if (!countGroups(head, false) || !countGroups(tail, true)) return false;
  // "::" stands for at least one group of zeros.
  return groups < 8;
}

/**
 * One pass over host = hostname / IPv4address / IPv6reference at `from` (RFC 3261 §25.1):
 * the index after it, or -1 when the characters there do not form a valid host. Stops at the
 * first character that cannot belong to a host (":", ";", ">", ...).
 */
export function scanHost(s: string, from: number, end: number): number {
  if (from >= end) return -1;
  if (s.charCodeAt(from) === 91) {
    const close = s.indexOf(']', from);
    if (close === -1 || close >= end || !isIPv6(s, from + 1, close)) return -1;
    return close + 1;
  }
  let i = from;
  let labelStart = from;
  let lastLabelStart = from;
  let numeric = true; // digits and dots only: an IPv4address
  let dots = 0;
  let partDigits = 0;
  let partValue = 0;
  for (; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      // A label is non-empty and does not start or end with "-".
      if (i === labelStart || s.charCodeAt(i - 1) === 45) return -1;
      dots++;
      partDigits = 0;
      partValue = 0;
      lastLabelStart = labelStart;
      labelStart = i + 1;
      continue;
    }
    if (c >= 48 && c <= 57) {
      if (numeric) {
        partValue = partValue * 10 + (c - 48);
        if (++partDigits > 3 || partValue > 255) numeric = false;
      }
      continue;
    }
    if (c === 45) {
      if (i === labelStart) return -1;
      numeric = false;
      continue;
    }
    if (c < 128 && (TABLE[c]! & ALPHA) !== 0) {
      numeric = false;
      continue;
    }
    break;
  }
  if (i === from) return -1;
  if (numeric) return dots === 3 && partDigits > 0 ? i : -1;
  // hostname = *( domainlabel "." ) toplabel [ "." ]; toplabel starts with ALPHA.
  const top = i === labelStart ? lastLabelStart : labelStart;
  if (i !== labelStart && s.charCodeAt(i - 1) === 45) return -1;
  if (i === labelStart && dots === 0) return -1;
  return isAlpha(s.charCodeAt(top)) ? i : -1;
}

/** port = 1*DIGIT, kept to the 16-bit range a transport can use. */
export function parsePort(s: string, from: number, end: number): number | undefined {
  if (end <= from || end - from > 5) return undefined;
  let v = 0;
  for (let i = from; i < end; i++) {
    const c = s.charCodeAt(i);
    if (!isDigit(c)) return undefined;
    v = v * 10 + (c - 48);
  }
  return v <= 65535 ? v : undefined;
}

/**
 * Parameter names met on every message (RFC 3261 §19.1.1, §20.10, §20.20, §20.42; RFC 3581;
 * RFC 3840; RFC 4028; RFC 5626; RFC 6665), lower case. Handing out these very strings as keys
 * spares a slice and a toLowerCase per parameter, and the engine stores an interned key faster.
 */
const PARAM_NAMES = [
  'tag',
  'branch',
  'rport',
  'received',
  'transport',
  'lr',
  'maddr',
  'ttl',
  'user',
  'method',
  'expires',
  'q',
  'boundary',
  'charset',
  'handling',
  'reason',
  'retry-after',
  'id',
  'ob',
  'comp',
  'gr',
  'reg-id',
  '+sip.instance',
  'refresher',
  'cause',
  'text',
  'version',
  'purpose',
  'duration',
  'phone-context',
  'isub',
  'ext',
  'sigcomp-id',
  'alias',
  'keep',
  'to-tag',
  'from-tag',
  'early-only',
];
const NAME_SLOTS = 128;
// '' marks a free slot (no name is empty) and keeps the array packed.
const nameSlots: string[] = new Array<string>(NAME_SLOTS).fill('');

/** ASCII lower case of one character code (other characters unchanged). */
function lowerCode(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

function nameHashStep(h: number, c: number): number {
  return (Math.imul(h, 31) + lowerCode(c)) | 0;
}

function nameHash(s: string, from: number, end: number): number {
  let h = 0;
  for (let i = from; i < end; i++) h = nameHashStep(h, s.charCodeAt(i));
  return h;
}

for (const name of PARAM_NAMES) {
  let slot = nameHash(name, 0, name.length) & (NAME_SLOTS - 1);
  while (nameSlots[slot] !== '') slot = (slot + 1) & (NAME_SLOTS - 1);
  nameSlots[slot] = name;
}

/** `s[from, end)` lower-cased: one of PARAM_NAMES when it is one, without allocating. */
export function lowerName(s: string, from: number, end: number): string {
  return lowerNameHashed(s, from, end, nameHash(s, from, end));
}

/** lowerName for a caller that has hashed `s[from, end)` with nameHashStep as it scanned it. */
function lowerNameHashed(s: string, from: number, end: number, hash: number): string {
  const len = end - from;
  let slot = hash & (NAME_SLOTS - 1);
  for (;;) {
    const known = nameSlots[slot]!;
    if (known === '') break;
    if (known.length === len) {
      let i = 0;
      while (i < len && lowerCode(s.charCodeAt(from + i)) === known.charCodeAt(i)) i++;
      if (i === len) return known;
    }
    slot = (slot + 1) & (NAME_SLOTS - 1);
  }
  return s.slice(from, end).toLowerCase();
}

/**
 * `*( SEMI generic-param )` from `from` (RFC 3261 §25.1): generic-param = token [ EQUAL gen-value ],
 * gen-value = token / host / quoted-string. Names are lower-cased (they compare case-insensitively);
 * values are kept as written, quoted-strings with their quotes. IPv6 values without brackets
 * (RFC 5118 §4.5 `received=2001:db8::9:255`) are accepted. Stores into `out` when given (validation
 * alone allocates nothing). Returns the index after the list (and trailing whitespace), where the
 * first character that does not continue it stands, or -1 on a syntax error (with `requireValues`,
 * also on a parameter without "=" value).
 */
export function scanParams(
  s: string,
  from: number,
  end: number,
  out: Record<string, string | null> | null,
  requireValues = false,
): number {
  let i = skipWs(s, from, end);
  while (i < end && s.charCodeAt(i) === 59) {
    i = skipWs(s, i + 1, end);
    // The name is hashed as it is scanned, for lowerName's table of common names.
    const nameStart = i;
    let hash = 0;
    while (i < end) {
      const c = s.charCodeAt(i);
      if (c >= 128 || (TABLE[c]! & TOKEN) === 0) break;
      hash = nameHashStep(hash, c);
      i++;
    }
    const nameEnd = i;
    if (nameEnd === nameStart) return -1;
    i = skipWs(s, nameEnd, end);
    let valueStart = -1;
    let valueEnd = -1;
    if (i < end && s.charCodeAt(i) === 61) {
      i = skipWs(s, i + 1, end);
      if (i < end && s.charCodeAt(i) === 34) {
        const q = scanQuoted(s, i, end);
        if (q === -1) return -1;
        valueStart = i;
        valueEnd = q;
      } else {
        let j = i;
        while (j < end) {
          const c = s.charCodeAt(j);
          if (c >= 128 || (TABLE[c]! & GEN_VALUE) === 0) break;
          j++;
        }
        if (j === i) return -1;
        valueStart = i;
        valueEnd = j;
      }
      i = skipWs(s, valueEnd, end);
    } else if (requireValues) return -1;
    if (out !== null) {
      out[lowerNameHashed(s, nameStart, nameEnd, hash)] = valueStart === -1 ? null : s.slice(valueStart, valueEnd);
    }
  }
  return i;
}

/** The parameters of `s` from `from` to its end, or undefined when they do not read to the end. */
export function readParams(s: string, from: number): Record<string, string | null> | undefined {
  const params: Record<string, string | null> = {};
  return scanParams(s, from, s.length, params) === s.length ? params : undefined;
}

/** `;name=value` text for a parameter map (null values are bare names). */
export function formatParams(params: Record<string, string | null> | undefined): string {
  if (!params) return '';
  let out = '';
  for (const key of Object.keys(params)) {
    const v = params[key];
    if (v === undefined) continue;
    out += v === null ? `;${key}` : `;${key}=${v}`;
  }
  return out;
}

/**
 * Split a header field value at the commas that separate list elements (RFC 3261 §7.3.1),
 * ignoring commas inside quoted strings and <...>. Elements are trimmed; empty ones are kept so
 * that validation can see them.
 */
export function splitList(value: string): string[] {
  if (value.indexOf(',') === -1) return [trimWs(value)];
  const out: string[] = [];
  let start = 0;
  let inQuote = false;
  let inAngle = false;
  const n = value.length;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (inQuote) {
      if (c === 92) i++;
      else if (c === 34) inQuote = false;
      continue;
    }
    if (c === 34) inQuote = true;
    else if (c === 60) inAngle = true;
    else if (c === 62) inAngle = false;
    else if (c === 44 && !inAngle) {
      out.push(trimWs(value.slice(start, i)));
      start = i + 1;
    }
  }
  out.push(trimWs(value.slice(start)));
  return out;
}
