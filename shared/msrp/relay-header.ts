/**
 * What an edge task relaying a client's MSRP connection tells the session's owner about that
 * client (listener.ts `relay`): a PROXY protocol version 2 header (HAProxy's PROXY protocol
 * specification §2.2) in front of the client's bytes, with the client's address and port, and
 * when the client came over TLS ended at the relaying task a PP2_TYPE_SSL TLV (§2.2.5) plus the
 * client's certificate (DER) in a custom TLV (0xE0, PP2_TYPE_MIN_CUSTOM, §2.2.8), so the owner
 * applies the same source check (issue 11 item 5) and fingerprint check (RFC 8122 §5) as for a
 * client that reached it directly.
 *
 * Decoding is incremental and linear: the owner reads only as many bytes as the header's length
 * field says, up to MAX_RELAY_HEADER_BYTES.
 */
import { isIP } from 'node:net';

/** Who the relayed client is, as the relaying task saw it. */
export interface RelayedClient {
  address: string;
  port: number;
  /** The client's connection was TLS (ended at the relaying task, or at its load balancer). */
  tls: boolean;
  /** The client's certificate (DER), when it presented one. */
  certificate?: Buffer;
}

/** §2.2: the 12-byte signature every version 2 header starts with. */
const SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const FIXED_BYTES = 16;
/** §2.2: version 2 (high nibble), command PROXY (low nibble 1). */
const VERSION_PROXY = 0x21;
/** §2.2: AF_INET / AF_INET6 (high nibble) over STREAM (low nibble 1). */
const TCP4 = 0x11;
const TCP6 = 0x21;
const PP2_TYPE_SSL = 0x20;
/** §2.2.5: client connected over SSL/TLS; client presented a certificate on this connection. */
const PP2_CLIENT_SSL = 0x01;
const PP2_CLIENT_CERT_CONN = 0x02;
const TLV_CLIENT_CERTIFICATE = 0xe0;
/** A header with a certificate of a few KiB fits; anything longer is refused unread. */
export const MAX_RELAY_HEADER_BYTES = 16 * 1024;

function addressBytes(address: string, family: 4 | 6): Buffer {
  if (family === 4) return Buffer.from(address.split('.').map(Number));
  // Expand "::" so every IPv6 spelling gives its 16 bytes.
  const [head = '', tail] = address.split('::');
  const words = (part: string) => (part ? part.split(':') : []);
  const left = words(head);
  const right = tail === undefined ? [] : words(tail);
  const last = right.length > 0 ? right : left;
  if (last.length > 0 && last[last.length - 1]!.includes('.')) {
    // An embedded IPv4 tail (::ffff:a.b.c.d) is two words.
    const v4 = last.pop()!.split('.').map(Number);
    last.push(((v4[0]! << 8) | v4[1]!).toString(16), ((v4[2]! << 8) | v4[3]!).toString(16));
  }
  const zeros = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  const out = Buffer.alloc(16);
  [...left, ...zeros, ...right].forEach((word, i) => out.writeUInt16BE(parseInt(word, 16), i * 2));
  return out;
}

function formatAddress(bytes: Buffer, family: 4 | 6): string {
  if (family === 4) return [...bytes].join('.');
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(bytes.readUInt16BE(i).toString(16));
  return words.join(':');
}

function tlv(type: number, value: Buffer): Buffer {
  const head = Buffer.alloc(3);
  head.writeUInt8(type, 0);
  head.writeUInt16BE(value.length, 1);
  return Buffer.concat([head, value]);
}

/**
 * The header announcing `client`, reached at `local` (the relaying task's address and port,
 * or zeros when its family differs). Throws TypeError for an address that is not IPv4 or IPv6.
 */
