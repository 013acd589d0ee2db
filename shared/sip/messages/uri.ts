/**
 * URIs: SIP and SIPS (RFC 3261 §19.1, IPv6 references per RFC 5118), tel (RFC 3966), and any
 * other absolute URI kept as text. Parsing, formatting and the §19.1.4 comparison form.
 */
import {
  UriPart,
  isAlpha,
  isAlphanum,
  isDigit,
  isHexChar,
  isUnreservedChar,
  lowerName,
  parsePort,
  scanEscaped,
  scanHost,
} from './grammar.ts';
import type { SipUri, TelUri, Uri, UriParams } from './types.ts';

/** RFC 3261 §25.1 scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), lower-cased; undefined if invalid. */
function readScheme(text: string, from: number, colon: number): string | undefined {
  if (colon <= from || !isAlpha(text.charCodeAt(from))) return undefined;
  // Fast path for the schemes this stack reads.
  const len = colon - from;
  const c0 = text.charCodeAt(from) | 32;
  if (c0 === 115 && len <= 4 && (text.charCodeAt(from + 1) | 32) === 105 && (text.charCodeAt(from + 2) | 32) === 112) {
    if (len === 3) return 'sip';
    if (len === 4 && (text.charCodeAt(from + 3) | 32) === 115) return 'sips';
  }
  if (c0 === 116 && len === 3 && (text.charCodeAt(from + 1) | 32) === 101 && (text.charCodeAt(from + 2) | 32) === 108) {
    return 'tel';
  }
  for (let i = from + 1; i < colon; i++) {
    const c = text.charCodeAt(i);
    if (!isAlphanum(c) && c !== 43 && c !== 45 && c !== 46) return undefined;
  }
  return text.slice(from, colon).toLowerCase();
}

/** The scheme of an absolute URI, lower-cased, or undefined when `text` does not start with one. */
export function uriScheme(text: string): string | undefined {
  return readScheme(text, 0, text.indexOf(':'));
}

/** undefined: invalid; null: valid (not built, `build` false); else the parsed URI. */
function parseSipUri(
  text: string,
  scheme: 'sip' | 'sips',
  from: number,
  end: number,
  build: boolean,
): SipUri | null | undefined {
  let i = from;
  let user: string | undefined;
  let password: string | undefined;
  // No character after the userinfo may be "@" unescaped, so the first "@" ends the userinfo.
  const at = text.indexOf('@', from);
  if (at !== -1 && at < end) {
    // RFC 3261 §25.1: userinfo = ( user / telephone-subscriber ) [ ":" password ] "@"
    const userEnd = scanEscaped(text, i, at, UriPart.User);
    if (userEnd <= i) return undefined;
    if (build) user = text.slice(i, userEnd);
    if (userEnd < at) {
      if (text.charCodeAt(userEnd) !== 58) return undefined;
      const passEnd = scanEscaped(text, userEnd + 1, at, UriPart.Password);
      if (passEnd !== at) return undefined;
      if (build) password = text.slice(userEnd + 1, at);
    }
    i = at + 1;
  }
  // hostport = host [ ":" port ]
  const hostEnd = scanHost(text, i, end);
  if (hostEnd === -1) return undefined;
  const hostStart = i;
  i = hostEnd;
  let port: number | undefined;
  if (i < end && text.charCodeAt(i) === 58) {
    let j = i + 1;
    while (j < end && isDigit(text.charCodeAt(j))) j++;
    port = parsePort(text, i + 1, j);
    if (port === undefined) return undefined;
    i = j;
  }
  // uri-parameters = *( ";" uri-parameter ), pname [ "=" pvalue ]
  const params: UriParams | null = build ? {} : null;
  while (i < end && text.charCodeAt(i) === 59) {
    const nameEnd = scanEscaped(text, i + 1, end, UriPart.Param);
    if (nameEnd <= i + 1) return undefined;
    const nameStart = i + 1;
    i = nameEnd;
    let value: string | null = null;
    if (i < end && text.charCodeAt(i) === 61) {
      const valueEnd = scanEscaped(text, i + 1, end, UriPart.Param);
      if (valueEnd <= i + 1) return undefined;
      if (build) value = text.slice(i + 1, valueEnd);
      i = valueEnd;
    }
    if (params !== null) params[lowerName(text, nameStart, nameEnd)] = value;
  }
  // headers = "?" header *( "&" header ), hname "=" hvalue
  const headers: Record<string, string> | null = build ? {} : null;
  if (i < end && text.charCodeAt(i) === 63) {
    do {
      const nameEnd = scanEscaped(text, i + 1, end, UriPart.Header);
      if (nameEnd <= i + 1 || nameEnd >= end || text.charCodeAt(nameEnd) !== 61) return undefined;
      const valueEnd = scanEscaped(text, nameEnd + 1, end, UriPart.Header);
      if (valueEnd === -1) return undefined;
      if (headers !== null) headers[text.slice(i + 1, nameEnd)] = text.slice(nameEnd + 1, valueEnd);
      i = valueEnd;
    } while (i < end && text.charCodeAt(i) === 38);
  }
  if (i !== end) return undefined;
  if (params === null || headers === null) return null;
  const uri: SipUri = { scheme, host: text.slice(hostStart, hostEnd), params, headers };
  if (user !== undefined) uri.user = user;
  if (password !== undefined) uri.password = password;
  if (port !== undefined) uri.port = port;
  return uri;
}

