/**
 * The subscribe handler from its ports: what the Lambda entry (./handler.ts) and the local
 * default (functions/edge/local-side.ts) both run.
 */
import type { Policy } from '#shared/deferred/policy.ts';
import type { DeferredMessageStore, SubscriptionStore } from '#shared/ports.ts';
import { newTag } from '#shared/sip/dialog/index.ts';
import { makeHandler } from './logic.ts';

export interface SubscribeBuild {
  ports: { messages: DeferredMessageStore; subscriptions: SubscriptionStore };
  policy: Policy;
  serviceUris: string[];
  now: () => number;
}

export function buildSubscribe(opts: SubscribeBuild) {
  return makeHandler({ ...opts.ports, policy: opts.policy, serviceUris: opts.serviceUris, newTag, now: opts.now });
}
