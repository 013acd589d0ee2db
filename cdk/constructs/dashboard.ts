/**
 * The operator dashboard. Every custom-metric widget is built from the catalogue in
 * shared/observability/metrics.ts (names, dimensions, the values each dimension takes), so the
 * dashboard shows exactly the series the edge and the handlers emit; the AWS metrics come from
 * the constructs themselves.
 */
import { Duration } from 'aws-cdk-lib';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import type * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { Construct } from 'constructs';
import {
  Dimension,
  METHOD_LABELS,
  MetricName,
  NAMESPACE,
  SERVICE_NAME,
  STATUS_CLASSES,
  type MetricNameValue,
} from '#shared/observability/metrics.ts';
import type { Edge } from './edge.ts';
import type { Functions } from './functions.ts';

const MINUTE = Duration.minutes(1);

/** One series of the catalogue as a CloudWatch metric. */
export function catalogueMetric(
  name: MetricNameValue,
  options: { dimensions?: Record<string, string>; statistic?: string; period?: Duration; label?: string } = {},
): cw.Metric {
  return new cw.Metric({
    namespace: NAMESPACE,
    metricName: name,
    dimensionsMap: { [Dimension.Service]: SERVICE_NAME, ...options.dimensions },
    statistic: options.statistic ?? cw.Stats.SUM,
    period: options.period ?? MINUTE,
    ...(options.label ? { label: options.label } : {}),
  });
}

/** A math-expression id: lowercase letter first, then letters and digits. */
function exprId(...parts: string[]): string {
  return parts
    .join('_')
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '');
}

export interface DashboardProps {
  edge: Edge;
  functions: Functions;
}

export class OperatorDashboard extends Construct {
  readonly dashboard: cw.Dashboard;

