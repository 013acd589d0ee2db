/**
 * Header field names: canonical spellings, compact forms and which headers are comma lists.
 * RFC 3261 §7.3: names are case-insensitive; §7.3.3 and the IANA "Header Fields" registry give
 * the compact forms.
 */

/** Canonical spellings of the header fields this stack knows (RFC 3261 §20 and extensions). */
const CANONICAL_NAMES = [
  'Accept',
  'Accept-Contact',
  'Accept-Encoding',
  'Accept-Language',
  'Accept-Resource-Priority',
  'Alert-Info',
  'Allow',
  'Allow-Events',
  'Authentication-Info',
  'Authorization',
  'Call-ID',
  'Call-Info',
  'Contact',
  'Content-Disposition',
  'Content-Encoding',
  'Content-ID',
  'Content-Language',
  'Content-Length',
  'Content-Transfer-Encoding',
  'Content-Type',
  'Contribution-ID',
  'Conversation-ID',
  'CSeq',
  'Date',
  'Error-Info',
  'Event',
  'Expires',
  'Feature-Caps',
  'From',
  'History-Info',
  'Identity',
  'Identity-Info',
  'In-Reply-To',
  'InReplyTo-Contribution-ID',
  'Max-Forwards',
  'MIME-Version',
  'Min-Expires',
  'Min-SE',
  'Organization',
  'P-Access-Network-Info',
  'P-Asserted-Identity',
  'P-Asserted-Service',
  'P-Associated-URI',
  'P-Called-Party-ID',
  'P-Charging-Vector',
  'P-Preferred-Identity',
  'P-Preferred-Service',
  'P-Visited-Network-ID',
  'Path',
  'Priority',
  'Privacy',
  'Proxy-Authenticate',
  'Proxy-Authorization',
  'Proxy-Require',
  'RAck',
  'Reason',
  'Record-Route',
  'Refer-Sub',
  'Refer-To',
  'Referred-By',
  'Reject-Contact',
  'Replaces',
  'Reply-To',
  'Request-Disposition',
  'Require',
  'Resource-Priority',
  'Retry-After',
  'Route',
  'RSeq',
  'Security-Client',
  'Security-Server',
  'Security-Verify',
  'Server',
  'Service-Route',
  'Session-Expires',
  'SIP-ETag',
  'SIP-If-Match',
  'Subject',
  'Subscription-State',
  'Supported',
  'Suppress-If-Match',
  'Target-Dialog',
  'Timestamp',
  'To',
  'Unsupported',
  'User-Agent',
  'Via',
  'Warning',
  'WWW-Authenticate',
];

/** RFC 3261 §7.3.3 compact forms, plus the ones registered since (RFC 6665 o/u, RFC 3841 a/j/d, ...). */
const COMPACT_FORMS: Record<string, string> = {
  a: 'Accept-Contact', // RFC 3841
  b: 'Referred-By', // RFC 3892
  c: 'Content-Type',
  d: 'Request-Disposition', // RFC 3841
  e: 'Content-Encoding',
  f: 'From',
  i: 'Call-ID',
  j: 'Reject-Contact', // RFC 3841
  k: 'Supported',
  l: 'Content-Length',
  m: 'Contact',
  n: 'Identity-Info', // RFC 4474
  o: 'Event', // RFC 6665 §8.2.1
  r: 'Refer-To', // RFC 3515
  s: 'Subject',
  t: 'To',
  u: 'Allow-Events', // RFC 6665 §8.2.2
  v: 'Via',
  x: 'Session-Expires', // RFC 4028
  y: 'Identity', // RFC 8224
};

/**
 * Headers whose values are comma-separated lists (RFC 3261 §7.3.1): several fields of the same
 * name may be combined into one, so reading them means splitting at top-level commas.
 */
const LIST_HEADERS = new Set([
  'Accept',
  'Accept-Contact',
  'Accept-Encoding',
  'Accept-Language',
  'Accept-Resource-Priority',
  'Alert-Info',
  'Allow',
  'Allow-Events',
  'Call-Info',
  'Contact',
  'Content-Encoding',
  'Content-Language',
  'Error-Info',
  'History-Info',
  'In-Reply-To',
  'P-Asserted-Identity',
  'P-Associated-URI',
  'P-Preferred-Identity',
  'P-Visited-Network-ID',
  'Path',
  'Proxy-Require',
  'Reason',
  'Record-Route',
  'Reject-Contact',
  'Request-Disposition',
  'Require',
  'Resource-Priority',
  'Route',
  'Security-Client',
  'Security-Server',
  'Security-Verify',
  'Service-Route',
  'Supported',
  'Unsupported',
  'Via',
  'Warning',
]);

/** lower-case name or compact form -> canonical name */
const BY_LOWER = new Map<string, string>();
/** Exact spellings seen on the wire most of the time, to skip toLowerCase on the hot path. */
const BY_EXACT = new Map<string, string>();

for (const name of CANONICAL_NAMES) {
  BY_LOWER.set(name.toLowerCase(), name);
  BY_EXACT.set(name, name);
}
for (const [short, long] of Object.entries(COMPACT_FORMS)) {
  BY_LOWER.set(short, long);
  BY_EXACT.set(short, long);
  BY_EXACT.set(short.toUpperCase(), long);
}

