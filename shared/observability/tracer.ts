/**
 * X-Ray tracing through Powertools, for the Lambda handlers only: loading it brings in the X-Ray
 * SDK and its async-hook context tracking, which the edge does not pay for.
 */
import { Tracer } from '@aws-lambda-powertools/tracer';
import { SERVICE_NAME } from './metrics.ts';

/** Off outside Lambda unless asked for: the edge on Fargate has no X-Ray daemon, the local default none. */
export function createTracer(options: { enabled?: boolean } = {}): Tracer {
  return new Tracer({
    serviceName: SERVICE_NAME,
    ...(options.enabled === undefined ? {} : { enabled: options.enabled }),
  });
}
