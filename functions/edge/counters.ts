/**
 * The edge's running counts, for /metrics, the local dashboard and the EMF metrics the AWS
 * deployment publishes. Monotonic counters by key plus gauges read at scrape time.
 */
export class Counters {
  private readonly counts = new Map<string, number>();
  private readonly samples = new Map<string, number[]>();
  private readonly gauges = new Map<string, () => number>();

  inc(name: string, labels: Record<string, string> = {}, by = 1): void {
    const key = keyOf(name, labels);
    this.counts.set(key, (this.counts.get(key) ?? 0) + by);
  }

  /** Keep the last 1000 observations for quantiles (delivery latency). */
  observe(name: string, value: number): void {
    const list = this.samples.get(name) ?? [];
    list.push(value);
    if (list.length > 1000) list.shift();
    this.samples.set(name, list);
  }

  gauge(name: string, read: () => number): void {
    this.gauges.set(name, read);
  }

  quantile(name: string, q: number): number | undefined {
    const list = [...(this.samples.get(name) ?? [])].sort((a, b) => a - b);
    if (list.length === 0) return undefined;
    return list[Math.min(list.length - 1, Math.floor(q * list.length))];
  }

  snapshot(): { counters: Record<string, number>; gauges: Record<string, number>; quantiles: Record<string, number> } {
    const gauges: Record<string, number> = {};
    for (const [name, read] of this.gauges) gauges[name] = read();
    const quantiles: Record<string, number> = {};
    for (const name of this.samples.keys()) {
      for (const q of [0.5, 0.99]) {
        const v = this.quantile(name, q);
        if (v !== undefined) quantiles[`${name}{quantile="${q}"}`] = v;
      }
    }
    return { counters: Object.fromEntries(this.counts), gauges, quantiles };
  }

  /** Prometheus text exposition format 0.0.4. */
  prometheus(): string {
    const snap = this.snapshot();
    const lines: string[] = [];
    for (const [key, v] of Object.entries(snap.counters)) lines.push(`${key} ${v}`);
    for (const [key, v] of Object.entries(snap.gauges)) lines.push(`${key} ${v}`);
    for (const [key, v] of Object.entries(snap.quantiles)) lines.push(`${key} ${v}`);
    return `${lines.sort().join('\n')}\n`;
  }
}

function keyOf(name: string, labels: Record<string, string>): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return name;
  return `${name}{${entries.map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`).join(',')}}`;
}
