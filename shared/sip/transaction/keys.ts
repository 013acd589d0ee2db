/**
 * Transaction identifiers: matching requests to server transactions (RFC 3261 §17.2.3), responses
 * to client transactions (§17.1.3), and an ACK for a 2xx to the INVITE it acknowledges (§13.3.1.4).
 */
import { randomHex } from '#shared/random.ts';
import { getHeader, parseCSeq, parseNameAddr, topVia } from '../messages/index.ts';
import type { SipMessage, SipRequest } from '../messages/index.ts';

/** §8.1.1.7: branches of RFC 3261 elements begin with this cookie. */
export const MAGIC_COOKIE = 'z9hG4bK';

/** §8.1.1.7: "unique across space and time for all requests sent by the UA". */
export function newBranch(): string {
  return MAGIC_COOKIE + randomHex(12);
}

function tagOf(msg: SipMessage, header: 'From' | 'To'): string {
  const value = getHeader(msg, header);
  const tag = value === undefined ? undefined : parseNameAddr(value)?.params.tag;
  return typeof tag === 'string' ? tag : '';
}

/** The part of a server key shared by a request and the CANCEL for it (branch + sent-by). */
export function serverKeyPrefix(req: SipRequest): string | undefined {
  const via = topVia(req);
  if (!via) return undefined;
  const sentBy = `${via.host.toLowerCase()}:${via.port ?? ''}`;
  if (via.branch?.startsWith(MAGIC_COOKIE)) return `${via.branch}|${sentBy}|`;
  // §17.2.3 keeps RFC 2543 matching for cookie-less branches; enough here to absorb
  // retransmissions (Call-ID, From tag, CSeq number and top Via identify the request).
  const cseq = parseCSeq(getHeader(req, 'CSeq') ?? '');
  return `2543|${getHeader(req, 'Call-ID') ?? ''}|${tagOf(req, 'From')}|${cseq?.seq ?? ''}|${via.branch ?? ''}|${sentBy}|`;
}

/**
 * §17.2.3: a request matches a server transaction when "the branch parameter in the request is
 * equal to the one in the top Via header field of the request that created the transaction", the
 * sent-by is equal, and "the method of the request matches the one that created the transaction,
 * except for ACK, where the method of the request that created the transaction is INVITE".
 */
export function serverTransactionKey(req: SipRequest, method: string = req.method): string | undefined {
  const prefix = serverKeyPrefix(req);
  if (prefix === undefined) return undefined;
  return prefix + (method === 'ACK' ? 'INVITE' : method);
}

/** The method a server transaction's key was made for (its last field). */
export function methodOfServerKey(key: string): string {
  return key.slice(key.lastIndexOf('|') + 1);
}

/**
 * §17.1.3: a response matches a client transaction when its top Via branch equals the request's
 * and "the method parameter in the CSeq header field matches the method of the request".
 */
export function clientTransactionKey(msg: SipMessage, method?: string): string | undefined {
  const branch = topVia(msg)?.branch;
  const cseqMethod = method ?? parseCSeq(getHeader(msg, 'CSeq') ?? '')?.method;
  if (branch === undefined || cseqMethod === undefined) return undefined;
  return clientKeyOf(branch, cseqMethod);
}

/**
 * The client transaction key of a request we are sending with our own `branch` (§17.1.3): the
 * same key clientTransactionKey reads from its response, without reading back the Via just written.
 */
export function clientKeyOf(branch: string, method: string): string {
  return `${branch}|${method.toUpperCase()}`;
}

/**
 * The ACK for a 2xx is a transaction of its own (§17.1.1.3); the UAS core matches it to the 2xx it
 * sent by dialog and CSeq number (§13.3.1.4, §12.2.2). Same key from the 2xx and from the ACK.
 */
export function ackMatchKey(msg: SipMessage): string {
  const cseq = parseCSeq(getHeader(msg, 'CSeq') ?? '');
  return `${getHeader(msg, 'Call-ID') ?? ''}|${cseq?.seq ?? ''}|${tagOf(msg, 'From')}|${tagOf(msg, 'To')}`;
}

/** The To tag of a message, or undefined. */
export function toTagOf(msg: SipMessage): string | undefined {
  const tag = tagOf(msg, 'To');
  return tag === '' ? undefined : tag;
}
