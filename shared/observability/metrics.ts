/**
 * The service's metric catalogue: one place that names every CloudWatch metric the edge and the
 * handlers emit (as EMF, through Powertools Metrics) and the dimensions each carries. The CDK
 * dashboard and alarms are built from these constants, so a widget cannot name a metric the
 * code does not emit.
 *
 * Dependency-free on purpose: the CDK app imports it without pulling in Powertools.
 */

/** CloudWatch namespace of every custom metric. */
export const NAMESPACE = 'DeferredCpm';

/**
 * Powertools Metrics adds `service` as a default dimension to every metric; all emitters use
 * this one value, so the dashboard addresses each metric by a single dimension set.
 */
export const SERVICE_NAME = 'deferred-cpm';

export const Dimension = {
  /** Added by Powertools to every metric (`serviceName`). */
  Service: 'service',
  /** SIP method of the request (RFC 3261 §7.1), one of SIP_METHODS. */
  Method: 'Method',
  /** Status class of a final or provisional response: 1xx..6xx (RFC 3261 §7.2). */
  StatusClass: 'StatusClass',
} as const;
export type DimensionName = (typeof Dimension)[keyof typeof Dimension];

/**
 * Methods counted under their own name; any other method is counted as OTHER_METHOD so the
 * number of metrics (and their cost) stays bounded whatever a peer sends.
 */
