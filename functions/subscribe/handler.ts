/**
 * Lambda entry of `subscribe` (steps 2-7 of Figure 30): the edge invokes it synchronously with
 * a SUBSCRIBE, or with a signal (`user-changed`, `notify-failed`), and sends what it returns.
 */
import { lambdaHandler, observability, serviceSettings, tracedAwsPorts } from '#shared/observability/lambda-runtime.ts';
import { buildSubscribe } from './build.ts';
import type { SubscribeEvent } from './logic.ts';

const obs = observability('subscribe');
const ports = tracedAwsPorts(obs.tracer);
const { policy, serviceUris } = serviceSettings();

const subscribe = buildSubscribe({ ports, policy, serviceUris, now: Date.now });

export const handler = lambdaHandler(obs, (event: SubscribeEvent) => subscribe(event));
