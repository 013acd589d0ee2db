/**
 * The invite handler from its ports: what the Lambda entry (./handler.ts) and the local default
 * (functions/edge/local-side.ts) both run, counting deletions the same way in both.
 */
import type { Policy } from '#shared/deferred/policy.ts';
import { edgeSessionOwner, newSessionId } from '#shared/msrp/session-owner.ts';
import type { DeferredMessageStore, DeliveryQueue, DeliverySessionStore, ImdnOutbox } from '#shared/ports.ts';
import type { HandlerEvents } from '#shared/service/handler-events.ts';
import { newTag } from '#shared/sip/dialog/index.ts';
import { makeHandler, type MsrpsEndpoint } from './logic.ts';

export interface InviteBuild {
  ports: { messages: DeferredMessageStore; sessions: DeliverySessionStore; queue: DeliveryQueue; outbox: ImdnOutbox };
  policy: Policy;
  serviceUris: string[];
  /** Where clients reach the MSRP listener (the SDP answer's path). */
  msrp: { host: string; port: number };
  /** Where clients reach MSRP over TLS (an msrps: path, InviteDeps.msrps), if anywhere. */
  msrps?: MsrpsEndpoint;
  /**
   * The MSRP port the owning edge task listens on, named in session ids so another task relays
   * to it (the container's port in AWS; the bound port locally).
   */
  ownerMsrpPort: number;
  events?: Pick<HandlerEvents, 'deleted'>;
  now: () => number;
}

export function buildInvite(opts: InviteBuild) {
  const { messages, sessions, queue, outbox } = opts.ports;
  return makeHandler({
    messages: countingDeletes(messages, opts.events?.deleted),
    sessions,
    queue,
    policy: opts.policy,
    serviceUris: opts.serviceUris,
    msrp: opts.msrp,
    ...(opts.msrps ? { msrps: opts.msrps } : {}),
    newTag,
    // 'local' names no address, so ids stay plain; an edge id with one makes them name that task.
    newSessionId: (edgeId) => newSessionId(edgeSessionOwner(edgeId, opts.ownerMsrpPort)),
    now: opts.now,
    // No SIP socket in a handler: an edge task takes the IMDN off the outbound queue and sends it.
    sendFailureImdn: (m) => outbox.failed(m),
  });
}

/** The store with each message a `deleteMany` removed reported. */
function countingDeletes(store: DeferredMessageStore, deleted: (() => void) | undefined): DeferredMessageStore {
  if (!deleted) return store;
  return Object.assign(Object.create(store) as DeferredMessageStore, {
    deleteMany: async (user: string, ids: readonly string[]) => {
      const removed = await store.deleteMany(user, ids);
      for (const _ of removed) deleted();
      return removed;
    },
  });
}
