/**
 * List changes become NOTIFYs at once, and are rate-limited only in bursts (protocol.md "NOTIFY";
 * RFC 6665 §4.2.2 lets a notifier throttle). Each user has a bucket of `burst` NOTIFY rounds,
 * refilled one per `intervalMs`: a deposit followed by a retrieval goes out immediately twice,
 * while a storm of changes settles to one round per interval. Full state makes coalescing
 * lossless: the round sent after the wait carries every change before it.
 *
 * A change may come with what its sender knows of it (ChangeDetail, from the change fan-out in
 * AWS mode): the watchers it read, so the NOTIFYs need not list them again, and the summary
 * revision it left, so their count may be read eventually consistent. A round that waited
 * carries the union of its changes' watchers and the highest revision, or none of either when
 * one change named none (then the NOTIFYs list the watchers, and read the count strongly).
 */
import type { ChangeDetail } from '#shared/ports.ts';

export const NOTIFY_BURST = 3;

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date. */
  at: number;
}

export class ChangeCoalescer {
  private readonly buckets = new Map<string, Bucket>();
  private readonly pending = new Map<string, { timer: NodeJS.Timeout; dialogIds?: Set<string>; revision?: number }>();
  private stopped = false;
  /** When full buckets were last forgotten. */
  private sweptAt = -Infinity;

  constructor(
    private readonly fire: (user: string, change: ChangeDetail) => Promise<void>,
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
    private readonly burst: number = NOTIFY_BURST,
  ) {}

  userChanged(user: string, change: ChangeDetail = {}): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const due = this.pending.get(user);
    if (due) {
      // A round is already due: it will carry this change too, and notify its watchers.
      if (!change.dialogIds) delete due.dialogIds;
      else for (const id of change.dialogIds) due.dialogIds?.add(id);
      if (change.revision === undefined || due.revision === undefined) delete due.revision;
      else due.revision = Math.max(due.revision, change.revision);
      return Promise.resolve();
    }
    const bucket = this.refill(user);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return this.run(user, change);
    }
    const timer = setTimeout(
      () => {
        const round = this.pending.get(user);
        this.pending.delete(user);
        const b = this.refill(user);
        b.tokens = Math.max(0, b.tokens - 1);
        void this.run(user, {
          ...(round?.dialogIds ? { dialogIds: [...round.dialogIds] } : {}),
          ...(round?.revision !== undefined ? { revision: round.revision } : {}),
        });
      },
      Math.ceil((1 - bucket.tokens) * this.intervalMs),
    );
    timer.unref();
    this.pending.set(user, {
      timer,
      ...(change.dialogIds ? { dialogIds: new Set(change.dialogIds) } : {}),
      ...(change.revision !== undefined ? { revision: change.revision } : {}),
    });
    return Promise.resolve();
  }

  private refill(user: string): Bucket {
    const t = this.now();
    const bucket = this.buckets.get(user) ?? { tokens: this.burst, at: t };
    bucket.tokens = Math.min(this.burst, bucket.tokens + (t - bucket.at) / this.intervalMs);
    bucket.at = t;
    this.buckets.set(user, bucket);
    return bucket;
  }

  private async run(user: string, change: ChangeDetail): Promise<void> {
    await this.fire(user, change).catch(() => undefined);
    // Forget users whose bucket is full again, so the map stays bounded by recent activity: at
    // most once an interval (a bucket takes that long to refill a token), not a scan per change.
    const t = this.now();
    if (t - this.sweptAt < this.intervalMs) return;
    this.sweptAt = t;
    for (const [u, b] of this.buckets) {
      if (b.tokens + (t - b.at) / this.intervalMs >= this.burst && !this.pending.has(u)) this.buckets.delete(u);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const { timer } of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
  }
}
