/**
 * Random identifiers (SIP tags and branches, RFC 3261 §19.3, §8.1.1.7; Call-IDs; MSRP transaction
 * and message ids) from the system CSPRNG, drawn from a pool filled 4 KiB at a time: a
 * `randomBytes` call per identifier was several percent of a SUBSCRIBE flow's CPU. Each byte is
 * handed out once.
 */
import { randomBytes, randomFillSync } from 'node:crypto';

const POOL = Buffer.alloc(4096);
let at = POOL.length;

/** `length` random bytes; a view into the pool, valid until the next call (use it at once). */
export function randomPoolBytes(length: number): Buffer {
  if (length > POOL.length) return randomBytes(length);
  if (at + length > POOL.length) {
    randomFillSync(POOL);
    at = 0;
  }
  return POOL.subarray(at, (at += length));
}

/** `bytes` random bytes as lowercase hex (2 × `bytes` characters). */
export function randomHex(bytes: number): string {
  return randomPoolBytes(bytes).toString('hex');
}
