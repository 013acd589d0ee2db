/**
 * Shared Powertools Logger, Metrics and Tracer factories. Every Lambda handler and the edge
 * build their instances here, so the namespace, the `service` dimension and the log shape are
 * the same everywhere (the dashboard relies on it: see ./metrics.ts).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import type { LogLevel } from '@aws-lambda-powertools/logger/types';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { NAMESPACE, SERVICE_NAME } from './metrics.ts';

/** Which deployable unit is logging: `subscribe`, `invite`, ..., `edge`. */
export type Component = 'edge' | 'subscribe' | 'invite' | 'deposit' | 'deliver' | 'expire';

export function createLogger(component: Component, options: { logLevel?: LogLevel } = {}): Logger {
  return new Logger({
    serviceName: SERVICE_NAME,
    ...(options.logLevel ? { logLevel: options.logLevel } : {}),
    persistentKeys: { component },
  });
}

/**
 * Metrics in the service's namespace with `service` as the only default dimension. Function
 * names are deliberately not a dimension: the dashboard sums a metric across emitters.
 */
export function createMetrics(): Metrics {
  return new Metrics({ namespace: NAMESPACE, serviceName: SERVICE_NAME });
}

/**
 * X-Ray tracing through Powertools. Off outside Lambda unless asked for: the edge on Fargate
 * has no X-Ray daemon by default, and the local default none at all.
 */
export function createTracer(options: { enabled?: boolean } = {}): Tracer {
  return new Tracer({ serviceName: SERVICE_NAME, ...(options.enabled === undefined ? {} : { enabled: options.enabled }) });
}
