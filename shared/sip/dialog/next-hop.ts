/**
 * Where a UAS sends its in-dialog requests (RFC 3261 §12.2.1.1, §8.1.2): to the first URI of the
 * route set, or to the remote target when the route set is empty, located by RFC 3263 §4 (IP
 * hosts and names resolved by the transport; no NAPTR/SRV). The flow the dialog was created on
 * is kept only in the RFC 5626 outbound case.
 */
import { parseNameAddr, parseUri } from '../messages/index.ts';
import type { SipUri } from '../messages/index.ts';
import type { Target, TransportName } from '../transport/types.ts';
import { defaultPort } from '../transport/types.ts';
import type { DialogState } from './types.ts';

const TRANSPORTS: readonly TransportName[] = ['udp', 'tcp', 'tls', 'ws', 'wss'];

/**
 * The SIP URI of a route value (`<uri>` name-addr) or of a stored URI (the remote target, whose
 * `;params` belong to the URI, not to a header).
 */
export function uriOfValue(value: string): SipUri | undefined {
  const trimmed = value.trim();
  const text = trimmed.includes('<') ? parseNameAddr(trimmed)?.uri : trimmed;
  const uri = text === undefined ? undefined : parseUri(text);
  return uri && uri.scheme !== 'tel' ? (uri as SipUri) : undefined;
}

/**
 * RFC 3263 §4.1: the `transport` parameter when present; else TLS for a SIPS URI, UDP for SIP
 * (a numeric IP, or a name without NAPTR/SRV records). `;transport=tls` is TCP+TLS, and the WebSocket
 * tokens of RFC 7118 §5.3 name WS/WSS.
 */
export function transportOfUri(uri: SipUri): TransportName | undefined {
  const param = uri.params.transport;
  if (typeof param === 'string') {
    const t = param.toLowerCase() as TransportName;
    if (!TRANSPORTS.includes(t)) return undefined;
    return uri.scheme === 'sips' && t === 'tcp' ? 'tls' : uri.scheme === 'sips' && t === 'ws' ? 'wss' : t;
  }
  return uri.scheme === 'sips' ? 'tls' : 'udp';
}

/** RFC 3263 §4.2: the URI's port, else the transport's default. `maddr` wins over the host (§19.1.1). */
export function targetOfUri(uri: SipUri): Target | undefined {
  const transport = transportOfUri(uri);
  if (!transport) return undefined;
  const maddr = uri.params.maddr;
  const host = (typeof maddr === 'string' && maddr !== '' ? maddr : uri.host).replace(/^\[|\]$/g, '');
  return { transport, address: host, port: uri.port ?? defaultPort(transport) };
}

/**
 * RFC 5626 §5: the flow is the only way back when the client asked for it (`ob` in its Contact,
 * §4.2) or cannot be reached otherwise: a WebSocket client (RFC 7118 §5: the server cannot open a
 * WebSocket connection; its Contact host is typically `.invalid`). Applies only with an empty
 * route set: a proxy in the path keeps the flow itself.
 */
export function followsFlow(dialog: DialogState): boolean {
  if (dialog.routeSet.length > 0) return false;
  return followsFlowTo(dialog, uriOfValue(dialog.remoteTarget));
}

/** followsFlow for a dialog without a route set whose remote target reads as `target`. */
function followsFlowTo(dialog: DialogState, target: SipUri | undefined): boolean {
  if (!target) return true;
  if ('ob' in target.params) return true;
  if (dialog.flow.transport === 'ws' || dialog.flow.transport === 'wss') return true;
  return target.host.toLowerCase().endsWith('.invalid');
}

/**
 * The next hop of the dialog's requests (§12.2.1.1: "the first URI in the route set" or the remote
 * target; §8.1.2: "the UAC SHOULD follow the procedures defined in [4]" (RFC 3263)). A connection
 * already open to that address and port is reused by the transport (§18.1.1); else a new one is
 * opened. In the outbound case the flow's own connection is named, with its address as fallback.
 */
export function nextHopOf(dialog: DialogState): Target {
  const firstRoute = dialog.routeSet[0];
  // Without a route set the remote target is read once, for both questions.
  const uri = uriOfValue(firstRoute ?? dialog.remoteTarget);
  if (firstRoute !== undefined || !followsFlowTo(dialog, uri)) {
    const target = uri ? targetOfUri(uri) : undefined;
    if (target) return target;
  }
  const flow = dialog.flow;
  const target: Target = { transport: flow.transport, address: flow.remoteAddress, port: flow.remotePort };
  if (flow.connectionId !== undefined) target.connectionId = flow.connectionId;
  return target;
}

/** RFC 3261 §18.1.1: a request over 1300 octets (when the MTU is unknown) goes over TCP. */
export const UDP_MTU_LIMIT = 1300;

/**
 * §18.1.1: "If a request is within 200 bytes of the path MTU, or if it is larger than 1300 bytes
 * and the path MTU is unknown, the request MUST be sent using an RFC 2914 congestion controlled
 * transport protocol, such as TCP." The TCP target to the same next hop for a UDP request of
 * `size` octets that is too large; undefined when the request may go as it is.
 */
export function overUdpLimit(target: Target, size: number): Target | undefined {
  if (target.transport !== 'udp' || size <= UDP_MTU_LIMIT) return undefined;
  return { transport: 'tcp', address: target.address, port: target.port };
}
