/**
 * Where a response goes (RFC 3261 §18.2.2 with RFC 3581 §4): back over the connection the request
 * came on while it is open, else to the address the request really came from.
 */
import { topVia } from '../messages/index.ts';
import type { SipResponse } from '../messages/index.ts';
import { defaultPort, isReliable } from './types.ts';
import type { Source, TransportName } from './types.ts';

export interface ResponseDestination {
  transport: TransportName;
  address: string;
  port: number;
  /** Set when the response should go over this existing connection first. */
  connectionId?: string;
}

export function responseDestination(res: SipResponse, source: Source): ResponseDestination {
  const via = topVia(res);
  const transport = source.transport;
  const received = via?.received ?? source.remoteAddress;
  if (isReliable(transport)) {
    // §18.2.2: "If the "sent-protocol" is a reliable transport protocol such as TCP or SCTP, or TLS
    // over those, the response MUST be sent using the existing connection to the source of the
    // original request that created the transaction, if that connection is still open." Otherwise
    // "the server SHOULD open a connection to the IP address in the "received" parameter ... using
    // the port in the "sent-by" value, or the default port for that transport".
    return {
      transport,
      address: received,
      port: via?.port ?? defaultPort(transport),
      connectionId: source.connectionId,
    };
  }
  const maddr = via?.params.maddr;
  if (typeof maddr === 'string' && maddr !== '') {
    // §18.2.2: "if the Via header field value contains a "maddr" parameter, the response MUST be
    // forwarded to the address listed there, using the port indicated in "sent-by"".
    return { transport, address: maddr, port: via?.port ?? defaultPort(transport) };
  }
  if (typeof via?.rport === 'number') {
    // RFC 3581 §4: "the server MUST send it to the IP address indicated in the "received"
    // parameter, and the port indicated in the "rport" parameter".
    return { transport, address: received, port: via.rport };
  }
  // §18.2.2: "the response MUST be sent to the address contained in the "received" parameter, if
  // present, using the port indicated in the "sent-by" value, or using port 5060 if none is specified".
  if (!via) return { transport, address: source.remoteAddress, port: source.remotePort };
  return { transport, address: received, port: via.port ?? defaultPort(transport) };
}
