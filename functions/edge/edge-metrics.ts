/**
 * The edge's metrics for /metrics, the console and its time series, through prom-client. The
 * catalogue's metrics (shared/observability/metrics.ts) keep their CloudWatch words in snake_case
 * (`prometheusName`); the rest are the edge's own (transactions, shedding, MSRP sessions).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type CounterConfiguration } from 'prom-client';
import { methodLabel, prometheusName, statusClass } from '#shared/observability/metrics.ts';

/** From 1 ms to a day: delivery latency includes the time the user was away. */
const DELIVERY_BUCKETS_MS = [10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 60_000, 600_000, 3_600_000, 86_400_000];
/** Time from a request's arrival to its final response at the edge. */
const RESPONSE_BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000];

/** Numbers read at scrape time (the store and the queues are asked at most every few seconds). */
export interface StateSources {
  msrpSessions?: () => number;
  transactions?: () => { server: number; client: number };
  /** Pending messages, users with pending messages, active subscriptions, store bytes. */
  store?: () => Promise<{ pending: number; users: number; subscriptions: number; bytes: number }>;
  /** Visible messages per queue name. */
  queues?: () => Promise<Record<string, number>>;
}

/**
 * Counts by one or two label values, kept as they happen and handed to a prom-client counter when
 * it is read (a scrape, the console's sample): prom-client checks and hashes the labels at every
 * inc(), which on the SIP path (a few counts per message) cost more than the counting itself.
 */
class Tally {
  private readonly counts = new Map<
    string,
    Map<string, { labels: Record<string, string>; n: number; given: number }>
  >();

  constructor(private readonly labelNames: readonly [string] | readonly [string, string]) {}

  add(first: string, second = ''): void {
    let inner = this.counts.get(first);
    if (!inner) this.counts.set(first, (inner = new Map()));
    const entry = inner.get(second);
    if (entry) {
      entry.n++;
      return;
    }
    const [a, b] = this.labelNames;
    inner.set(second, { labels: b === undefined ? { [a]: first } : { [a]: first, [b]: second }, n: 1, given: 0 });
  }

  /** Give `counter` what was counted since the last time. */
  handTo(counter: Counter<string>): void {
    for (const inner of this.counts.values()) {
      for (const entry of inner.values()) {
        if (entry.n === entry.given) continue;
        counter.inc(entry.labels, entry.n - entry.given);
        entry.given = entry.n;
      }
    }
  }
}

export class EdgeMetrics {
  readonly registry = new Registry();
  private readonly r = [this.registry];
  private readonly requestTally = new Tally(['method']);
  private readonly responseTally = new Tally(['method', 'status_class']);
  private readonly sentTally = new Tally(['method', 'status_class']);

  readonly sipRequests = tallied(this.requestTally, {
    name: prometheusName('SipRequests'),
    help: 'SIP requests received, by method',
    labelNames: ['method'] as const,
    registers: this.r,
  });
  readonly sipResponses = tallied(this.responseTally, {
    name: prometheusName('SipResponses'),
    help: 'SIP responses sent to received requests, by method and status class',
    labelNames: ['method', 'status_class'] as const,
    registers: this.r,
  });
  readonly sipShed = new Counter({
    name: 'sip_shed_total',
    help: 'Requests answered 503 + Retry-After for load, by reason: in-flight (MAX_IN_FLIGHT handler calls), queue-delay (a UDP request waited past T1/2 to be handled), loop-lag (the event loop later than MAX_LOOP_LAG_MS), transactions (MAX_TRANSACTIONS held; answered without one)',
    labelNames: ['reason'] as const,
    registers: this.r,
  });
  readonly sipResponseTime = new Histogram({
    name: 'sip_response_time_ms',
    help: 'From a request reaching the edge to its final response, in milliseconds',
    labelNames: ['method'] as const,
    buckets: RESPONSE_BUCKETS_MS,
    registers: this.r,
  });
  readonly sipRequestsSent = tallied(this.sentTally, {
    name: 'sip_requests_sent_total',
    help: 'In-dialog requests the edge sent (NOTIFY, BYE), by method and the status class of the answer',
    labelNames: ['method', 'status_class'] as const,
    registers: this.r,
  });
  readonly deposits = new Counter({
    name: prometheusName('Deposits'),
    help: 'New deferred messages stored',
    registers: this.r,
  });
  readonly retrievals = new Counter({
    name: prometheusName('Retrievals'),
    help: 'Messages delivered over MSRP and answered 200',
    registers: this.r,
  });
  readonly deletions = new Counter({
    name: prometheusName('Deletions'),
    help: "Messages removed by a user's delete action or an operator purge",
    labelNames: ['by'] as const,
    registers: this.r,
  });
  readonly expiries = new Counter({
    name: prometheusName('Expiries'),
    help: 'Messages removed at the end of their retention',
    registers: this.r,
  });
  readonly deliveryLatency = new Histogram({
    name: prometheusName('DeliveryLatency'),
    help: "From a message's arrival in the store to the client's MSRP 200, in milliseconds",
    buckets: DELIVERY_BUCKETS_MS,
    registers: this.r,
  });
  readonly deliveryFailures = new Counter({
    name: prometheusName('DeliveryFailures'),
    help: 'MSRP deliveries that ended without a 200 (the message stays deferred), by status',
    labelNames: ['status'] as const,
    registers: this.r,
  });
  readonly notifySent = new Counter({
    name: prometheusName('NotifySent'),
    help: 'NOTIFYs answered 2xx',
    registers: this.r,
  });
  readonly notifyFailed = new Counter({
    name: prometheusName('NotifyFailed'),
    help: 'NOTIFYs answered non-2xx or not answered',
    registers: this.r,
  });
  readonly subscriptionsEnded = new Counter({
    name: 'subscriptions_ended_total',
    help: 'Subscriptions ended by a failed NOTIFY, by the status that ended them',
    labelNames: ['cause'] as const,
    registers: this.r,
  });
  readonly imdnFailureReports = new Counter({
    name: 'imdn_failure_reports_total',
    help: 'IMDN failure reports sent, by the status of the answer (0: no route)',
    labelNames: ['status'] as const,
    registers: this.r,
  });