  constructor(scope: Construct, id: string, props: DashboardProps) {
    super(scope, id);
    const { edge, functions } = props;
    const width = 12;
    this.dashboard = new cw.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(3),
    });

    this.dashboard.addWidgets(
      new cw.TextWidget({
        width: 24,
        height: 2,
        markdown:
          '## deferred-cpm\n' +
          'Rows: SIP traffic at the edge; the deferred store (gauges, then flows per minute); delivery; ' +
          'the queue and the functions; the NLB and the edge tasks. Custom metrics are in the `' +
          NAMESPACE +
          '` namespace, dimension `service=' +
          SERVICE_NAME +
          '`.',
      }),
    );

    // SIP: requests by method, responses by status class (each class summed over methods).
    const requests = METHOD_LABELS.map((method) =>
      catalogueMetric(MetricName.SipRequests, { dimensions: { [Dimension.Method]: method }, label: method }),
    );
    const responsesByClass = STATUS_CLASSES.map((cls) => {
      const usingMetrics: Record<string, cw.IMetric> = {};
      for (const method of METHOD_LABELS) {
        usingMetrics[exprId('r', method, cls)] = catalogueMetric(MetricName.SipResponses, {
          dimensions: { [Dimension.Method]: method, [Dimension.StatusClass]: cls },
        });
      }
      return new cw.MathExpression({
        expression: `SUM([${Object.keys(usingMetrics).join(',')}])`,
        usingMetrics,
        label: cls,
        period: MINUTE,
      });
    });
    this.dashboard.addWidgets(
      new cw.GraphWidget({ title: 'SIP requests by method (per minute)', width, left: requests, stacked: true }),
      new cw.GraphWidget({
        title: 'SIP responses by status class (per minute)',
        width,
        left: responsesByClass,
        stacked: true,
      }),
    );

    // The deferred store: what is there, then what moves per minute.
    const gauge = (name: MetricNameValue) =>
      catalogueMetric(name, { statistic: cw.Stats.MAXIMUM, period: Duration.minutes(5), label: name });
    const flow = (name: MetricNameValue) => catalogueMetric(name, { label: name });
    this.dashboard.addWidgets(
      new cw.GraphWidget({
        title: 'Active subscriptions and deferred messages pending',
        width,
        left: [gauge(MetricName.DeferredMessagesPending)],
        right: [gauge(MetricName.ActiveSubscriptions)],
      }),
      new cw.GraphWidget({
        title: 'Deposits, retrievals, deletions and expiries (per minute)',
        width,
        left: [
          flow(MetricName.Deposits),
          flow(MetricName.Retrievals),
          flow(MetricName.Deletions),
          flow(MetricName.Expiries),
        ],
      }),
    );

    // Delivery: how long a message waited, what failed, what the watchers were told.
    this.dashboard.addWidgets(
      new cw.GraphWidget({
        title: 'Delivery latency, arrival to MSRP 200 (ms)',
        width: 8,
        left: [
          catalogueMetric(MetricName.DeliveryLatency, { statistic: cw.Stats.p(50), label: 'p50' }),
          catalogueMetric(MetricName.DeliveryLatency, { statistic: cw.Stats.p(99), label: 'p99' }),
        ],
      }),
      new cw.GraphWidget({
        title: 'Delivery failures and NOTIFYs (per minute)',
        width: 8,
        left: [flow(MetricName.DeliveryFailures), flow(MetricName.NotifyFailed)],
        right: [flow(MetricName.NotifySent)],
      }),
      new cw.GraphWidget({
        title: 'Delivery queue: DLQ depth, age of the oldest delivery (s)',
        width: 8,
        left: [
          functions.queues.deadLetter.metricApproximateNumberOfMessagesVisible({
            statistic: cw.Stats.MAXIMUM,
            period: MINUTE,
            label: 'DLQ depth',
          }),
        ],
        right: [
          functions.queues.delivery.metricApproximateAgeOfOldestMessage({
            statistic: cw.Stats.MAXIMUM,
            period: MINUTE,
            label: 'oldest delivery (s)',
          }),
        ],
      }),
    );

    // Functions: errors, throttles and p99 duration, one line per handler.
    const fns = Object.values(functions.handlers);
    this.dashboard.addWidgets(
      new cw.GraphWidget({
        title: 'Lambda errors and throttles',
        width: 8,
        left: fns.map((fn) => fn.metricErrors({ period: MINUTE, label: `${fn.handlerName} errors` })),
        right: fns.map((fn) => fn.metricThrottles({ period: MINUTE, label: `${fn.handlerName} throttles` })),
      }),
      new cw.GraphWidget({
        title: 'Lambda duration p99 (ms)',
        width: 8,
        left: fns.map((fn) => fn.metricDuration({ statistic: cw.Stats.p(99), period: MINUTE, label: fn.handlerName })),
      }),
      new cw.GraphWidget({
        title: 'Edge tasks: CPU and memory (%)',
        width: 8,
        left: [
          edge.service.metricCpuUtilization({ period: MINUTE, label: 'CPU' }),
          edge.service.metricMemoryUtilization({ period: MINUTE, label: 'memory' }),
        ],
        leftYAxis: { min: 0, max: 100 },
      }),
    );

    // The NLB: flows per protocol, and task health as the NLB sees it.
    const nlbMetric = (metricName: string, label: string, statistic: string = cw.Stats.SUM) =>
      new cw.Metric({
        namespace: 'AWS/NetworkELB',
        metricName,
        dimensionsMap: { LoadBalancer: edge.nlb.loadBalancerFullName },
        statistic,
        period: MINUTE,
        label,
      });
    const health = (name: string, tg: elbv2.NetworkTargetGroup) => [
      tg.metrics.healthyHostCount({ period: MINUTE, label: `${name} healthy` }),
      tg.metrics.unHealthyHostCount({ period: MINUTE, label: `${name} unhealthy` }),
    ];
    this.dashboard.addWidgets(
      new cw.GraphWidget({
        title: 'NLB flows: active (left), new per minute (right)',
        width,
        left: [
          nlbMetric('ActiveFlowCount_UDP', 'active UDP', cw.Stats.AVERAGE),
          nlbMetric('ActiveFlowCount_TCP', 'active TCP', cw.Stats.AVERAGE),
          nlbMetric('ActiveFlowCount_TLS', 'active TLS', cw.Stats.AVERAGE),
        ],
        right: [
          nlbMetric('NewFlowCount_UDP', 'new UDP'),
          nlbMetric('NewFlowCount_TCP', 'new TCP'),
          nlbMetric('NewFlowCount_TLS', 'new TLS'),
        ],
      }),
      new cw.GraphWidget({
        title: 'Edge tasks healthy and unhealthy (per target group)',
        width,
        left: [
          ...health('SIP/UDP', edge.targetGroups.sipUdp),
          ...health('SIP/TCP', edge.targetGroups.sipTcp),
          ...health('MSRP', edge.targetGroups.msrp),
        ],
      }),
    );
  }
}
