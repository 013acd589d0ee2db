/**
 * SIP transports (RFC 3261 §18, RFC 3581, RFC 5626 §3.5.1 keep-alives, RFC 7118 WebSocket).
 */
export * from './types.ts';
export { TransportLayer } from './transport-layer.ts';
export { SIP_WS_SUBPROTOCOL } from './ws-handshake.ts';
export type { BoundPorts, MessageListener, SentResponse } from './transport-layer.ts';
export { responseDestination } from './response-destination.ts';
export type { ResponseDestination } from './response-destination.ts';
export { stampVia, stampTopVia, plainAddress } from './via-received.ts';
export { readMessage, rejectHead, faultReason } from './inbound.ts';
export type { InboundOutcome, InboundLimits } from './inbound.ts';
export { StreamFramer } from './stream-framer.ts';
export type { FramerEvent } from './stream-framer.ts';
