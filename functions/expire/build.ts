/**
 * Retention from its ports: the sweep (a timer locally, a schedule in AWS) and the handling of
 * messages TTL already removed (the AWS stream), as the Lambda entry (./handler.ts) and the local
 * default (functions/edge/local-side.ts) both run them.
 */
import type { DeferredMessage } from '#shared/deferred/model.ts';
import type { Policy } from '#shared/deferred/policy.ts';
import type { ChangeFeed, DeferredMessageStore, EdgeGateway, ImdnOutbox, SubscriptionStore } from '#shared/ports.ts';
import type { HandlerEvents } from '#shared/service/handler-events.ts';
import { messagesExpired, sweep, type ExpireDeps } from './logic.ts';

export interface ExpireBuild {
  ports: {
    messages: DeferredMessageStore;
    subscriptions: SubscriptionStore;
    changes: ChangeFeed;
    edge: EdgeGateway;
    outbox: ImdnOutbox;
  };
  policy: Policy;
  events?: Pick<HandlerEvents, 'expired'>;
  now: () => number;
}

export function buildExpire(opts: ExpireBuild) {
  const { outbox, ...ports } = opts.ports;
  const expired = opts.events?.expired;
  const deps: ExpireDeps = {
    ...ports,
    policy: opts.policy,
    now: opts.now,
    // No SIP socket in a handler: an edge task takes the IMDN off the outbound queue and sends it.
    sendFailureImdn: (m) => outbox.failed(m),
    ...(expired ? { onExpired: (count: number) => (count > 0 ? expired(count) : undefined) } : {}),
  };
  return {
    sweep: () => sweep(deps),
    messagesExpired: (messages: DeferredMessage[]) => messagesExpired(deps, messages),
  };
}
