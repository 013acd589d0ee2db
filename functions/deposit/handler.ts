/**
 * Lambda entry of `deposit` (protocol.md "Deposit"), reached two ways:
 * - the edge invokes it synchronously with a SIP MESSAGE (RFC 3428);
 * - operators and other CPM functions POST JSON to its Function URL (IAM auth, SigV4); the
 *   watchers are told, both ways, through the edges' control API, which is why it runs in the VPC.
 */
import type { LambdaFunctionURLEvent, LambdaFunctionURLResult } from 'aws-lambda';
import type { SipHandlerResult, SipRequestEvent } from '#shared/events.ts';
import {
  fanOutChanges,
  lambdaHandler,
  metricEvents,
  observability,
  serviceSettings,
  tracedAwsPorts,
} from '#shared/observability/lambda-runtime.ts';
import { buildDeposit } from './build.ts';

const obs = observability('deposit');
const ports = tracedAwsPorts(obs.tracer);
const { config, policy } = serviceSettings();

const deposit = buildDeposit({
  ports,
  policy,
  warnAgent: config.sipDomain,
  servedDomain: config.sipDomain,
  events: metricEvents(obs),
  now: Date.now,
});

const JSON_HEADERS = { 'content-type': 'application/json' };

function isHttpEvent(event: unknown): event is LambdaFunctionURLEvent {
  return typeof event === 'object' && event !== null && 'requestContext' in event && 'rawPath' in event;
}

function httpError(statusCode: number, error: string, headers: Record<string, string> = {}): LambdaFunctionURLResult {
  return { statusCode, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify({ error }) };
}

/** POST / with the JSON body of `HttpDepositBody`: 201 stored, 200 already stored (idempotent). */
async function onHttp(event: LambdaFunctionURLEvent): Promise<LambdaFunctionURLResult> {
  if (event.requestContext.http.method !== 'POST') return httpError(405, 'use POST', { allow: 'POST' });
  if (event.rawPath !== '/' && event.rawPath !== '/deposit') return httpError(404, 'POST / or /deposit');
  const text = event.isBase64Encoded ? Buffer.from(event.body ?? '', 'base64').toString('utf8') : (event.body ?? '');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return httpError(400, 'body is not JSON');
  }
  const result = await deposit.http(json);
  await fanOutChanges(result, ports.changes, obs.logger);
  return { statusCode: result.statusCode, headers: JSON_HEADERS, body: result.body };
}

async function onSip(event: SipRequestEvent): Promise<SipHandlerResult> {
  return fanOutChanges(await deposit.sip(event), ports.changes, obs.logger);
}

export const handler = lambdaHandler(
  obs,
  (event: SipRequestEvent | LambdaFunctionURLEvent): Promise<SipHandlerResult | LambdaFunctionURLResult> =>
    isHttpEvent(event) ? onHttp(event) : onSip(event),
);
