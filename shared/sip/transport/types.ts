/**
 * Shapes shared by the SIP transports (RFC 3261 §18, RFC 7118): where a message came from,
 * where one goes, and how the transport layer is configured.
 */

export type TransportName = 'udp' | 'tcp' | 'tls' | 'ws' | 'wss';

/** Where a received message came from; `connectionId` is set for stream transports. */
export interface Source {
  transport: TransportName;
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  connectionId?: string;
}

/** Where to send a request; an open `connectionId` is preferred over address and port. */
export interface Target {
  transport: TransportName;
  address: string;
  port: number;
  connectionId?: string;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFn = (level: LogLevel, msg: string, extra?: object) => void;

export interface TransportConfig {
  /** Listen address, e.g. '127.0.0.1' or '::1'. */
  host: string;
  /** Host written into the sent-by of our Via headers (default: `host`). */
  advertisedHost?: string;
  /**
   * Per transport, the sent-by (host and port) clients reach us at when a load balancer stands
   * in front (RFC 3261 §18.1.1: responses go to the sent-by); overrides `advertisedHost`.
   */
  advertised?: Partial<Record<TransportName, { host: string; port: number }>>;
  /**
   * A plain TCP listener for connections a load balancer received over TLS and ended: they are
   * TLS connections to the client (RFC 3261 §26.2: sips), so they count as `tls` here.
   */
  tlsOffloadPort?: number;
  /** undefined = not started; 0 = any free port. */
  udpPort?: number;
  tcpPort?: number;
  tlsPort?: number;
  wsPort?: number;
  /** Secure WebSocket (RFC 7118 `wss`), served with the `tls` key and certificate. */
  wssPort?: number;
  /** Required when tlsPort or wssPort is set. `ca` is trusted for connections we open. */
  tls?: { key: string | Buffer; cert: string | Buffer; ca?: string | Buffer | Array<string | Buffer> };
  /**
   * The UDP socket's kernel receive buffer (SO_RCVBUF, default 4 MiB; Linux grants at most
   * net.core.rmem_max). What arrives while the loop is busy (a commit, a GC) waits there, and a
   * full buffer drops datagrams unanswered (RFC 3261 §18.1.1: UDP has no flow control): the
   * default 208 KiB holds about 90 requests, 40 ms of 400 pulls/s, and lost 40 in a 5 s step.
   */
  udpReceiveBufferBytes?: number;
  /** Default 65535; larger requests get 513 Message Too Large, larger responses are dropped. */
  maxMessageBytes?: number;
  /** Default 256. */
  maxHeaders?: number;
  /**
   * Option tags this UAS supports. When set, a request whose Require names others is answered
   * 420 Bad Extension with Unsupported by the transport (RFC 3261 §8.2.2.3); unset = not checked here.
   */
  supportedOptionTags?: readonly string[];
  /** Stream connections (TCP, TLS, WS) held at once, both directions; default 1024. */
  maxConnections?: number;
  /**
   * Inbound stream connections one source address may hold; default 32. Sources `isKnownPeer`
   * admits are not counted against it.
   */
  maxConnectionsPerSource?: number;
  /**
   * Connections kept for known peers: others are refused once `maxConnections` minus this many
   * are open (at most half of them), so that the SIP/IP Core still connects under a flood;
   * default 64.
   */
  knownPeerReserve?: number;
  /** The SIP/IP Core and other peers the limits above favour (e.g. TRUSTED_PEERS). */
  isKnownPeer?: (address: string) => boolean;
  /**
   * A message whose first byte arrived must be complete this soon, or its connection is closed
   * (slow senders cannot hold connections half-sent); default 10_000.
   */
  messageTimeoutMs?: number;
  /**
   * Stream connections idle this long are closed; default 300_000: above the 120 s a client
   * keeps between CRLF keep-alives (RFC 5626 §4.4.1), which the edge answers (§3.5.1).
   */
  idleTimeoutMs?: number;
  /** Connect timeout for connections we open; default 10_000. */
  connectTimeoutMs?: number;
  /**
   * A datagram read but still unhandled this long is dropped unread; default 500, T1: its
   * sender has retransmitted by then (RFC 3261 §17.1.1.2, §17.1.2.2), and the copy behind it in
   * the queue gets the answer. Bounds the queue's wait, so that it cannot hold more than one T1
   * of arrivals however long the overload lasts.
   */
  maxReceiveWaitMs?: number;
  /** Outbound allow-list: a send to any other address fails and nothing goes out. */
  allowDestination?: (address: string) => boolean;
}

export const TRANSPORT_DEFAULTS = {
  maxMessageBytes: 65_535,
  maxHeaders: 256,
  maxConnections: 1024,
  maxConnectionsPerSource: 32,
  knownPeerReserve: 64,
  messageTimeoutMs: 10_000,
  idleTimeoutMs: 300_000,
  connectTimeoutMs: 10_000,
  maxReceiveWaitMs: 500,
  udpReceiveBufferBytes: 4 * 1024 * 1024,
} as const;

/**
 * How long handling received messages runs before the loop turns again (reads, timers, the
 * store's fdatasync completions whose answers are waiting): the same bound for datagrams
 * (TransportLayer's queue) and for the messages of one stream read.
 */
export const HANDLING_SLICE_MS = 2;

/** Stream transports keep a connection; the others send datagrams (RFC 3261 §18). */
export function isReliable(transport: TransportName): boolean {
  return transport !== 'udp';
}

/** RFC 3261 §19.1.2 / RFC 7118 §5.5: the port assumed when a sent-by has none. */
export function defaultPort(transport: TransportName): number {
  switch (transport) {
    case 'tls':
      return 5061;
    case 'ws':
      return 80;
    case 'wss':
      return 443;
    default:
      return 5060;
  }
}

/** The Via transport token of RFC 3261 §20.42 / RFC 7118 §5.2. */
export function viaTransportToken(transport: TransportName): string {
  return transport.toUpperCase();
}
