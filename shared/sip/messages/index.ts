/**
 * The SIP message layer (RFC 3261 §7, §19, §20, §25): parse and serialize messages, typed views of
 * header values, URIs, bodies and responses. Every other layer imports from here.
 */
export * from './types.ts';
export * from './parse.ts';
export * from './serialize.ts';
export * from './headers.ts';
export * from './uri.ts';
export * from './body.ts';
export * from './response.ts';
export * from './frame.ts';
export * from './own-copy.ts';
