/**
 * Shared Powertools Logger and Metrics factories (the Tracer's is in ./tracer.ts, apart: the X-Ray
 * SDK it loads installs async hooks that cost the edge's hot path). Every Lambda handler and the
 * edge build their instances here, so the namespace, the `service` dimension and the log shape are
 * the same everywhere (the dashboard relies on it: see ./metrics.ts).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import type { LogLevel } from '@aws-lambda-powertools/logger/types';
import { Metrics } from '@aws-lambda-powertools/metrics';
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
