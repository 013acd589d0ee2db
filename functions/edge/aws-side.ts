/**
 * The edge's handler side in AWS (HANDLER_MODE=lambda): the deployed functions decide, reached
 * through Lambda; the IMDN reports come off the outbound SQS queue. edge.ts imports this module
 * only in that mode, so the local default never loads the AWS SDK.
 */
import '#shared/adapters/aws-sdk-quiet.ts';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { awsSqsClient, LONG_POLL_TIMEOUTS } from '#shared/adapters/clients.ts';
import { LambdaInvoker } from '#shared/adapters/lambda-invoker.ts';
import { SqsDeliveryQueue } from '#shared/adapters/sqs/delivery-queue.ts';
import { SqsPoller, type SqsBatchHandler } from '#shared/adapters/sqs/poller.ts';
import { ConfigError, type Config } from '#shared/config.ts';
import { MetricBatch } from '#shared/observability/recorder.ts';
import { createMetrics } from '#shared/observability/powertools.ts';
import type { HandlerSide, LogFn } from './edge.ts';

/** EMF metrics for CloudWatch: counted by the edge, published once a minute. */
export function edgeMetrics(): MetricBatch {
  return new MetricBatch(createMetrics());
}

export function startAwsSide(
  config: Config,
  log: LogFn,
  stops: (() => Promise<void> | void)[],
): HandlerSide & { functions: NonNullable<Config['functions']> } {
  if (!config.functions) throw new ConfigError('HANDLER_MODE', 'lambda mode needs the function names');
  if (!config.outboundQueueUrl) throw new ConfigError('OUTBOUND_QUEUE_URL', 'required with HANDLER_MODE=lambda');
  if (!config.deliveryQueueUrl) throw new ConfigError('DELIVERY_QUEUE_URL', 'required with HANDLER_MODE=lambda');
  const outboundQueueUrl = config.outboundQueueUrl;
  // Region and credentials from the task role, as the Lambda client's.
  // The outbound queue is long-polled: the request timeout covers the 20 s wait.
  const sqs = awsSqsClient(LONG_POLL_TIMEOUTS);
  stops.push(() => sqs.destroy());
  const invoker = new LambdaInvoker({
    functions: config.functions,
    timeoutMs: config.handlerTimeoutMs,
    traceSampleRate: config.traceSampleRate,
  });
  const queueDepths = async (): Promise<Record<string, number>> => {
    const out = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: outboundQueueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }),
    );
    return { outbound: Number(out.Attributes?.ApproximateNumberOfMessages ?? 0) };
  };
  return {
    functions: config.functions,
    invoker,
    queueDepths,
    // Readiness: the outbound queue answers and each function may be invoked (a DryRun runs nothing).
    checks: [
      { name: 'queues', run: async () => JSON.stringify(await queueDepths()) },
      {
        name: 'handlers',
        run: async () => {
          const r = await invoker.reachable();
          if (!r.ok) throw new Error(JSON.stringify(r.detail));
          return undefined;
        },
      },
    ],
    // The MSRP outcome of each delivery hand-off, for the deliver function to settle.
    deliveryReports: new SqsDeliveryQueue(sqs, config.deliveryQueueUrl),
    consumeOutbound: (handler: SqsBatchHandler) => {
      const poller = new SqsPoller({
        client: sqs,
        queueUrl: outboundQueueUrl,
        handler,
        // A batch's reports go out side by side; two loops keep the idle long polls cheap.
        concurrency: 2,
        onError: (err) => log('warn', 'outbound queue poll failed', { error: String(err) }),
      });
      poller.start();
      return poller;
    },
  };
}
