/**
 * The last hour of the edge's metrics for the console: every `intervalMs` the counters' growth
 * since the previous sample and the response-time percentiles of that interval (from the
 * histograms' bucket counts), kept in a ring of one hour.
 */
import type { Counter, Histogram } from 'prom-client';
import { METHOD_LABELS, STATUS_CLASSES } from '#shared/observability/metrics.ts';
import type { EdgeMetrics } from './edge-metrics.ts';

export interface SeriesPoint {
  /** Epoch milliseconds at the end of the interval. */
  t: number;
  /** Counts in the interval, and percentiles in milliseconds (`*_p50_ms`, …), by series name. */
  v: Record<string, number>;
}

type Values = { value: number; labels: Record<string, string | number>; metricName?: string }[];

async function valuesOf(metric: Counter<string> | Histogram<string>): Promise<Values> {
  return (await metric.get()).values as Values;
}

/** Sum of a counter's values whose labels match `match`. */
function sum(values: Values, match: Record<string, string> = {}): number {
  let total = 0;
  for (const v of values) {
    if (Object.entries(match).every(([k, want]) => String(v.labels[k]) === want)) total += v.value;
  }
  return total;
}

/** Cumulative bucket counts of a histogram (all label sets added), by upper bound. */
function buckets(values: Values): Map<number, number> {
  const out = new Map<number, number>();
  for (const v of values) {
    if (!v.metricName?.endsWith('_bucket')) continue;
    const le = v.labels.le === '+Inf' ? Infinity : Number(v.labels.le);
    out.set(le, (out.get(le) ?? 0) + v.value);
  }
  return out;
}

/**
 * The q-quantile of the observations between two cumulative bucket snapshots, interpolated
 * linearly inside its bucket (as Prometheus' histogram_quantile does); undefined when none.
 */
export function quantileBetween(
  before: Map<number, number>,
  after: Map<number, number>,
  q: number,
): number | undefined {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const counts = bounds.map((b) => (after.get(b) ?? 0) - (before.get(b) ?? 0));
  const total = counts[counts.length - 1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  for (let i = 0; i < bounds.length; i++) {
    if (counts[i]! >= rank) {
      const upper = bounds[i]!;
      const lower = i === 0 ? 0 : bounds[i - 1]!;
      if (upper === Infinity) return lower;
      const below = i === 0 ? 0 : counts[i - 1]!;
      const inBucket = counts[i]! - below;
      return inBucket <= 0 ? upper : lower + ((upper - lower) * (rank - below)) / inBucket;
    }
  }
  return bounds[bounds.length - 2];
}

interface Raw {
  counts: Record<string, number>;
  response: Map<number, number>;
  delivery: Map<number, number>;
}

export class TimeSeries {
  private readonly points: SeriesPoint[] = [];
  private last?: Raw;
  private timer?: NodeJS.Timeout;
  private readonly capacity: number;

  constructor(
    private readonly metrics: EdgeMetrics,
    readonly intervalMs = 10_000,
  ) {
    this.capacity = Math.ceil(3_600_000 / intervalMs);
  }

  start(): void {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The last hour, oldest first. */
  get(): { intervalMs: number; points: SeriesPoint[] } {
    return { intervalMs: this.intervalMs, points: [...this.points] };
  }

  async sample(): Promise<void> {
    const raw = await this.read();
    const prev = this.last;
    this.last = raw;
    if (!prev) return;
    const v: Record<string, number> = {};
    for (const [k, n] of Object.entries(raw.counts)) v[k] = Math.max(0, n - (prev.counts[k] ?? 0));
    for (const q of [0.5, 0.95, 0.99]) {
      const p = `p${Math.round(q * 100)}`;
      const r = quantileBetween(prev.response, raw.response, q);
      if (r !== undefined) v[`sip_response_${p}_ms`] = Math.round(r * 10) / 10;
      const d = quantileBetween(prev.delivery, raw.delivery, q);
      if (d !== undefined) v[`delivery_latency_${p}_ms`] = Math.round(d);
    }
    this.points.push({ t: Date.now(), v });
    if (this.points.length > this.capacity) this.points.shift();
  }

  private async read(): Promise<Raw> {
    const m = this.metrics;
    const [requests, responses, deposits, retrievals, deletions, expiries, sent, failed, shed, resp, deliv] =
      await Promise.all([
        valuesOf(m.sipRequests),
        valuesOf(m.sipResponses),
        valuesOf(m.deposits),
        valuesOf(m.retrievals),
        valuesOf(m.deletions),
        valuesOf(m.expiries),
        valuesOf(m.notifySent),
        valuesOf(m.notifyFailed),
        valuesOf(m.sipShed),
        valuesOf(m.sipResponseTime),
        valuesOf(m.deliveryLatency),
      ]);
    const counts: Record<string, number> = {
      deposits: sum(deposits),
      deliveries: sum(retrievals),
      deletions: sum(deletions),
      expiries: sum(expiries),
      notify_sent: sum(sent),
      notify_failed: sum(failed),
      sip_shed_503: sum(shed),
    };
    for (const method of METHOD_LABELS) counts[`sip_requests_${method}`] = sum(requests, { method });
    for (const cls of STATUS_CLASSES) counts[`sip_responses_${cls}`] = sum(responses, { status_class: cls });
    return { counts, response: buckets(resp), delivery: buckets(deliv) };
  }
}