  private cached?: { at: number; value: Promise<Awaited<ReturnType<NonNullable<StateSources['store']>>>> };

  constructor(private sources: StateSources = {}) {
    collectDefaultMetrics({ register: this.registry });
    // Gauges read at scrape time; `collect` runs with the gauge as `this`, so the edge's side is reached through these.
    const src = (): StateSources => this.sources;
    const storeState = () => this.storeState();
    new Gauge({
      name: 'msrp_sessions_open',
      help: 'Delivery sessions whose INVITE dialog is up',
      registers: this.r,
      collect() {
        this.set(src().msrpSessions?.() ?? 0);
      },
    });
    new Gauge({
      name: 'sip_transactions',
      help: 'SIP transactions alive, by side',
      labelNames: ['side'] as const,
      registers: this.r,
      collect() {
        const t = src().transactions?.() ?? { server: 0, client: 0 };
        this.set({ side: 'server' }, t.server);
        this.set({ side: 'client' }, t.client);
      },
    });
    const storeGauge = (
      name: string,
      help: string,
      pick: (s: { pending: number; users: number; subscriptions: number; bytes: number }) => number,
    ) =>
      new Gauge({
        name,
        help,
        registers: this.r,
        async collect() {
          const s = await storeState();
          if (s) this.set(pick(s));
        },
      });
    storeGauge(prometheusName('DeferredMessagesPending'), 'Deferred messages stored and not expired', (s) => s.pending);
    storeGauge('users_with_pending', 'Users with at least one deferred message', (s) => s.users);
    storeGauge(prometheusName('ActiveSubscriptions'), 'Active deferred-messages subscriptions', (s) => s.subscriptions);
    storeGauge('store_size_bytes', 'Bytes the local store takes on disk', (s) => s.bytes);
    new Gauge({
      name: 'queue_depth',
      help: 'Messages waiting in each queue',
      labelNames: ['queue'] as const,
      registers: this.r,
      async collect() {
        const depths =
          (await src()
            .queues?.()
            .catch(() => undefined)) ?? {};
        for (const [queue, n] of Object.entries(depths)) this.set({ queue }, n);
      },
    });
  }

  /** Sources known only once the edge is up (the SIP app, the store). */
  setSources(sources: StateSources): void {
    this.sources = { ...this.sources, ...sources };
  }

  /** The store's numbers, read at most every 2 s (a scrape and the console share one read). */
  async storeState(): Promise<{ pending: number; users: number; subscriptions: number; bytes: number } | undefined> {
    const read = this.sources.store;
    if (!read) return undefined;
    const now = Date.now();
    if (!this.cached || now - this.cached.at > 2000) this.cached = { at: now, value: read() };
    return this.cached.value.catch(() => undefined);
  }

  request(method: string): void {
    this.requestTally.add(methodLabel(method));
  }

  response(method: string, status: number, elapsedMs?: number): void {
    const cls = statusClass(status);
    if (!cls) return;
    const m = methodLabel(method);
    this.responseTally.add(m, cls);
    if (elapsedMs !== undefined && status >= 200) this.sipResponseTime.observe({ method: m }, elapsedMs);
  }

  sent(method: string, status: number): void {
    const cls = statusClass(status) ?? '6xx';
    this.sentTally.add(methodLabel(method), cls);
    if (method === 'NOTIFY') (status >= 200 && status < 300 ? this.notifySent : this.notifyFailed).inc();
  }

  /** Prometheus text exposition format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** A counter whose counts come from `tally` each time it is read. */
function tallied<T extends string>(tally: Tally, config: CounterConfiguration<T>): Counter<T> {
  return new Counter<T>({
    ...config,
    collect() {
      tally.handTo(this as Counter<string>);
    },
  });
}
