/**
 * Random bytes for identifiers (SIP branches and tags, MSRP transaction and message ids), taken
 * from a pool the CSPRNG fills 4 KiB at a time: one crypto call per ~300 identifiers instead of
 * one each (each call cost a few µs of a SIP request's or an MSRP SEND's handling).
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
