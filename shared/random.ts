/**
 * Random identifiers (SIP tags and branches, RFC 3261 §19.3, §8.1.1.7; Call-IDs) from the
 * system CSPRNG, drawn from a pool filled a few KiB at a time: a `randomBytes` call per
 * identifier was several percent of a SUBSCRIBE flow's CPU. Each byte is handed out once.
 */
import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let used = POOL_BYTES;

/** `bytes` random bytes as lowercase hex (2 × bytes characters). */
export function randomHex(bytes: number): string {
  if (bytes > POOL_BYTES) return randomFillSync(Buffer.allocUnsafe(bytes)).toString('hex');
  if (used + bytes > POOL_BYTES) {
    randomFillSync(pool);
    used = 0;
  }
  const hex = pool.toString('hex', used, used + bytes);
  used += bytes;
  return hex;
}
