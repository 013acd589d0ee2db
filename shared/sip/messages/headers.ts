/**
 * Header access and typed views of header values (RFC 3261 §7.3, §20, §25.1; RFC 3581; RFC 6665).
 * Views are functions over the raw value: they return undefined for a value they cannot read and
 * never throw. Each call returns a new object. Via, name-addr and CSeq views first look for the
 * value among those parseMessage just built while validating (typed-values.ts), so reading the
 * top Via, From, To, CSeq or Contact of a parsed message does not parse them a second time.
 */
import { formatParams, isDigit, quote, readParams, scanToken, skipWs, splitList, trimWs } from './grammar.ts';
import { canonicalHeaderName, headerInfo, sameHeaderName } from './header-names.ts';
import { cseqView, isNameAddr, isVia, nameAddrView, noteVia, viaView } from './typed-values.ts';
import type { CSeq, Header, NameAddr, UriParams, Via } from './types.ts';

export { canonicalHeaderName, isListHeader } from './header-names.ts';
export { splitList } from './grammar.ts';

interface HasHeaders {
  headers: Header[];
}

/** The first field value of header `name` (any case, compact forms accepted), or undefined. */
export function getHeader(msg: HasHeaders, name: string): string | undefined {
  const canonical = canonicalHeaderName(name);
  const length = canonical.length;
  const headers = msg.headers;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    const stored = h.name;
    if (stored === canonical) return h.value;
    if ((stored.length === length || stored.length === 1) && sameHeaderName(stored, canonical)) return h.value;
  }
  return undefined;
}

/**
 * Every value of header `name`, in order. For comma-list headers (Via, Contact, Route, Require,
 * Supported, Accept, ...) each field is split into its elements (RFC 3261 §7.3.1); empty
 * elements are dropped. `Contact: *` comes back as ['*'].
 */
export function getHeaders(msg: HasHeaders, name: string): string[] {
  const { canonical, list } = headerInfo(name);
  const length = canonical.length;
  const out: string[] = [];
  const headers = msg.headers;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    const stored = h.name;
    // Names of another length than `canonical` can only match as compact forms (sameHeaderName).
    if (stored !== canonical) {
      if (stored.length !== length && stored.length !== 1) continue;
      if (!sameHeaderName(stored, canonical)) continue;
    }
    const v = h.value;
    if (!list) out.push(v);
    else if (v.indexOf(',') === -1) {
      // One element: splitList would give [trimWs(v)]; the trimmed text is the value itself as a rule.
      const one = trimWs(v);
      if (one !== '') out.push(one);
    } else for (const part of splitList(v)) if (part !== '') out.push(part);
  }
  return out;
}

/** Replace every field of header `name` by one field holding `value` (at the first one's place, or appended). */
export function setHeader(msg: HasHeaders, name: string, value: string): void {
  const canonical = canonicalHeaderName(name);
  let placed = false;
  const kept: Header[] = [];
  for (const h of msg.headers) {
    if (!sameHeaderName(h.name, canonical)) kept.push(h);
    else if (!placed) {
      kept.push({ name: canonical, value });
      placed = true;
    }
  }
  if (!placed) kept.push({ name: canonical, value });
  msg.headers.splice(0, msg.headers.length, ...kept);
}

/** Remove every field of header `name`. */
export function removeHeaders(msg: HasHeaders, name: string): void {
  const canonical = canonicalHeaderName(name);
  const kept = msg.headers.filter((h) => !sameHeaderName(h.name, canonical));
  msg.headers.splice(0, msg.headers.length, ...kept);
}

// ---- name-addr (RFC 3261 §20.10, §25.1) --------------------------------------------------------

/**
 * name-addr / addr-spec with header parameters, as in From, To, Contact, Route, Record-Route,
 * Reply-To, P-Asserted-Identity:
 *   ( name-addr / addr-spec ) *( SEMI generic-param ),  name-addr = [ display-name ] LAQUOT addr-spec RAQUOT
 * The display name is returned without its quotes; parameter names are lower-cased, values kept
 * as written. The URI must parse (parseUri). In the addr-spec form the URI ends at the first ";"
 * (RFC 3261 §20.10: such parameters belong to the header). Undefined when malformed.
 */
