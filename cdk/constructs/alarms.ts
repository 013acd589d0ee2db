/**
 * Alarms to one SNS topic: a delivery or an IMDN report dead-lettered, a delivery waiting too
 * long, a handler failing, an edge task the NLB finds unhealthy (or none healthy at all).
 */
import { Duration, Validations } from 'aws-cdk-lib';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import type { Edge } from './edge.ts';
import type { Functions } from './functions.ts';

/** A delivery job normally starts within seconds; five minutes in the queue means the consumer is stuck. */
export const OLDEST_DELIVERY_SECONDS = 300;
/** Errors per handler in five minutes before someone is woken. */
export const HANDLER_ERRORS_IN_5_MINUTES = 5;
/** TTL removals normally reach expire within seconds; five minutes behind means it is failing or throttled. */
export const STREAM_ITERATOR_AGE_MS = 300_000;

export interface AlarmsProps {
  edge: Edge;
  functions: Functions;
  alarmEmail?: string;
}

export class Alarms extends Construct {
  readonly topic: sns.Topic;
  readonly alarms: cw.Alarm[] = [];

  constructor(scope: Construct, id: string, props: AlarmsProps) {
    super(scope, id);
    const { edge, functions } = props;
    this.topic = new sns.Topic(this, 'Topic', { displayName: 'deferred-cpm alarms', enforceSSL: true });
    Validations.of(this.topic).acknowledge({
      id: 'AwsSolutions-SNS2',
      reason:
        'Alarm notifications carry alarm names, descriptions and metric values, no user data. CloudWatch cannot publish to a topic encrypted with the AWS-managed SNS key; a customer managed key would add $1 a month plus requests and a key policy for CloudWatch, for nothing secret.',
    });
    if (props.alarmEmail) this.topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));

    const minute = Duration.minutes(1);
    this.add(
      'DlqNotEmpty',
      'A delivery job was dead-lettered: its messages stay deferred until redriven.',
      functions.queues.deadLetter.metricApproximateNumberOfMessagesVisible({
        statistic: cw.Stats.MAXIMUM,
        period: minute,
      }),
      {
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      },
    );
    this.add(
      'OutboundDlqNotEmpty',
      'An IMDN failure report was dead-lettered: its sender was not told (check OUTBOUND_PROXY and the edge logs).',
      functions.queues.outboundDeadLetter.metricApproximateNumberOfMessagesVisible({
        statistic: cw.Stats.MAXIMUM,
        period: minute,
      }),
      {
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      },
    );
    this.add(
      'StreamFailures',
      'expire gave up on a batch of TTL removals (see the stream failure queue): their watchers and senders were not told.',
      functions.streamFailures.metricApproximateNumberOfMessagesVisible({
        statistic: cw.Stats.MAXIMUM,
        period: minute,
      }),
      {
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      },
    );
    this.add(
      'StreamIteratorAge',
      `expire reads the TTL removals more than ${STREAM_ITERATOR_AGE_MS / 1000} s behind.`,
      functions.handlers.expire.metric('IteratorAge', { statistic: cw.Stats.MAXIMUM, period: minute }),
      {
        threshold: STREAM_ITERATOR_AGE_MS,
        evaluationPeriods: 3,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      },
    );
    this.add(
      'OldestDeliveryTooOld',
      `A delivery job has waited over ${OLDEST_DELIVERY_SECONDS} s in the queue.`,
      functions.queues.delivery.metricApproximateAgeOfOldestMessage({ statistic: cw.Stats.MAXIMUM, period: minute }),
      {
        threshold: OLDEST_DELIVERY_SECONDS,
        evaluationPeriods: 3,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      },
    );
    for (const fn of Object.values(functions.handlers)) {
      this.add(
        `${fn.node.id}Errors`,
        `The ${fn.handlerName} handler failed ${HANDLER_ERRORS_IN_5_MINUTES} or more times in five minutes.`,
        fn.metricErrors({ period: Duration.minutes(5) }),
        {
          threshold: HANDLER_ERRORS_IN_5_MINUTES,
          evaluationPeriods: 1,
          comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        },
      );
    }
    for (const [name, tg] of Object.entries(edge.targetGroups)) {
      this.add(
        `Unhealthy${name[0]!.toUpperCase()}${name.slice(1)}Tasks`,
        `The NLB finds an edge task unhealthy in the ${name} target group.`,
        tg.metrics.unHealthyHostCount({ statistic: cw.Stats.MAXIMUM, period: minute }),
        {
          threshold: 1,
          evaluationPeriods: 2,
          comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        },
      );
    }
    this.add(
      'NoHealthyTask',
      'No edge task is healthy: SIP and MSRP are down.',
      edge.targetGroups.sipUdp.metrics.healthyHostCount({ statistic: cw.Stats.MINIMUM, period: minute }),
      {
        threshold: 1,
        evaluationPeriods: 2,
        comparisonOperator: cw.ComparisonOperator.LESS_THAN_THRESHOLD,
        treatMissingData: cw.TreatMissingData.BREACHING,
      },
    );
  }

  private add(
    id: string,
    description: string,
    metric: cw.IMetric,
    options: Pick<cw.CreateAlarmOptions, 'threshold' | 'evaluationPeriods' | 'comparisonOperator' | 'treatMissingData'>,
  ): void {
    const alarm = new cw.Alarm(this, id, {
      metric,
      alarmDescription: description,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
      ...options,
    });
    alarm.addAlarmAction(new actions.SnsAction(this.topic));
    alarm.addOkAction(new actions.SnsAction(this.topic));
    this.alarms.push(alarm);
  }
}
