/**
 * Lambda entry of `deliver` (step 14 of Figure 30): the delivery queue's consumer. Runs in the
 * VPC to reach the edge task that owns each session (its control API, the job's `edgeId`);
 * failed jobs are reported per record (ReportBatchItemFailures) and retried, then dead-lettered.
 */
import type { SQSEvent } from 'aws-lambda';
import { lambdaHandler, observability, serviceSettings, tracedAwsPorts } from '#shared/observability/lambda-runtime.ts';
import { emitMetric } from '#shared/observability/recorder.ts';
import { makeHandler } from './logic.ts';

const obs = observability('deliver');
const ports = tracedAwsPorts(obs.tracer);

const deliver = makeHandler({
  messages: ports.messages,
  sessions: ports.sessions,
  edge: ports.edge,
  changes: ports.changes,
  now: Date.now,
  messageLeaseSeconds: serviceSettings().policy.deliveryLeaseSeconds,
  onDelivered: (latencyMs) => {
    emitMetric(obs.metrics, 'Retrievals', 1);
    emitMetric(obs.metrics, 'DeliveryLatency', latencyMs);
  },
  onFailed: (status) => {
    emitMetric(obs.metrics, 'DeliveryFailures', 1);
    obs.logger.warn('delivery not accepted', { status });
  },
});

export const handler = lambdaHandler(obs, (event: SQSEvent) => deliver(event));