export function parseNameAddr(value: string): NameAddr | undefined {
  if (typeof value !== 'string') return undefined;
  return nameAddrView(value);
}

/** Whether `value` is a name-addr / addr-spec parseNameAddr accepts, without building it. */
export function isValidNameAddr(value: string): boolean {
  return typeof value === 'string' && isNameAddr(value);
}

/** Text of a name-addr: `"Display" <uri>;param=value` (always the bracketed form, which is always safe). */
export function formatNameAddr(na: NameAddr): string {
  const display = na.displayName !== undefined && na.displayName !== '' ? `${quote(na.displayName)} ` : '';
  return `${display}<${na.uri}>${formatParams(na.params)}`;
}

/** One Contact element: `*` (RFC 3261 §20.10, REGISTER removal) or a name-addr. */
export function parseContact(value: string): NameAddr | '*' | undefined {
  if (typeof value !== 'string') return undefined;
  if (trimWs(value) === '*') return '*';
  return parseNameAddr(value);
}

// ---- Via (RFC 3261 §20.42, RFC 3581, RFC 5118 §4.5) ---------------------------------------------

/**
 * One via-parm: sent-protocol LWS sent-by *( SEMI via-params ), with LWS allowed around "/"
 * (RFC 4475 §3.1.1.1 wsinv). Only SIP/2.0 is accepted. `received` may be an IPv6 address with or
 * without brackets (RFC 5118 §4.5); `rport` without a value reads as null (RFC 3581 §3).
 */
export function parseVia(value: string): Via | undefined {
  if (typeof value !== 'string') return undefined;
  return viaView(value);
}

/** Whether `value` is one via-parm parseVia accepts, without building it. */
export function isValidVia(value: string): boolean {
  return typeof value === 'string' && isVia(value);
}

/** Text of one via-parm. `params` is authoritative; branch/received/rport fill in what it lacks. */
export function formatVia(via: Via): string {
  const params: UriParams = { ...(via.params ?? {}) };
  if (via.branch !== undefined && params.branch === undefined) params.branch = via.branch;
  if (via.received !== undefined && params.received === undefined) params.received = via.received;
  if (via.rport !== undefined && params.rport === undefined)
    params.rport = via.rport === null ? null : String(via.rport);
  const port = via.port !== undefined ? `:${via.port}` : '';
  return `SIP/2.0/${via.transport} ${via.host}${port}${formatParams(params)}`;
}

/**
 * formatVia for a Via that parseVia read and that was then given other parameters (the
 * received/rport of RFC 3261 §18.2.1 and RFC 3581 §4): its text, remembered with the value so
 * that reading it back (topVia, for the transaction key) parses nothing again. A Via whose
 * convenience fields disagree with its params is only formatted.
 */
export function formatReadVia(via: Via): string {
  const text = formatVia(via);
  const p = via.params;
  const rport = p.rport === undefined ? undefined : p.rport === null ? null : Number(p.rport);
  if (
    via.transport === via.transport.toUpperCase() &&
    via.branch === (typeof p.branch === 'string' ? p.branch : undefined) &&
    via.received === (typeof p.received === 'string' ? p.received : undefined) &&
    via.rport === rport
  ) {
    noteVia(text, via);
  }
  return text;
}

/** The first via-parm of the first Via field (RFC 3261 §18.2.2: where responses go). */
export function topVia(msg: HasHeaders): Via | undefined {
  const first = getHeader(msg, 'Via');
  if (first === undefined) return undefined;
  return viaView(first.indexOf(',') === -1 ? first : splitList(first)[0]!);
}

// ---- CSeq, Expires ------------------------------------------------------------------------------

/** RFC 3261 §20.16: CSeq = 1*DIGIT LWS Method, the number below 2**31 (§8.1.1.5). */
export function parseCSeq(value: string): CSeq | undefined {
  if (typeof value !== 'string') return undefined;
  return cseqView(value);
}