/**
 * Case-insensitive lookup of a name inside a larger string without slicing it: a hash of the
 * lower-cased characters picks a slot of an open-addressing table, then the characters are
 * compared. Used by the parser for every header line.
 */
const SLOTS = 512;
// Filled with '' (no name is empty), so that the arrays stay packed.
const slotLower: string[] = new Array<string>(SLOTS).fill('');
const slotCanonical: string[] = new Array<string>(SLOTS).fill('');

/** Lower-case a token character code ("|32" maps A-Z to a-z and keeps the other token characters distinct). */
function fold(c: number): number {
  return c | 32;
}

/** One step of the name hash; a caller scanning a name can fold it in as it goes (knownHeaderHashed). */
export function nameHashStep(h: number, c: number): number {
  return (Math.imul(h, 31) + fold(c)) | 0;
}

function hashRange(s: string, from: number, end: number): number {
  let h = 0;
  for (let i = from; i < end; i++) h = nameHashStep(h, s.charCodeAt(i));
  return h;
}

for (const [lower, canonical] of BY_LOWER) {
  let slot = hashRange(lower, 0, lower.length) & (SLOTS - 1);
  while (slotLower[slot] !== '') slot = (slot + 1) & (SLOTS - 1);
  slotLower[slot] = lower;
  slotCanonical[slot] = canonical;
}

/**
 * The canonical name of the header name `s[from, end)` when this stack knows it (any case,
 * compact forms included), else undefined. Allocates nothing.
 */
export function knownHeaderAt(s: string, from: number, end: number): string | undefined {
  return knownHeaderHashed(s, from, end, hashRange(s, from, end));
}

/** knownHeaderAt for a caller that has hashed `s[from, end)` with nameHashStep already. */
export function knownHeaderHashed(s: string, from: number, end: number, hash: number): string | undefined {
  const len = end - from;
  let slot = hash & (SLOTS - 1);
  for (;;) {
    const lower = slotLower[slot]!;
    if (lower === '') return undefined;
    if (lower.length === len) {
      let i = 0;
      while (i < len && fold(s.charCodeAt(from + i)) === lower.charCodeAt(i)) i++;
      if (i === len) return slotCanonical[slot];
    }
    slot = (slot + 1) & (SLOTS - 1);
  }
}

/** 'v' -> 'Via', 'call-id' -> 'Call-ID'; names this stack does not know are returned as written. */
export function canonicalHeaderName(name: string): string {
  const exact = BY_EXACT.get(name);
  if (exact !== undefined) return exact;
  return BY_LOWER.get(name.toLowerCase()) ?? name;
}

/** Whether `canonical` (a result of canonicalHeaderName) is a name this stack knows. */
export function isKnownHeader(canonical: string): boolean {
  return BY_EXACT.get(canonical) === canonical;
}

export interface HeaderInfo {
  canonical: string;
  /** Whether values of this header are comma lists (RFC 3261 §7.3.1). */
  list: boolean;
}

/** Known spellings (canonical and compact) -> their HeaderInfo, so that one lookup gives both. */
const INFO_BY_EXACT = new Map<string, HeaderInfo>();
for (const [spelling, canonical] of BY_EXACT) {
  INFO_BY_EXACT.set(spelling, { canonical, list: LIST_HEADERS.has(canonical) });
}

/** canonicalHeaderName and isListHeader in one lookup for the usual spellings. */
export function headerInfo(name: string): HeaderInfo {
  const known = INFO_BY_EXACT.get(name);
  if (known !== undefined) return known;
  const canonical = canonicalHeaderName(name);
  return { canonical, list: LIST_HEADERS.has(canonical) };
}

/** Whether values of this header are comma lists (RFC 3261 §7.3.1). */
export function isListHeader(canonical: string): boolean {
  return LIST_HEADERS.has(canonical);
}

/** Whether header field `stored` (as held in a message) is the header `canonical` names. */
export function sameHeaderName(stored: string, canonical: string): boolean {
  if (stored === canonical) return true;
  const len = stored.length;
  if (len !== canonical.length && len !== 1) return false;
  if (len > 1) {
    // Spellings of one name of the same length differ in case only: ASCII first or last
    // characters that differ even in lower case settle it (Call-ID vs Contact) without a lookup.
    const a0 = stored.charCodeAt(0);
    const b0 = canonical.charCodeAt(0);
    const a1 = stored.charCodeAt(len - 1);
    const b1 = canonical.charCodeAt(len - 1);
    if ((a0 | b0 | a1 | b1) < 128 && ((a0 | 32) !== (b0 | 32) || (a1 | 32) !== (b1 | 32))) return false;
  }
  // A known spelling (canonical or compact, as the parser stores them) is decided without allocating.
  const exact = BY_EXACT.get(stored);
  if (exact !== undefined) return exact === canonical;
  const lower = stored.toLowerCase();
  return lower === canonical.toLowerCase() || BY_LOWER.get(lower) === canonical;
}
