/**
 * MSRP (RFC 4975): framing, URIs, chunking, the service's session listener (relaying to the owning
 * task when asked) and a small client.
 */
export * from './uri.ts';
export * from './framing.ts';
export * from './chunking.ts';
export * from './connection.ts';
export * from './listener.ts';
export * from './client.ts';
export * from './session-owner.ts';