/** Largest delta-seconds value; larger ones are read as this (RFC 3261 §25.1, RFC 4475 §3.1.2.9). */
export const MAX_DELTA_SECONDS = 2 ** 32 - 1;

/** delta-seconds (Expires, Min-Expires, Retry-After's number): digits, capped at 2**32-1. */
export function parseDeltaSeconds(value: string): number | undefined {
  if (typeof value !== 'string') return undefined;
  const s = trimWs(value);
  if (s.length === 0) return undefined;
  for (let i = 0; i < s.length; i++) if (!isDigit(s.charCodeAt(i))) return undefined;
  if (s.length > 15) return MAX_DELTA_SECONDS;
  return Math.min(Number(s), MAX_DELTA_SECONDS);
}

// ---- Event, Subscription-State (RFC 6665 §8.2) ---------------------------------------------------

/**
 * RFC 6665 §8.2.1: Event = event-type *( SEMI event-param ); event-type = event-package
 * *( "." event-template ); event-param = generic-param / ( "id" EQUAL token ).
 */
export function parseEvent(
  value: string,
): { package: string; id?: string; params: Record<string, string | null> } | undefined {
  if (typeof value !== 'string') return undefined;
  const s = value;
  const n = s.length;
  const i = skipWs(s, 0, n);
  const end = scanToken(s, i, n);
  if (end === i) return undefined;
  const pkg = s.slice(i, end);
  if (pkg.startsWith('.') || pkg.endsWith('.') || pkg.includes('..')) return undefined;
  const params = readParams(s, end);
  if (!params) return undefined;
  const id = params.id;
  if (typeof id === 'string') return { package: pkg, id, params };
  return { package: pkg, params };
}

/**
 * RFC 6665 §8.2.3: Subscription-State = substate-value *( SEMI subexp-params ), with reason,
 * expires and retry-after read out. The state is lower-cased.
 */
export function parseSubscriptionState(
  value: string,
): { state: string; reason?: string; expires?: number; retryAfter?: number } | undefined {
  if (typeof value !== 'string') return undefined;
  const s = value;
  const n = s.length;
  const i = skipWs(s, 0, n);
  const end = scanToken(s, i, n);
  if (end === i) return undefined;
  const params = readParams(s, end);
  if (!params) return undefined;
  const out: { state: string; reason?: string; expires?: number; retryAfter?: number } = {
    state: s.slice(i, end).toLowerCase(),
  };
  const { reason, expires } = params;
  const retryAfter = params['retry-after'];
  if (typeof reason === 'string') out.reason = reason.toLowerCase();
  if (expires !== undefined) {
    const v = expires === null ? undefined : parseDeltaSeconds(expires);
    if (v === undefined) return undefined;
    out.expires = v;
  }
  if (retryAfter !== undefined) {
    const v = retryAfter === null ? undefined : parseDeltaSeconds(retryAfter);
    if (v === undefined) return undefined;
    out.retryAfter = v;
  }
  return out;
}

// ---- Require (RFC 3261 §8.2.2.3) ----------------------------------------------------------------

/**
 * The option tags of the request's Require that are not in `supported` (compared
 * case-insensitively), each once, in order. A UAS answers a non-empty result with 420 (Bad
 * Extension) listing them in Unsupported. §8.2.2.3: Require in ACK and CANCEL is ignored.
 */
export function checkRequire(msg: HasHeaders & { method?: string }, supported: Iterable<string>): string[] {
  if (msg.method === 'ACK' || msg.method === 'CANCEL') return [];
  const known = new Set<string>();
  for (const tag of supported) known.add(tag.toLowerCase());
  const out: string[] = [];
  const seen = new Set<string>();
  for (const tag of getHeaders(msg, 'Require')) {
    const lower = tag.toLowerCase();
    if (known.has(lower) || seen.has(lower)) continue;
    seen.add(lower);
    out.push(tag);
  }
  return out;
}