/** RFC 3966 §3 digits and visual separators of a telephone-subscriber. */
function isPhoneChar(c: number): boolean {
  // DIGIT, HEXDIG, "*", "#", "-", ".", "(", ")"
  return isHexChar(c) || c === 42 || c === 35 || c === 45 || c === 46 || c === 40 || c === 41;
}

function parseTelUri(text: string, from: number, end: number, build: boolean): TelUri | null | undefined {
  let i = from;
  if (i < end && text.charCodeAt(i) === 43) i++;
  const digitsStart = i;
  while (i < end && isPhoneChar(text.charCodeAt(i))) i++;
  if (i === digitsStart) return undefined;
  const numberEnd = i;
  const params: UriParams | null = build ? {} : null;
  while (i < end && text.charCodeAt(i) === 59) {
    // RFC 3966 §3: pname = 1*( alphanum / "-" ), pvalue = 1*paramchar
    let j = i + 1;
    while (j < end && (isAlphanum(text.charCodeAt(j)) || text.charCodeAt(j) === 45)) j++;
    if (j === i + 1) return undefined;
    const nameStart = i + 1;
    const nameEnd = j;
    let value: string | null = null;
    if (j < end && text.charCodeAt(j) === 61) {
      const valueEnd = scanEscaped(text, j + 1, end, UriPart.Param);
      if (valueEnd <= j + 1) return undefined;
      value = text.slice(j + 1, valueEnd);
      j = valueEnd;
    }
    if (params !== null) params[text.slice(nameStart, nameEnd).toLowerCase()] = value;
    i = j;
  }
  if (i !== end) return undefined;
  if (params === null) return null;
  return { scheme: 'tel', number: text.slice(from, numberEnd), params };
}

/**
 * Parse an absolute URI. sip/sips/tel are checked against their grammars; any other scheme must
 * be a well-formed RFC 3261 absoluteURI (uric characters) and is kept as text. Never throws.
 */
export function parseUri(text: string): Uri | undefined {
  if (typeof text !== 'string') return undefined;
  return readUri(text, 0, text.length, true) ?? undefined;
}

/** Whether `text[from, end)` is a URI parseUri accepts, without building it. */
export function isValidUri(text: string, from = 0, end: number = text.length): boolean {
  return typeof text === 'string' && readUri(text, from, end, false) !== undefined;
}

function readUri(text: string, from: number, end: number, build: boolean): Uri | null | undefined {
  let colon = text.indexOf(':', from);
  if (colon >= end) colon = -1;
  const scheme = readScheme(text, from, colon);
  if (scheme === undefined) return undefined;
  if (scheme === 'sip' || scheme === 'sips') return parseSipUri(text, scheme, colon + 1, end, build);
  if (scheme === 'tel') return parseTelUri(text, colon + 1, end, build);
  // RFC 3261 §25.1 absoluteURI = scheme ":" ( hier-part / opaque-part ); "[" "]" as in RFC 3986.
  if (colon + 1 >= end) return undefined;
  let i = colon + 1;
  while (i < end) {
    const next = scanEscaped(text, i, end, UriPart.Uric);
    if (next === -1) return undefined;
    if (next === end) break;
    const c = text.charCodeAt(next);
    if (c !== 91 && c !== 93 && c !== 35) return undefined;
    i = next + 1;
  }
  return build ? { scheme, raw: text.slice(from, end) } : null;
}

function formatUriParams(params: UriParams): string {
  let out = '';
  for (const key of Object.keys(params)) {
    const v = params[key];
    if (v === undefined) continue;
    out += v === null ? `;${key}` : `;${key}=${v}`;
  }
  return out;
}

