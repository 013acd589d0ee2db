/**
 * ULIDs for stored messages and generated Message-IDs. The ulid package draws one random byte
 * per character through its own PRNG, a native crypto call each (16 per id, ~10% of a deposit's
 * CPU in the deposit bench); this one draws them from a pool filled by the same CSPRNG 4 KiB at
 * a time: the same randomness, one native call per 256 ids.
 */
import { createHash, randomFillSync } from 'node:crypto';
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

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * The stored id of a deposit, derived from what makes it unique: the recipient, the
 * authenticated sender and the imdn.Message-ID (RFC 5438 §6.3: unique per sender). A repeated
 * deposit gets the same id, so a store can make its one conditional write on the message's own
 * key the duplicate check (no dedupe record beside it). 26 Crockford base32 characters of
 * SHA-256, first one in 0-7: shaped like a ULID, so every place that takes an id takes it.
 */
export function depositId(user: string, from: string, messageId: string): string {
  const digest = createHash('sha256')
    .update(JSON.stringify([user, from, messageId]))
    .digest();
  let bits = 0;
  let acc = 0;
  let out = '';
  for (const byte of digest) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < 26) {
      bits -= 5;
      out += CROCKFORD[(acc >>> bits) & 31];
    }
    acc &= (1 << bits) - 1;
    if (out.length >= 26) break;
  }
  return CROCKFORD[CROCKFORD.indexOf(out[0]!) & 7] + out.slice(1);
}
