/**
 * Marking the top Via of a received request with where it really came from
 * (RFC 3261 §18.2.1, RFC 3581 §4), so the response finds its way back through NATs.
 */
import { isIP } from 'node:net';
import { canonicalHeaderName, formatReadVia, getHeaders, parseVia } from '../messages/index.ts';
import type { Header, Via } from '../messages/index.ts';
import type { Source } from './types.ts';

/** '::ffff:192.0.2.1' and '192.0.2.1' are the same peer. */
export function plainAddress(address: string): string {
  // A dotted IPv4 address, the usual case, is its own plain form (asked for at every send).
  if (isDottedDigits(address)) return address;
  const unbracketed = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(unbracketed);
  return (mapped ? mapped[1]! : unbracketed).toLowerCase();
}

function isDottedDigits(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 46 && (c < 48 || c > 57)) return false;
  }
  return s.length > 0;
}

/**
 * The top Via with `received` and `rport` filled in for a request from `source`.
 * RFC 3261 §18.2.1: "If the host portion of the "sent-by" field contains a domain name, or if it
 * contains an IP address that differs from the packet source address, the server MUST add a
 * "received" parameter to that Via header field value."
 * RFC 3581 §4: when the request has `rport` without a value, the server MUST set it to the source
 * port and MUST add `received` even when the address is the same.
 */
export function stampVia(via: Via, source: Source): Via {
  const params = { ...via.params };
  const sourceAddress = plainAddress(source.remoteAddress);
  const sentByHost = plainAddress(via.host);
  const wantsRport = 'rport' in params && (params.rport === null || params.rport === '');
  if (wantsRport) params.rport = String(source.remotePort);
  if (wantsRport || isIP(sentByHost) === 0 || sentByHost !== sourceAddress) params.received = sourceAddress;
  // Built field by field: spreading the parsed Via was most of this function's cost.
  const out: Via = { transport: via.transport, host: via.host, params };
  if (via.port !== undefined) out.port = via.port;
  if (via.branch !== undefined) out.branch = via.branch;
  if (typeof params.received === 'string') out.received = params.received;
  if (params.rport !== undefined) out.rport = params.rport === null ? null : Number(params.rport);
  return out;
}

/**
 * Rewrite, in place, the first via-parm of the first Via field of `msg` (a request just received,
 * or an error response built from one) with `received`/`rport` from `source`.
 * Returns false when there is no readable top Via.
 */
export function stampTopVia(msg: { headers: Header[] }, source: Source): boolean {
  const headers = msg.headers;
  let index = -1;
  for (let i = 0; i < headers.length; i++) {
    const name = headers[i]!.name;
    if (name === 'Via' || canonicalHeaderName(name) === 'Via') {
      index = i;
      break;
    }
  }
  if (index < 0) return false;
  const field = headers[index]!;
  // One via-parm in the field, the usual case: no list to split and join again.
  const single = field.value.indexOf(',') === -1;
  const parms = single ? [field.value] : getHeaders({ headers: [field] }, 'Via');
  const top = parms[0] === undefined ? undefined : parseVia(parms[0]);
  if (!top) return false;
  // Noted as read: the transaction layer's topVia of this request then parses nothing again.
  parms[0] = formatReadVia(stampVia(top, source));
  headers[index] = { name: field.name, value: single ? parms[0] : parms.join(', ') };
  return true;
}