/** Text form of a parsed URI (inverse of parseUri). */
export function formatUri(uri: Uri): string {
  if (uri.scheme === 'sip' || uri.scheme === 'sips') {
    const u = uri as SipUri;
    let out = `${u.scheme}:`;
    if (u.user !== undefined) out += u.password !== undefined ? `${u.user}:${u.password}@` : `${u.user}@`;
    out += u.host;
    if (u.port !== undefined) out += `:${u.port}`;
    out += formatUriParams(u.params ?? {});
    const names = Object.keys(u.headers ?? {});
    if (names.length > 0) out += `?${names.map((n) => `${n}=${u.headers[n]}`).join('&')}`;
    return out;
  }
  if (uri.scheme === 'tel' && 'number' in uri) return `tel:${uri.number}${formatUriParams(uri.params ?? {})}`;
  return 'raw' in uri ? uri.raw : '';
}

/**
 * RFC 3261 §19.1.4: "Characters other than those in the reserved set are equivalent to their
 * encoding." Escaped unreserved characters are decoded, remaining escapes get upper-case hex.
 */
function normalizeEscapes(s: string): string {
  if (s.indexOf('%') === -1) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === '%' && i + 2 < s.length && isHexChar(s.charCodeAt(i + 1)) && isHexChar(s.charCodeAt(i + 2))) {
      const code = parseInt(s.slice(i + 1, i + 3), 16);
      out += isUnreservedChar(code) ? String.fromCharCode(code) : `%${s.slice(i + 1, i + 3).toUpperCase()}`;
      i += 2;
    } else out += ch;
  }
  return out;
}

/** The uri-parameters that take part in comparison when present in either URI (RFC 3261 §19.1.4). */
const COMPARED_PARAMS = ['maddr', 'method', 'transport', 'ttl', 'user'];

/**
 * RFC 3261 §19.1.4 comparison form, as a string: two URIs are equivalent when their normal forms
 * are equal. Scheme, host, parameter names and values are lower-cased (the method parameter keeps
 * its case: methods are case-sensitive); the userinfo stays case-sensitive; escapes of unreserved
 * characters are decoded; a port is kept when written ("A URI omitting any component with a
 * default value will not match a URI explicitly containing that component with a default
 * value"); of the uri-parameters only user, ttl, method, maddr and transport are kept, sorted;
 * URI headers are kept, sorted by name. tel URIs (RFC 3966 §4) drop visual separators.
 * Text that is not a URI comes back trimmed.
 */
export function normalizeUri(text: string): string {
  if (typeof text !== 'string') return '';
  const trimmed = text.trim();
  const uri = parseUri(trimmed);
  if (!uri) return trimmed;
  if (uri.scheme === 'sip' || uri.scheme === 'sips') {
    const u = uri as SipUri;
    let out = `${u.scheme}:`;
    if (u.user !== undefined) {
      out += normalizeEscapes(u.user);
      if (u.password !== undefined) out += `:${normalizeEscapes(u.password)}`;
      out += '@';
    }
    out += u.host.toLowerCase();
    if (u.port !== undefined) out += `:${u.port}`;
    for (const name of COMPARED_PARAMS) {
      const v = u.params[name];
      if (v === undefined) continue;
      if (v === null) out += `;${name}`;
      else out += `;${name}=${name === 'method' ? normalizeEscapes(v) : normalizeEscapes(v).toLowerCase()}`;
    }
    const headerNames = Object.keys(u.headers);
    if (headerNames.length > 0) {
      const pairs = headerNames
        .map((n) => `${normalizeEscapes(n).toLowerCase()}=${normalizeEscapes(u.headers[n]!)}`)
        .sort();
      out += `?${pairs.join('&')}`;
    }
    return out;
  }
  if (uri.scheme === 'tel' && 'number' in uri) {
    // RFC 3966 §4: visual separators are ignored; parameters compare case-insensitively, in any order.
    const number = uri.number.replace(/[-.()]/g, '').toLowerCase();
    const params = Object.keys(uri.params)
      .sort()
      .map((k) => {
        const v = uri.params[k];
        return v === null || v === undefined ? `;${k}` : `;${k}=${normalizeEscapes(v).toLowerCase()}`;
      })
      .join('');
    return `tel:${number}${params}`;
  }
  const colon = trimmed.indexOf(':');
  return `${uri.scheme}:${trimmed.slice(colon + 1)}`;
}

/** RFC 3261 §19.1.4 equivalence. */
export function uriEquals(a: string, b: string): boolean {
  return normalizeUri(a) === normalizeUri(b);
}
