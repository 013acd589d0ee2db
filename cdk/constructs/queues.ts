/**
 * The delivery queue (architecture.md: deliveries are jobs on SQS with a dead-letter queue). One job
 * per INVITE session; a job the consumer fails `maxReceiveCount` times moves to the DLQ, where
 * an alarm sees it. The outbound queue likewise carries the IMDN failure reports that invite
 * and expire queue and the edge tasks send.
 */
import { Duration } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { OUTBOUND_QUEUE } from '#shared/adapters/sqs/queues.ts';

export interface QueuesProps {
  /** The consumer's timeout: visibility must be at least six times it (Lambda's SQS guidance). */
  consumerTimeout: Duration;
  /** Receives before a job is dead-lettered. */
  maxReceiveCount?: number;
}

export const VISIBILITY_FACTOR = 6;

export class Queues extends Construct {
  readonly delivery: sqs.Queue;
  readonly deadLetter: sqs.Queue;
  readonly outbound: sqs.Queue;
  readonly outboundDeadLetter: sqs.Queue;

  constructor(scope: Construct, id: string, props: QueuesProps) {
    super(scope, id);
    // SSE-SQS: encryption at rest with no key to pay for or to grant.
    this.deadLetter = new sqs.Queue(this, 'DeadLetters', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // The longest SQS keeps anything: time for an operator to look and redrive.
      retentionPeriod: Duration.days(14),
    });
    this.delivery = new sqs.Queue(this, 'Delivery', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(props.consumerTimeout.toSeconds() * VISIBILITY_FACTOR),
      // A session's client waits for its messages only minutes; a day covers any outage.
      retentionPeriod: Duration.days(1),
      deadLetterQueue: { queue: this.deadLetter, maxReceiveCount: props.maxReceiveCount ?? 5 },
    });

    this.outboundDeadLetter = new sqs.Queue(this, 'OutboundDeadLetters', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.seconds(OUTBOUND_QUEUE.dlqRetentionSeconds),
    });
    this.outbound = new sqs.Queue(this, 'Outbound', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // The edge's consumer: one SIP MESSAGE transaction per job, over by Timer F (32 s).
      visibilityTimeout: Duration.seconds(OUTBOUND_QUEUE.visibilityTimeoutSeconds),
      retentionPeriod: Duration.days(1),
      deadLetterQueue: { queue: this.outboundDeadLetter, maxReceiveCount: OUTBOUND_QUEUE.maxReceiveCount },
    });
  }
}
