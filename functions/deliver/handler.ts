/**
 * Lambda entry of `deliver` (step 14 of Figure 30): the delivery queue's consumer. Runs in the
 * VPC to reach the edge task that owns each session (its control API, the job's `edgeId`);
 * failed jobs are reported per record (ReportBatchItemFailures) and retried, then dead-lettered.
 */
import type { SQSEvent } from 'aws-lambda';
import {
  lambdaHandler,
  metricEvents,
  observability,
  serviceSettings,
  tracedAwsPorts,
} from '#shared/observability/lambda-runtime.ts';
import { buildDeliver } from './build.ts';

const obs = observability('deliver');
const ports = tracedAwsPorts(obs.tracer);

const deliver = buildDeliver({
  ports,
  events: metricEvents(obs),
  now: Date.now,
  messageLeaseSeconds: serviceSettings().policy.deliveryLeaseSeconds,
});

export const handler = lambdaHandler(obs, (event: SQSEvent) => deliver(event));