export const SIP_METHODS = ['SUBSCRIBE', 'INVITE', 'MESSAGE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'NOTIFY'] as const;
export const OTHER_METHOD = 'OTHER';
export type MethodLabel = (typeof SIP_METHODS)[number] | typeof OTHER_METHOD;
export const METHOD_LABELS: readonly MethodLabel[] = [...SIP_METHODS, OTHER_METHOD];

export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', '6xx'] as const;
export type StatusClass = (typeof STATUS_CLASSES)[number];

export const MetricName = {
  /** SIP requests received by the edge, by method. */
  SipRequests: 'SipRequests',
  /** SIP responses the edge sent to requests it received, by method and status class. */
  SipResponses: 'SipResponses',
  /** Subscriptions stored (gauge, sampled every minute by the scheduled expire run). */
  ActiveSubscriptions: 'ActiveSubscriptions',
  /** Deferred messages stored (gauge, sampled every minute by the scheduled expire run). */
  DeferredMessagesPending: 'DeferredMessagesPending',
  /** New deferred messages stored (a duplicate deposit is not counted). */
  Deposits: 'Deposits',
  /** Messages that left the store by retrieval: delivered over MSRP and answered 200. */
  Retrievals: 'Retrievals',
  /** Messages removed by a `delete` action. */
  Deletions: 'Deletions',
  /** Messages removed by retention (TTL or sweep). */
  Expiries: 'Expiries',
  /** From a message's arrival in the store to the client's MSRP 200. */
  DeliveryLatency: 'DeliveryLatency',
  /** MSRP deliveries that ended without a 200 (the message stays deferred). */
  DeliveryFailures: 'DeliveryFailures',
  /** NOTIFYs answered 2xx. */
  NotifySent: 'NotifySent',
  /** NOTIFYs answered non-2xx or timed out. */
  NotifyFailed: 'NotifyFailed',
} as const;
export type MetricNameValue = (typeof MetricName)[keyof typeof MetricName];

/** The units used here; the strings are Powertools' `MetricUnit` values. */
export type Unit = 'Count' | 'Milliseconds';

export interface MetricSpec {
  unit: Unit;
  /** Dimensions besides `service`, in the order they are emitted. */
  dimensions: readonly DimensionName[];
  /** Who emits it. */
  emitter: 'edge' | 'subscribe' | 'invite' | 'deposit' | 'deliver' | 'expire';
  /** Dashboard statistic: counters are summed, gauges averaged, latency read as percentiles. */
  kind: 'counter' | 'gauge' | 'latency';
}

export const METRICS: Readonly<Record<MetricNameValue, MetricSpec>> = {
  SipRequests: { unit: 'Count', dimensions: [Dimension.Method], emitter: 'edge', kind: 'counter' },
  SipResponses: {
    unit: 'Count',
    dimensions: [Dimension.Method, Dimension.StatusClass],
    emitter: 'edge',
    kind: 'counter',
  },
  ActiveSubscriptions: { unit: 'Count', dimensions: [], emitter: 'expire', kind: 'gauge' },
  DeferredMessagesPending: { unit: 'Count', dimensions: [], emitter: 'expire', kind: 'gauge' },
  Deposits: { unit: 'Count', dimensions: [], emitter: 'deposit', kind: 'counter' },
  Retrievals: { unit: 'Count', dimensions: [], emitter: 'deliver', kind: 'counter' },
  Deletions: { unit: 'Count', dimensions: [], emitter: 'invite', kind: 'counter' },
  Expiries: { unit: 'Count', dimensions: [], emitter: 'expire', kind: 'counter' },
  DeliveryLatency: { unit: 'Milliseconds', dimensions: [], emitter: 'deliver', kind: 'latency' },
  DeliveryFailures: { unit: 'Count', dimensions: [], emitter: 'deliver', kind: 'counter' },
  NotifySent: { unit: 'Count', dimensions: [], emitter: 'edge', kind: 'counter' },
  NotifyFailed: { unit: 'Count', dimensions: [], emitter: 'edge', kind: 'counter' },
};

/** The label a method is counted under. */
export function methodLabel(method: string): MethodLabel {
  const upper = method.toUpperCase();
  return (SIP_METHODS as readonly string[]).includes(upper) ? (upper as MethodLabel) : OTHER_METHOD;
}

/** RFC 3261 §21: the first digit of the status code names its class. */
export function statusClass(status: number): StatusClass | undefined {
  if (!Number.isInteger(status) || status < 100 || status > 699) return undefined;
  return `${Math.floor(status / 100)}xx` as StatusClass;
}

/** One concrete metric: a name with every dimension valued (what CloudWatch stores as one series). */
export interface MetricSeries {
  name: MetricNameValue;
  dimensions: Readonly<Record<string, string>>;
}

/**
 * Every series the code can emit: each metric with each value its dimensions can take. This is
 * the set the dashboard must show, no more and no less.
 */
export function allSeries(): MetricSeries[] {
  const out: MetricSeries[] = [];
  for (const [name, spec] of Object.entries(METRICS) as [MetricNameValue, MetricSpec][]) {
    let combos: Record<string, string>[] = [{ [Dimension.Service]: SERVICE_NAME }];
    for (const dim of spec.dimensions) {
      const values: readonly string[] = dim === Dimension.Method ? METHOD_LABELS : STATUS_CLASSES;
      combos = combos.flatMap((c) => values.map((v) => ({ ...c, [dim]: v })));
    }
    for (const dimensions of combos) out.push({ name, dimensions });
  }
  return out;
}

/** A stable key for a series, for set comparisons. */
export function seriesKey(series: MetricSeries): string {
  const dims = Object.keys(series.dimensions)
    .sort()
    .map((k) => `${k}=${series.dimensions[k]}`)
    .join(',');
  return `${series.name}{${dims}}`;
}

/**
 * The Prometheus name of a catalogue metric (the edge's /metrics): the same words in snake_case,
 * counters ending in `_total`, latencies in `_ms` (the CloudWatch unit), gauges as they are.
 */
export function prometheusName(name: MetricNameValue): string {
  const snake = name.replace(/[A-Z]/g, (c, i: number) => (i === 0 ? '' : '_') + c.toLowerCase());
  const kind = METRICS[name].kind;
  return kind === 'counter' ? `${snake}_total` : kind === 'latency' ? `${snake}_ms` : snake;
}
