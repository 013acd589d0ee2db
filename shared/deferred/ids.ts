/**
 * ULIDs for stored messages and generated Message-IDs. The ulid package draws one random byte
 * per character through its own PRNG, a native crypto call each (16 per id, ~10% of a deposit's
 * CPU in the deposit bench); this one draws them from a pool filled by the same CSPRNG 4 KiB at
 * a time: the same randomness, one native call per 256 ids.
 */
import { randomFillSync } from 'node:crypto';
import { ulid } from 'ulid';

const pool = new Uint8Array(4096);
let next = pool.length;

function poolPrng(): number {
  if (next >= pool.length) {
    randomFillSync(pool);
    next = 0;
  }
  return pool[next++]! / 256;
}

/** A ULID for `now` (epoch ms): 48 bits of time, 80 random bits. */
export function newUlid(now: number = Date.now()): string {
  return ulid(now, poolPrng);
}
