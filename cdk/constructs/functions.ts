/**
 * The five handlers and what triggers them:
 * - subscribe, invite, deposit: invoked by the edge (RequestResponse); deposit also has a
 *   Function URL with IAM auth for operators;
 * - deliver: the delivery queue's consumer, with per-record failure reports;
 * - expire: a one-minute schedule (sweep and gauges) and the messages table's TTL removals.
 * deliver, expire, deposit and invite call the edge's control API (deliveries, NOTIFYs, and
 * the fan-out that tells every task holding a watcher of a changed list), so they run in the VPC.
 */
import { Duration, Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { TableRole } from '#shared/adapters/dynamodb/tables.ts';
import {
  DELIVERY_QUEUE_URL_ENV,
  MESSAGES_TABLE_ENV,
  OUTBOUND_QUEUE_URL_ENV,
  SESSIONS_TABLE_ENV,
  SUBSCRIPTIONS_TABLE_ENV,
} from '#shared/adapters/wiring.ts';
import type { DeployConfig } from '../config.ts';
import { grantHandlerAccess, HANDLER_ACCESS } from './grants.ts';
import { HandlerFunction, type HandlerName } from './handler-function.ts';
import type { Network } from './network.ts';
import { Queues } from './queues.ts';

/**
 * The deliver consumer's budget. It no longer waits on MSRP (the edge task holding the connection
 * runs the SENDs and queues a report): a hand-off is the claims and one control call per part
 * (retried), a report's settling the deletes and BYE, which may wait Timer F (32 s). Kept at the
 * delivery lease (DELIVERY_LEASE, 3 min), which bounds how long a batch may run.
 */
export const DELIVER_TIMEOUT = Duration.minutes(3);
/** Synchronous handlers answer a SIP request that is waiting: fail fast. */
export const SYNC_TIMEOUT = Duration.seconds(5);
/**
 * At most this many deliver invocations at once (the SQS event source's maximum concurrency):
 * the account's concurrency stays free for subscribe, invite and deposit, which a SIP request
 * is waiting on. Each invocation runs a batch of 10 sessions side by side.
 */
export const DELIVER_MAX_CONCURRENCY = 20;
/** Attempts on a batch of TTL removals before its description goes to the failure queue. */
export const STREAM_RETRY_ATTEMPTS = 3;

export interface FunctionsProps {
  config: DeployConfig;
  network: Network;
  tables: Record<TableRole, dynamodb.Table>;
  /** Where clients reach the MSRP listener (advertised in SDP answers). */
  advertise: { host: string; msrpPort: number; msrpsPort?: number };
  /** CONTROL_TOKEN for the edges' control API. */
  controlToken: secretsmanager.ISecret;
}

export class Functions extends Construct {
  readonly handlers: Record<HandlerName, HandlerFunction>;
  readonly queues: Queues;
  readonly depositUrl: lambda.FunctionUrl;
  readonly sweepSchedule: events.Rule;
  /** Where the TTL stream's event source mapping records batches it gave up on. */
  readonly streamFailures: sqs.Queue;

  constructor(scope: Construct, id: string, props: FunctionsProps) {
    super(scope, id);
    const { config, network, tables } = props;
    this.queues = new Queues(this, 'Queues', { consumerTimeout: DELIVER_TIMEOUT });

    const environment = {
      [MESSAGES_TABLE_ENV]: tables.messages.tableName,
      [SUBSCRIPTIONS_TABLE_ENV]: tables.subscriptions.tableName,
      [SESSIONS_TABLE_ENV]: tables.sessions.tableName,
      [DELIVERY_QUEUE_URL_ENV]: this.queues.delivery.queueUrl,
      [OUTBOUND_QUEUE_URL_ENV]: this.queues.outbound.queueUrl,
      SIP_DOMAIN: config.sipDomain,
      RETENTION: config.retention,
      SIP_ADVERTISE: props.advertise.host,
      MSRP_PORT: String(props.advertise.msrpPort),
      SIP_ADVERTISE_MSRP: `${props.advertise.host}:${props.advertise.msrpPort}`,
      // A CloudFormation dynamic reference, resolved at deploy: the template never holds the token.
      CONTROL_TOKEN: props.controlToken.secretValue.unsafeUnwrap(),
      ...(props.advertise.msrpsPort !== undefined
        ? { SIP_ADVERTISE_MSRPS: `${props.advertise.host}:${props.advertise.msrpsPort}` }
        : {}),
    };
    const inVpc = { vpc: network.vpc, subnets: network.handlerSubnets, securityGroup: network.edgeClients };
    // `tracing` context. `sampled` (default): only the invocations the edge marks sampled
    // (TRACE_SAMPLE_RATE, cdk/constructs/edge.ts; SQS carries the mark on to deliver), plus
    // expire's own; `active`: Lambda's sampling, which at low volume traces nearly every call.
    const tracing =
      config.tracing === 'off'
        ? lambda.Tracing.DISABLED
        : config.tracing === 'active'
          ? lambda.Tracing.ACTIVE
          : lambda.Tracing.PASS_THROUGH;
    const make = (name: HandlerName, timeout: Duration, memorySize: number, vpc?: typeof inVpc) => {
      const fn = new HandlerFunction(this, name[0]!.toUpperCase() + name.slice(1), {
        name,
        timeout,
        memorySize,
        environment,
        // expire starts its own traces (schedule, stream): one a minute is cheap.
        tracing: name === 'expire' && config.tracing !== 'off' ? lambda.Tracing.ACTIVE : tracing,
        logRetentionDays: config.logRetentionDays,
        ...(vpc ? { vpc } : {}),
      });
      grantHandlerAccess(fn.role!, HANDLER_ACCESS[name], tables, this.queues);
      return fn;
    };
    this.handlers = {
      subscribe: make('subscribe', SYNC_TIMEOUT, 512),
      // In the VPC: a `delete` changes the list, and every task holding a watcher is told.
      invite: make('invite', SYNC_TIMEOUT, 512, inVpc),
      deposit: make('deposit', SYNC_TIMEOUT, 512, inVpc),
      // Mostly waiting on the network: memory buys nothing there.
      deliver: make('deliver', DELIVER_TIMEOUT, 256, inVpc),
      expire: make('expire', Duration.minutes(1), 256, inVpc),
    };

    this.handlers.deliver.addEventSource(
      new sources.SqsEventSource(this.queues.delivery, {
        // The consumer runs a batch's sessions side by side, so their waits for clients share
        // one invocation's billed time; each record still fails or succeeds on its own.
        batchSize: 10,
        reportBatchItemFailures: true,
        maxConcurrency: DELIVER_MAX_CONCURRENCY,
      }),
    );

    // Batches of TTL removals the mapping gave up on: their users' watchers missed a NOTIFY
    // and their senders an IMDN; the sweep's next pass and an alarm cover them.
    this.streamFailures = new sqs.Queue(this, 'StreamFailures', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.streamFailures).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        "It is the stream mapping's on-failure destination (a dead-letter queue that nag cannot see as one): it keeps 14 days, alarmed when not empty.",
    });

    this.handlers.expire.addEventSource(
      new sources.DynamoEventSource(tables.messages, {
        startingPosition: lambda.StartingPosition.LATEST,
        batchSize: 100,
        maxBatchingWindow: Duration.seconds(5),
        retryAttempts: STREAM_RETRY_ATTEMPTS,
        bisectBatchOnError: true,
        onFailure: new sources.SqsDlq(this.streamFailures),
        reportBatchItemFailures: true,
        filters: [
          // Removals of messages: a delivered or deleted message becomes a tombstone (an update,
          // no `arrival`), so every removal of an item with `arrival` is an expiry, by TTL or by
          // a deposit taking the key of one TTL has not reached yet. Summaries carry no `arrival`.
          lambda.FilterCriteria.filter({
            eventName: lambda.FilterRule.isEqual('REMOVE'),
            dynamodb: { OldImage: { arrival: { S: lambda.FilterRule.exists() } } },
          }),
        ],
      }),
    );
    this.sweepSchedule = new events.Rule(this, 'SweepEveryMinute', {
      schedule: events.Schedule.rate(Duration.minutes(1)),
      targets: [new targets.LambdaFunction(this.handlers.expire, { retryAttempts: 0 })],
    });

    this.depositUrl = this.handlers.deposit.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.AWS_IAM });
  }
}
