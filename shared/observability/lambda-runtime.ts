/**
 * What every Lambda entry point shares: the Powertools trio wrapped around the handler with
 * middy (structured logs with the request id, EMF metrics flushed once per invocation, an
 * X-Ray segment), and the ports over SDK clients that X-Ray traces.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { Tracer } from '@aws-lambda-powertools/tracer';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { awsDynamoClient, awsSqsClient, documentClient } from '../adapters/clients.ts';
import { createPorts, resourcesFromEnv, type Ports } from '../adapters/wiring.ts';
import { loadConfig, serviceUri, type Config } from '../config.ts';
import { defaultPolicy, type Policy } from '../deferred/policy.ts';
import type { HandlerEvents } from '../service/handler-events.ts';
import { createLogger, createMetrics, type Component } from './powertools.ts';
import { emitMetric } from './recorder.ts';
import { createTracer } from './tracer.ts';

export interface Observability {
  logger: Logger;
  metrics: Metrics;
  tracer: Tracer;
}

export function observability(component: Exclude<Component, 'edge'>): Observability {
  return { logger: createLogger(component), metrics: createMetrics(), tracer: createTracer() };
}

/** The ports of architecture.md over traced clients; table names and queue URLs from the environment. */
export function tracedAwsPorts(tracer: Tracer, env: Record<string, string | undefined> = process.env): Ports {
  const resources = resourcesFromEnv(env);
  const dynamo = documentClient(tracer.captureAWSv3Client(awsDynamoClient()));
  const sqs = tracer.captureAWSv3Client(awsSqsClient());
  return createPorts({ dynamo, sqs, ...resources });
}

/** The service settings the handlers share with the edge, from the same variables (docs/architecture.md "Configuration"). */
export function serviceSettings(env: Record<string, string | undefined> = process.env): {
  config: Config;
  policy: Policy;
  serviceUris: string[];
} {
  const config = loadConfig(env);
  return {
    config,
    policy: defaultPolicy({
      retentionSeconds: config.retentionSeconds,
      deliveryLeaseSeconds: config.deliveryLeaseSeconds,
      maxMessagesPerUser: config.maxMessagesPerUser,
      maxBytesPerUser: config.maxBytesPerUser,
      maxStoreBytes: config.maxStoreBytes,
    }),
    serviceUris: [serviceUri(config.sipDomain)],
  };
}

/**
 * Tell every edge task holding a watcher of the changed users (the ports' EdgeChangeFeed), and
 * hand the edge a result without `changedUsers`: left to the calling task, the NOTIFYs would reach
 * only the subscriptions that task holds. Best effort: the change is stored; a watcher that misses
 * this NOTIFY gets the next one.
 */
export async function fanOutChanges<R extends { changedUsers?: string[] }>(
  result: R,
  changes: Pick<Ports['changes'], 'userChanged'>,
  logger: Logger,
): Promise<R> {
  for (const user of result.changedUsers ?? []) {
    await changes.userChanged(user).catch((err: unknown) => logger.warn('watchers not told', { user, err }));
  }
  return { ...result, changedUsers: [] };
}

/** The handler Lambda calls: `fn` inside the tracing, logging and metrics middlewares. */
export function lambdaHandler<E, R>(obs: Observability, fn: (event: E, context: Context) => Promise<R>) {
  return middy(fn)
    .use(captureLambdaHandler(obs.tracer, { captureResponse: false }))
    .use(injectLambdaContext(obs.logger))
    .use(logMetrics(obs.metrics));
}

/** The handlers' events as the catalogue's EMF metrics (shared/observability/metrics.ts). */
export function metricEvents(obs: Observability): Required<HandlerEvents> {
  return {
    deposited: () => emitMetric(obs.metrics, 'Deposits', 1),
    deleted: () => emitMetric(obs.metrics, 'Deletions', 1),
    delivered: (latencyMs) => {
      emitMetric(obs.metrics, 'Retrievals', 1);
      emitMetric(obs.metrics, 'DeliveryLatency', latencyMs);
    },
    deliveryFailed: (status) => {
      emitMetric(obs.metrics, 'DeliveryFailures', 1);
      obs.logger.warn('delivery not accepted', { status });
    },
    expired: (count) => emitMetric(obs.metrics, 'Expiries', count),
  };
}
