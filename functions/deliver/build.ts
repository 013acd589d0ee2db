/**
 * The deliver handler (the delivery queue's consumer) from its ports: what the Lambda entry
 * (./handler.ts) and the local default (functions/edge/local-side.ts) both run.
 */
import type { ChangeFeed, DeferredMessageStore, DeliverySessionStore, EdgeGateway } from '#shared/ports.ts';
import type { HandlerEvents } from '#shared/service/handler-events.ts';
import { makeHandler } from './logic.ts';

export interface DeliverBuild {
  ports: { messages: DeferredMessageStore; sessions: DeliverySessionStore; edge: EdgeGateway; changes: ChangeFeed };
  events?: Pick<HandlerEvents, 'delivered' | 'deliveryFailed'>;
  now: () => number;
  /** How long a delivery holds each message it claimed (Policy.deliveryLeaseSeconds). */
  messageLeaseSeconds?: number;
}

export function buildDeliver(opts: DeliverBuild) {
  return makeHandler({
    ...opts.ports,
    now: opts.now,
    ...(opts.messageLeaseSeconds !== undefined ? { messageLeaseSeconds: opts.messageLeaseSeconds } : {}),
    ...(opts.events?.delivered ? { onDelivered: opts.events.delivered } : {}),
    ...(opts.events?.deliveryFailed ? { onFailed: opts.events.deliveryFailed } : {}),
  });
}
