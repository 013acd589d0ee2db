/**
 * MSRP (RFC 4975): framing, URIs, chunking, the service's session listener and a small client.
 */
export * from './uri.ts';
export * from './framing.ts';
export * from './chunking.ts';
export * from './connection.ts';
export * from './listener.ts';
export * from './client.ts';