export function encodeRelayHeader(client: RelayedClient, local: { address: string; port: number }): Buffer {
  const family = isIP(client.address);
  if (family !== 4 && family !== 6)
    throw new TypeError(`relayed client address is not an IP address: ${client.address}`);
  const sameFamily = isIP(local.address) === family;
  const addresses = Buffer.concat([
    addressBytes(client.address, family),
    sameFamily ? addressBytes(local.address, family) : Buffer.alloc(family === 4 ? 4 : 16),
    Buffer.from([client.port >> 8, client.port & 0xff]),
    Buffer.from(sameFamily ? [local.port >> 8, local.port & 0xff] : [0, 0]),
  ]);
  const tlvs: Buffer[] = [];
  if (client.tls) {
    // §2.2.5: client flags, then verify (0 only when the certificate was verified against a CA,
    // which the relaying task does not do: the owner checks the fingerprint itself).
    const ssl = Buffer.alloc(5);
    ssl.writeUInt8(PP2_CLIENT_SSL | (client.certificate ? PP2_CLIENT_CERT_CONN : 0), 0);
    ssl.writeUInt32BE(client.certificate ? 1 : 0, 1);
    tlvs.push(tlv(PP2_TYPE_SSL, ssl));
    if (client.certificate) tlvs.push(tlv(TLV_CLIENT_CERTIFICATE, client.certificate));
  }
  const body = Buffer.concat([addresses, ...tlvs]);
  const fixed = Buffer.alloc(FIXED_BYTES - SIGNATURE.length);
  fixed.writeUInt8(VERSION_PROXY, 0);
  fixed.writeUInt8(family === 4 ? TCP4 : TCP6, 1);
  fixed.writeUInt16BE(body.length, 2);
  return Buffer.concat([SIGNATURE, fixed, body]);
}

export type RelayHeaderRead =
  /** More bytes are needed to decide: at least `needed` in all. */
  | { state: 'partial'; needed: number }
  /** The bytes do not start with a header: a connection that is not a relay. */
  | { state: 'absent' }
  | { state: 'invalid'; reason: string }
  /** `consumed` bytes were the header; the rest is the client's. */
  | { state: 'complete'; client: RelayedClient; consumed: number };

/** Read a header at the start of `bytes` (everything received so far on the connection). */
export function readRelayHeader(bytes: Buffer): RelayHeaderRead {
  const prefix = Math.min(bytes.length, SIGNATURE.length);
  if (!bytes.subarray(0, prefix).equals(SIGNATURE.subarray(0, prefix))) return { state: 'absent' };
  if (bytes.length < FIXED_BYTES) return { state: 'partial', needed: FIXED_BYTES };
  if (bytes[12] !== VERSION_PROXY) return { state: 'invalid', reason: 'not a version 2 PROXY command' };
  const familyByte = bytes[13];
  const family = familyByte === TCP4 ? 4 : familyByte === TCP6 ? 6 : undefined;
  if (!family) return { state: 'invalid', reason: 'not TCP over IPv4 or IPv6' };
  const length = bytes.readUInt16BE(14);
  if (FIXED_BYTES + length > MAX_RELAY_HEADER_BYTES) return { state: 'invalid', reason: 'header too long' };
  if (bytes.length < FIXED_BYTES + length) return { state: 'partial', needed: FIXED_BYTES + length };
  const body = bytes.subarray(FIXED_BYTES, FIXED_BYTES + length);
  const size = family === 4 ? 4 : 16;
  if (body.length < size * 2 + 4) return { state: 'invalid', reason: 'addresses cut short' };
  const client: RelayedClient = {
    address: formatAddress(body.subarray(0, size), family),
    port: body.readUInt16BE(size * 2),
    tls: false,
  };
  // §2.2.7: TLVs follow the addresses up to the header's length.
  for (let at = size * 2 + 4; at < body.length;) {
    if (at + 3 > body.length) return { state: 'invalid', reason: 'TLV cut short' };
    const type = body.readUInt8(at);
    const valueLength = body.readUInt16BE(at + 1);
    const value = body.subarray(at + 3, at + 3 + valueLength);
    if (value.length !== valueLength) return { state: 'invalid', reason: 'TLV cut short' };
    if (type === PP2_TYPE_SSL && value.length >= 1) client.tls = (value.readUInt8(0) & PP2_CLIENT_SSL) !== 0;
    if (type === TLV_CLIENT_CERTIFICATE) client.certificate = Buffer.from(value);
    at += 3 + valueLength;
  }
  return { state: 'complete', client, consumed: FIXED_BYTES + length };
}
