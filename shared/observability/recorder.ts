/**
 * Typed emission of the catalogue's metrics through Powertools Metrics (EMF on stdout). A
 * metric is emitted only with exactly the dimensions ./metrics.ts gives it, so what reaches
 * CloudWatch is what the dashboard shows.
 */
import type { Metrics } from '@aws-lambda-powertools/metrics';
import {
  Dimension,
  METRICS,
  methodLabel,
  statusClass,
  type MetricNameValue,
  type MethodLabel,
  type StatusClass,
} from './metrics.ts';

/** The dimension values each metric needs (besides `service`, which Powertools adds). */
export type DimensionsOf<N extends MetricNameValue> = N extends 'SipRequests'
  ? { Method: MethodLabel }
  : N extends 'SipResponses'
    ? { Method: MethodLabel; StatusClass: StatusClass }
    : Record<string, never>;

type UnitArg = Parameters<Metrics['addMetric']>[1];

/**
 * Add one value of a metric. Dimensionless metrics join the instance's buffer (flushed by the
 * `logMetrics` middleware or `publishStoredMetrics()`); metrics with dimensions go out at once
 * as their own EMF record, because one EMF record holds one dimension set.
 */
export function emitMetric<N extends MetricNameValue>(
  metrics: Metrics,
  name: N,
  value: number,
  dimensions?: DimensionsOf<N>,
): void {
  const spec = METRICS[name];
  const unit = spec.unit as UnitArg;
  if (spec.dimensions.length === 0) {
    metrics.addMetric(name, unit, value);
    return;
  }
  const single = metrics.singleMetric();
  const given = (dimensions ?? {}) as Record<string, string>;
  for (const dim of spec.dimensions) single.addDimension(dim, given[dim] ?? '');
  single.addMetric(name, unit, value);
}

/**
 * Counts summed in memory and published on `flush()`: the edge sees every SIP message, and one
 * EMF record per message would cost more in log ingestion than the metric itself.
 */
export class MetricBatch {
  private readonly counts = new Map<string, { name: MetricNameValue; dims: Record<string, string>; value: number }>();

  constructor(private readonly metrics: Metrics) {}

  /** A SIP request received (counted under OTHER for methods outside the catalogue). */
  sipRequest(method: string): void {
    this.add('SipRequests', { [Dimension.Method]: methodLabel(method) });
  }

  /** A response sent to a received request; an out-of-range status is not counted. */
  sipResponse(method: string, status: number): void {
    const cls = statusClass(status);
    if (cls) this.add('SipResponses', { [Dimension.Method]: methodLabel(method), [Dimension.StatusClass]: cls });
  }

  /** A NOTIFY's outcome: 2xx sent, anything else (or no answer) failed. */
  notify(status: number | undefined): void {
    this.add(status !== undefined && status >= 200 && status < 300 ? 'NotifySent' : 'NotifyFailed', {});
  }

  count(name: 'Deposits' | 'Retrievals' | 'Deletions' | 'Expiries' | 'DeliveryFailures', by = 1): void {
    this.add(name, {}, by);
  }

  /** Publish and reset. Safe to call on a timer: nothing is written when nothing was counted. */
  flush(): void {
    for (const { name, dims, value } of this.counts.values()) {
      emitMetric(this.metrics, name, value, dims as DimensionsOf<typeof name>);
    }
    this.counts.clear();
    if (this.metrics.hasStoredMetrics()) this.metrics.publishStoredMetrics();
  }

  private add(name: MetricNameValue, dims: Record<string, string>, by = 1): void {
    const key = `${name}|${Object.values(dims).join('|')}`;
    const entry = this.counts.get(key);
    if (entry) entry.value += by;
    else this.counts.set(key, { name, dims, value: by });
  }
}
