/**
 * Session ids that name the edge task holding the session, so a task reached by the client's
 * MSRP connection through the load balancer knows where to hand it (see listener.ts `relay`).
 *
 * Form: `r<8 hex: IPv4 address><4 hex: port>.<random>`, e.g. `r0a00011708b7.Zk3...`; only
 * characters RFC 4975 §9 allows in a session-id. Without an owner the id is the random part
 * alone. Owner addresses are private IPv4 ones (the task's VPC address).
 */
import { randomPoolBytes } from '#shared/random.ts';
import { isIP } from 'node:net';
import { isValidSessionId } from './uri.ts';

export interface SessionOwner {
  /** The owning task's private IPv4 address. */
  address: string;
  /** Its MSRP port. */
  port: number;
}

const OWNED = /^r([0-9a-f]{8})([0-9a-f]{4})\.(.+)$/;

/**
 * The session id for `random`, naming `owner` when given. Throws TypeError for an owner that
 * is not an IPv4 address and port 1-65535, or a random part that is not a session-id.
 */
export function encodeSessionId(owner: SessionOwner | undefined, random: string): string {
  if (!random || !isValidSessionId(random)) throw new TypeError(`invalid MSRP session id part: ${random}`);
  if (!owner) return random;
  if (isIP(owner.address) !== 4) throw new TypeError(`MSRP session owner must be an IPv4 address: ${owner.address}`);
  if (!Number.isInteger(owner.port) || owner.port < 1 || owner.port > 65535) {
    throw new TypeError(`invalid MSRP session owner port: ${owner.port}`);
  }
  const address = owner.address
    .split('.')
    .map((octet) => Number(octet).toString(16).padStart(2, '0'))
    .join('');
  return `r${address}${owner.port.toString(16).padStart(4, '0')}.${random}`;
}

/** The owner named by a session id, or undefined when it names none or is malformed. */
export function decodeSessionOwner(sessionId: string): SessionOwner | undefined {
  const match = OWNED.exec(sessionId);
  if (!match || !isValidSessionId(match[3]!)) return undefined;
  const hex = match[1]!;
  const octets = [0, 2, 4, 6].map((i) => parseInt(hex.slice(i, i + 2), 16));
  const port = parseInt(match[2]!, 16);
  if (port === 0) return undefined;
  return { address: octets.join('.'), port };
}

/**
 * A fresh session id naming `owner` (or none). RFC 4975 §14.1: the session id must be hard to
 * guess, 80 bits or more; the random part carries 96.
 */
export function newSessionId(owner?: SessionOwner): string {
  return encodeSessionId(owner, randomPoolBytes(12).toString('base64url'));
}

/**
 * The owner for sessions of the edge task `edgeId` (functions/edge/edge-id.ts: its control
 * API's base URL, `http://<private IPv4>:<port>` in AWS) listening for MSRP on `msrpPort`;
 * undefined when the edge id names no IPv4 address (the local default's 'local').
 */
export function edgeSessionOwner(edgeId: string, msrpPort: number): SessionOwner | undefined {
  if (!URL.canParse(edgeId)) return undefined;
  const host = new URL(edgeId).hostname;
  return isIP(host) === 4 ? { address: host, port: msrpPort } : undefined;
}
