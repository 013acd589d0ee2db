/**
 * List changes become NOTIFYs at once, and are rate-limited only in bursts (protocol.md "NOTIFY";
 * RFC 6665 §4.2.2 lets a notifier throttle). Each user has a bucket of `burst` NOTIFY rounds,
 * refilled one per `intervalMs`: a deposit followed by a retrieval goes out immediately twice,
 * while a storm of changes settles to one round per interval. Full state makes coalescing
 * lossless: the round sent after the wait carries every change before it.
 */
export const NOTIFY_BURST = 3;

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date. */
  at: number;
}

export class ChangeCoalescer {
  private readonly buckets = new Map<string, Bucket>();
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private stopped = false;
  /** When full buckets were last forgotten. */
  private sweptAt = -Infinity;

  constructor(
    private readonly fire: (user: string) => Promise<void>,
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
    private readonly burst: number = NOTIFY_BURST,
  ) {}

  userChanged(user: string): Promise<void> {
    // A round is already due: it will carry this change too.
    if (this.stopped || this.pending.has(user)) return Promise.resolve();
    const bucket = this.refill(user);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return this.run(user);
    }
    const timer = setTimeout(
      () => {
        this.pending.delete(user);
        const b = this.refill(user);
        b.tokens = Math.max(0, b.tokens - 1);
        void this.run(user);
      },
      Math.ceil((1 - bucket.tokens) * this.intervalMs),
    );
    timer.unref();
    this.pending.set(user, timer);
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

  private async run(user: string): Promise<void> {
    await this.fire(user).catch(() => undefined);
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
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
  }
}
