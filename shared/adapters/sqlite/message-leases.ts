/**
 * The delivery leases of the local default's messages (DeferredMessageStore.claimMany), held in
 * this process's memory rather than in the messages' rows. A lease means something only while the
 * process whose delivery holds it lives, and only one process opens the database (its EXCLUSIVE
 * lock): a lease on disk outlives its holder only to be freed at the next start-up. In rows, each
 * claim rewrote every claimed message's row, payload and all (its table pages into the WAL, a
 * store write per pull); here a claim is a read of the rows and a map update, with the same
 * conditions as DynamoDB's conditional writes: one holder at a time, the same holder again, a
 * lapsed lease taken over.
 */
interface Lease {
  holder: string;
  /** Epoch seconds: the lease holds while `until >= now`. */
  until: number;
}

export class MessageLeases {
  /** By user, then message id: a user's leases go together when the user has none left. */
  private readonly byUser = new Map<string, Map<string, Lease>>();

  /** Whether `holder` may take (user, id) at `nowSec`: no lease, its own, or one that lapsed. */
  free(user: string, id: string, holder: string, nowSec: number): boolean {
    const lease = this.byUser.get(user)?.get(id);
    return lease === undefined || lease.holder === holder || lease.until < nowSec;
  }

  take(user: string, id: string, holder: string, until: number): void {
    let leases = this.byUser.get(user);
    if (!leases) this.byUser.set(user, (leases = new Map()));
    leases.set(id, { holder, until });
  }

  /** Give (user, id) back when `holder` holds it; true when it did. */
  release(user: string, id: string, holder: string): boolean {
    const leases = this.byUser.get(user);
    if (leases?.get(id)?.holder !== holder) return false;
    this.forget(user, id);
    return true;
  }

  /** The message left the store (delivered, deleted, renamed): its lease, if any, goes too. */
  forget(user: string, id: string): void {
    const leases = this.byUser.get(user);
    if (!leases?.delete(id)) return;
    if (leases.size === 0) this.byUser.delete(user);
  }

  /** Drop leases that lapsed before `nowSec` (a delivery that never settled); returns how many. */
  dropLapsed(nowSec: number): number {
    let dropped = 0;
    for (const [user, leases] of this.byUser) {
      for (const [id, lease] of leases) {
        if (lease.until >= nowSec) continue;
        leases.delete(id);
        dropped++;
      }
      if (leases.size === 0) this.byUser.delete(user);
    }
    return dropped;
  }

  /** Leases held now, lapsed ones included until dropped (tests, operators). */
  get size(): number {
    let n = 0;
    for (const leases of this.byUser.values()) n += leases.size;
    return n;
  }
}
