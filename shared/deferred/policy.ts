/**
 * The service's limits and the pure decisions made from them (protocol.md "SUBSCRIBE",
 * "NOTIFY", "Deposit", "Delivery over MSRP").
 */
import { splitList } from '#shared/sip/messages/index.ts';
import { LIST_CONTENT_TYPE } from './names.ts';

export interface Policy {
  /** Subscription duration granted when SUBSCRIBE names none (seconds). */
  defaultExpires: number;
  /** Longest subscription granted (seconds). */
  maxExpires: number;
  /** Shortest non-zero subscription accepted; shorter gets 423 with Min-Expires (seconds). */
  minExpires: number;
  /**
   * Entries per NOTIFY body (protocol.md "NOTIFY": the oldest ones; `total` tells the rest).
   * The default is what one strongly consistent 4 KB DynamoDB read of the list index holds for
   * plain messages (an entry is about 240 bytes with its keys), so a NOTIFY costs the same
   * read at any mailbox depth; it also keeps the body near 7 KB instead of 22.
   */
  notifyMaxEntries: number;
  /** How long a deferred message is kept (seconds). */
  retentionSeconds: number;
  /** A user's store is full at this many messages (486 on deposit). */
  maxMessagesPerUser: number;
  /** A user's store is full at this many stored bytes (CPIM payloads; 486 on deposit). */
  maxBytesPerUser: number;
  /**
   * The whole store is full at this many stored bytes (480 on deposit). Held by the SQLite
   * store of the local default; DynamoDB has no cheap total to condition a write on, so in AWS
   * the per-user caps are what is enforced.
   */
  maxStoreBytes: number;
  /** Largest INVITE body accepted (413 beyond). */
  maxInviteBodyBytes: number;
  /**
   * Most entries one INVITE's action list may name (400 naming the list beyond): the ids are
   * read in one batch, and DynamoDB's BatchGetItem takes 100 keys.
   */
  maxInviteIds: number;
  /** Largest deposit over UDP (RFC 3261 §18.1.1 keeps UDP requests under the path MTU). */
  maxDepositBytesUdp: number;
  /** Largest deposit over TCP/TLS/WS and HTTP. */
  maxDepositBytesStream: number;
  /** MSRP chunk size above which SENDs are split with Byte-Range (RFC 4975 §7.1). */
  msrpChunkBytes: number;
  /** Wait for the client's MSRP response before a message counts as not delivered. */
  msrpTimeoutMs: number;
  /** After a burst of NOTIFY rounds for one user, at most one per this interval. */
  notifyMinIntervalMs: number;
  /** Wait for the client to connect to our MSRP path before BYE. */
  sessionConnectTimeoutMs: number;
  /**
   * How long a delivery holds a message it claimed (seconds): no other session delivers it
   * meanwhile. It must outlast any live transfer; the deliver function's 3 min timeout bounds
   * one. After a crash, the message waits this long before another session may take it.
   */
  deliveryLeaseSeconds: number;
}

const DAY = 86_400;

const DEFAULTS: Policy = {
  defaultExpires: 3600,
  maxExpires: DAY,
  minExpires: 60,
  notifyMaxEntries: 15,
  retentionSeconds: 7 * DAY,
  maxMessagesPerUser: 1000,
  // 1,000 messages of 64 KiB: the message cap reached first for all but large bodies.
  maxBytesPerUser: 64 * 1024 * 1024,
  maxStoreBytes: 8 * 1024 * 1024 * 1024,
  maxInviteBodyBytes: 64 * 1024,
  maxInviteIds: 100,
  maxDepositBytesUdp: 1300,
  // DynamoDB items stop at 400 KB; the CPIM and its metadata share one item.
  maxDepositBytesStream: 256 * 1024,
  msrpChunkBytes: 65_536,
  msrpTimeoutMs: 30_000,
  notifyMinIntervalMs: 1000,
  sessionConnectTimeoutMs: 30_000,
  deliveryLeaseSeconds: 180,
};

/** The default policy with some values replaced (undefined overrides are ignored). */
export function defaultPolicy(overrides: Partial<Policy> = {}): Policy {
  const out: Policy = { ...DEFAULTS };
  for (const [key, value] of Object.entries(overrides) as [keyof Policy, number | undefined][]) {
    if (value !== undefined) out[key] = value;
  }
  return out;
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: DAY, w: 7 * DAY };

/**
 * A duration such as "7d", "12h", "30m", "45s" or plain seconds "3600", as seconds;
 * undefined when it is not one of those forms.
 */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d{1,12})\s*([smhdw]?)$/i.exec(text.trim());
  if (!m) return undefined;
  const unit = m[2] ? UNIT_SECONDS[m[2].toLowerCase()]! : 1;
  const seconds = Number(m[1]) * unit;
  return Number.isSafeInteger(seconds) ? seconds : undefined;
}

/**
 * Does an Accept header admit the list type? RFC 3261 §20.1 (media ranges of RFC 2616 §14.1):
 * the most specific range that matches decides, and q=0 means "not acceptable". No Accept at
 * all means the package default, which is the list type (RFC 6665 §4.1.2.1); an empty Accept
 * admits nothing.
 */
export function acceptsList(accept: string[] | undefined): boolean {
  if (accept === undefined) return true;
  const [type, subtype] = LIST_CONTENT_TYPE.split('/') as [string, string];
  let best: { specificity: number; q: number } | undefined;
  for (const range of accept.flatMap(splitList)) {
    const [mediaRange = '', ...params] = range.split(';').map((s) => s.trim());
    const [t = '', s = ''] = mediaRange
      .toLowerCase()
      .split('/')
      .map((x) => x.trim());
    let specificity: number;
    if (t === '*' && s === '*') specificity = 0;
    else if (t === type && s === '*') specificity = 1;
    else if (t === type && s === subtype) specificity = 2;
    else continue;
    let q = 1;
    for (const p of params) {
      const [name, value] = p.split('=').map((x) => x.trim());
      if (name?.toLowerCase() === 'q') {
        const parsed = Number(value);
        q = Number.isFinite(parsed) && parsed >= 0 ? parsed : 1;
      }
    }
    if (!best || specificity > best.specificity) best = { specificity, q };
  }
  return best !== undefined && best.q > 0;
}

export type GrantedExpires = { ok: true; expires: number } | { ok: false; minExpires: number };

/**
 * The subscription duration granted for a requested Expires (RFC 6665 §4.2.1.1): absent or not
 * a non-negative integer -> the default; above the maximum -> the maximum; 0 -> 0 (a one-time
 * fetch on a new dialog, the end of an existing one, §4.4.3/§4.2.1.2); below the minimum -> 423.
 * The same bounds hold in and out of a dialog.
 */
export function grantExpires(
  requested: number | undefined,
  policy: Pick<Policy, 'defaultExpires' | 'maxExpires' | 'minExpires'>,
  _context: { inDialog: boolean },
): GrantedExpires {
  if (requested === undefined || !Number.isInteger(requested) || requested < 0) {
    return { ok: true, expires: Math.min(policy.defaultExpires, policy.maxExpires) };
  }
  if (requested === 0) return { ok: true, expires: 0 };
  if (requested < policy.minExpires) return { ok: false, minExpires: policy.minExpires };
  return { ok: true, expires: Math.min(requested, policy.maxExpires) };
}
