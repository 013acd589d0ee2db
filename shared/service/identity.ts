/**
 * Who is asking (protocol.md "Who is asking"): the P-Asserted-Identity of a trusted peer
 * (RFC 3325 §9.1), else the From URI. Both are compared in RFC 3261 §19.1.4 normal form.
 */
import { getHeader, getHeaders, normalizeUri, parseNameAddr } from '../sip/messages/index.ts';
import type { SipRequest } from '../sip/messages/types.ts';

export function servedUser(request: SipRequest, trusted: boolean): string | undefined {
  if (trusted) {
    // RFC 3325 §9.1: one or two values (a SIP/SIPS URI and/or a tel URI); prefer the SIP one.
    const asserted = getHeaders(request, 'P-Asserted-Identity')
      .map((v) => parseNameAddr(v)?.uri)
      .filter((u): u is string => !!u);
    const sip = asserted.find((u) => /^sips?:/i.test(u)) ?? asserted[0];
    if (sip) return normalizeUri(sip);
  }
  const from = getHeader(request, 'From');
  const uri = from ? parseNameAddr(from)?.uri : undefined;
  return uri ? normalizeUri(uri) : undefined;
}

/**
 * Every identity the request is authenticated as, in normal form, the one `servedUser` picks
 * first: a trusted peer's P-Asserted-Identity values (RFC 3325 §9.1 allows a SIP and a tel URI
 * for one user), else the From of an admitted direct client.
 */
export function authenticatedSenders(request: SipRequest, trusted: boolean): string[] {
  const first = servedUser(request, trusted);
  if (!first) return [];
  if (!trusted) return [first];
  const asserted = getHeaders(request, 'P-Asserted-Identity')
    .map((v) => parseNameAddr(v)?.uri)
    .filter((u): u is string => !!u)
    .map(normalizeUri);
  return [first, ...asserted.filter((u) => u !== first)];
}

/**
 * A user reaches only their own list: the Request-URI must be the served user's address or
 * one of the service's own URIs.
 */
export function targetsOwnList(request: SipRequest, user: string, serviceUris: readonly string[]): boolean {
  const target = normalizeUri(request.uri);
  return target === user || serviceUris.some((s) => normalizeUri(s) === target);
}
