/**
 * MSRP URIs (RFC 4975 §6, syntax in §9): `msrp://host:port/session-id;tcp`.
 * Parse, format, and compare them the way §6.1 says two URIs name the same session.
 */

/** The IANA-registered MSRP port, assumed when a URI names none (RFC 4975 §6.2, §15). */
export const MSRP_DEFAULT_PORT = 2855;

export interface MsrpUri {
  /** `msrps` (TLS) rather than `msrp`. */
  secure: boolean;
  /** userinfo before `@`; never compared (RFC 4975 §6.1). */
  user?: string;
  /** Host name or address; an IPv6 address without its brackets. */
  host: string;
  port?: number;
  /** Absent in relay URIs; endpoints always have one (RFC 4975 §6). */
  sessionId?: string;
  /** `tcp` in practice; kept as written. */
  transport: string;
  /** URI parameters after the transport, in order; the value is undefined for a bare name. */
  params: Array<[string, string | undefined]>;
}

// RFC 4975 §9: session-id = 1*( unreserved / "+" / "=" / "/" ); unreserved per RFC 3986 §2.3.
const SESSION_ID = /^[A-Za-z0-9\-._~+=/]+$/;
const TRANSPORT = /^[A-Za-z0-9]+$/;
// RFC 3261 §25.1 token, as RFC 4975 §9 uses it for URI-parameter names and values.
const TOKEN = /^[A-Za-z0-9\-.!%*_+`'~]+$/;
const REG_NAME = /^[A-Za-z0-9\-._~!$&'()*+,;=%]+$/;
const USERINFO = /^[A-Za-z0-9\-._~!$&'()*+,;=%:]+$/;

/** True when `text` is usable as the session-id part of an MSRP URI (RFC 4975 §9). */
export function isValidSessionId(text: string): boolean {
  return SESSION_ID.test(text);
}

/** Parse one MSRP URI; undefined when it does not follow RFC 4975 §9. */
export function parseMsrpUri(text: string): MsrpUri | undefined {
  const schemeEnd = text.indexOf('://');
  if (schemeEnd < 0) return undefined;
  const scheme = text.slice(0, schemeEnd).toLowerCase();
  if (scheme !== 'msrp' && scheme !== 'msrps') return undefined;
  const rest = text.slice(schemeEnd + 3);

  // The authority ends at the first "/" (session-id follows) or ";" (transport follows).
  let authorityEnd = rest.length;
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i];
    if (c === '[') {
      const close = rest.indexOf(']', i);
      if (close < 0) return undefined;
      i = close;
    } else if (c === '/' || c === ';') {
      authorityEnd = i;
      break;
    }
  }
  const authority = parseAuthority(rest.slice(0, authorityEnd));
  if (!authority) return undefined;

  let tail = rest.slice(authorityEnd);
  let sessionId: string | undefined;
  if (tail.startsWith('/')) {
    const semi = tail.indexOf(';');
    if (semi < 0) return undefined;
    sessionId = tail.slice(1, semi);
    if (!SESSION_ID.test(sessionId)) return undefined;
    tail = tail.slice(semi);
  }
  // RFC 4975 §9: the transport is mandatory.
  if (!tail.startsWith(';')) return undefined;
  const [transport, ...rawParams] = tail.slice(1).split(';');
  if (transport === undefined || !TRANSPORT.test(transport)) return undefined;
  const params: Array<[string, string | undefined]> = [];
  for (const raw of rawParams) {
    const eq = raw.indexOf('=');
    const name = eq < 0 ? raw : raw.slice(0, eq);
    const value = eq < 0 ? undefined : raw.slice(eq + 1);
    if (!TOKEN.test(name) || (value !== undefined && !TOKEN.test(value))) return undefined;
    params.push([name, value]);
  }
  return { secure: scheme === 'msrps', ...authority, sessionId, transport, params };
}

function parseAuthority(text: string): Pick<MsrpUri, 'user' | 'host' | 'port'> | undefined {
  let hostPort = text;
  let user: string | undefined;
  const at = text.lastIndexOf('@');
  if (at >= 0) {
    user = text.slice(0, at);
    hostPort = text.slice(at + 1);
    if (!USERINFO.test(user)) return undefined;
  }
  let host: string;
  let portText: string | undefined;
  if (hostPort.startsWith('[')) {
    const close = hostPort.indexOf(']');
    if (close < 0) return undefined;
    host = hostPort.slice(1, close);
    if (!/^[0-9A-Fa-f:.]+$/.test(host) || !host.includes(':')) return undefined;
    const after = hostPort.slice(close + 1);
    if (after !== '') {
      if (!after.startsWith(':')) return undefined;
      portText = after.slice(1);
    }
  } else {
    const colon = hostPort.indexOf(':');
    host = colon < 0 ? hostPort : hostPort.slice(0, colon);
    portText = colon < 0 ? undefined : hostPort.slice(colon + 1);
    if (!REG_NAME.test(host)) return undefined;
  }
  if (host === '') return undefined;
  let port: number | undefined;
  if (portText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portText)) return undefined;
    port = Number(portText);
    if (port > 65535) return undefined;
  }
  return { user, host, port };
}

/** Parse a path (To-Path, From-Path, SDP a=path): URIs separated by spaces. */
export function parseMsrpPath(text: string): MsrpUri[] | undefined {
  const parts = text
    .trim()
    .split(/\s+/)
    .filter((p) => p !== '');
  if (parts.length === 0) return undefined;
  const uris: MsrpUri[] = [];
  for (const part of parts) {
    const uri = parseMsrpUri(part);
    if (!uri) return undefined;
    uris.push(uri);
  }
  return uris;
}

export function formatMsrpUri(uri: MsrpUri): string {
  const host = uri.host.includes(':') ? `[${uri.host}]` : uri.host;
  let text = `${uri.secure ? 'msrps' : 'msrp'}://`;
  if (uri.user !== undefined) text += `${uri.user}@`;
  text += host;
  if (uri.port !== undefined) text += `:${uri.port}`;
  if (uri.sessionId !== undefined) text += `/${uri.sessionId}`;
  text += `;${uri.transport}`;
  for (const [name, value] of uri.params) text += value === undefined ? `;${name}` : `;${name}=${value}`;
  return text;
}

/**
 * RFC 4975 §6.1: same scheme, same host (case-insensitive; addresses compared as addresses),
 * same port (absent = 2855), same session-id (case-sensitive), same transport
 * (case-insensitive). userinfo and parameters do not take part. An unparsable URI equals nothing.
 */
export function msrpUriEquals(a: MsrpUri | string, b: MsrpUri | string): boolean {
  const x = typeof a === 'string' ? parseMsrpUri(a) : a;
  const y = typeof b === 'string' ? parseMsrpUri(b) : b;
  if (!x || !y) return false;
  return (
    x.secure === y.secure &&
    normalizeHost(x.host) === normalizeHost(y.host) &&
    (x.port ?? MSRP_DEFAULT_PORT) === (y.port ?? MSRP_DEFAULT_PORT) &&
    x.sessionId === y.sessionId &&
    x.transport.toLowerCase() === y.transport.toLowerCase()
  );
}

/** Lower-case, and IPv6 addresses in their canonical short form so `::1` equals `0:0::1`. */
function normalizeHost(host: string): string {
  if (!host.includes(':')) return host.toLowerCase();
  try {
    return new URL(`http://[${host}]/`).hostname.toLowerCase();
  } catch {
    return host.toLowerCase();
  }
}
