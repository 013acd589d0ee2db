/**
 * List changes become NOTIFYs at most once per second per user (protocol.md: "coalesced to at
 * most one per subscription per second, always full state"). Full state makes coalescing
 * lossless: the NOTIFY sent after the quiet period carries every change before it.
 */
export class ChangeCoalescer {
  private readonly last = new Map<string, number>();
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly fire: (user: string) => Promise<void>,
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  userChanged(user: string): Promise<void> {
    if (this.stopped || this.pending.has(user)) return Promise.resolve();
    const since = this.now() - (this.last.get(user) ?? -Infinity);
    if (since >= this.intervalMs) return this.run(user);
    const timer = setTimeout(() => {
      this.pending.delete(user);
      void this.run(user);
    }, this.intervalMs - since);
    timer.unref();
    this.pending.set(user, timer);
    return Promise.resolve();
  }

  private async run(user: string): Promise<void> {
    this.last.set(user, this.now());
    await this.fire(user).catch(() => undefined);
    // Forget quiet users so the map stays bounded by recent activity.
    const cutoff = this.now() - this.intervalMs;
    for (const [u, t] of this.last) if (t < cutoff && !this.pending.has(u)) this.last.delete(u);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
  }
}
