/**
 * The local default's handler wiring (docs/architecture.md "The local default"): the same `makeHandler`
 * logic the Lambda functions run, called directly by the edge, over the SQLite adapters.
 */
import { randomBytes } from 'node:crypto';
import { ulid } from 'ulid';
import { makeHandler as makeDeliver } from '../deliver/logic.ts';
import { makeHttpHandler, makeSipHandler } from '../deposit/logic.ts';
import { sweep, type ExpireDeps } from '../expire/logic.ts';
import { makeHandler as makeInvite } from '../invite/logic.ts';
import { makeHandler as makeSubscribe } from '../subscribe/logic.ts';
import type { DeferredMessage } from '#shared/deferred/model.ts';
import type { Policy } from '#shared/deferred/policy.ts';
import { edgeSessionOwner, newSessionId } from '#shared/msrp/session-owner.ts';
import type {
  ChangeFeed,
  DeferredMessageStore,
  DeliveryQueue,
  DeliverySessionStore,
  EdgeGateway,
  HandlerInvoker,
  ImdnOutbox,
  SubscriptionStore,
} from '#shared/ports.ts';

export interface LocalPorts {
  messages: DeferredMessageStore;
  subscriptions: SubscriptionStore;
  sessions: DeliverySessionStore;
  queue: DeliveryQueue;
  outbox: ImdnOutbox;
}

export interface LocalHandlerOptions {
  ports: LocalPorts;
  edge: EdgeGateway;
  changes: ChangeFeed;
  policy: Policy;
  serviceUris: string[];
  msrp: { host: string; port: number };
  warnAgent: string;
  counters?: {
    delivered?: (latencyMs: number, message: { user: string; id: string; from: string }) => void;
    deleted?: (count: number) => void;
    failed?: (status: number) => void;
    expired?: (count: number) => void;
  };
  now?: () => number;
}

/** A To tag with enough entropy to be globally unique (RFC 3261 §19.3: at least 32 bits). */
export function newTag(): string {
  return randomBytes(8).toString('hex');
}

export function makeLocalHandlers(opts: LocalHandlerOptions) {
  const now = opts.now ?? Date.now;
  const { messages, subscriptions, sessions, queue, outbox } = opts.ports;
  // As in AWS: the IMDN goes through the outbound queue, which the edge consumes.
  const sendFailureImdn = (message: DeferredMessage) => outbox.failed(message);
  const notifyDeps = { messages, subscriptions, policy: opts.policy, now };
  const subscribe = makeSubscribe({ ...notifyDeps, serviceUris: opts.serviceUris, newTag });
  const invite = makeInvite({
    messages,
    sessions,
    queue,
    policy: opts.policy,
    serviceUris: opts.serviceUris,
    msrp: opts.msrp,
    newTag,
    // 'local' names no address, so ids stay plain; an EDGE_ID with one makes them name this edge.
    newSessionId: (edgeId) => newSessionId(edgeSessionOwner(edgeId, opts.msrp.port)),
    now,
    sendFailureImdn,
    ...(opts.counters?.deleted ? { onDeleted: opts.counters.deleted } : {}),
  });
  const depositDeps = { messages, policy: opts.policy, warnAgent: opts.warnAgent, now, newId: ulid };
  const depositSip = makeSipHandler(depositDeps);
  const depositHttp = makeHttpHandler(depositDeps);
  const deliver = makeDeliver({
    messages,
    sessions,
    edge: opts.edge,
    changes: opts.changes,
    now,
    ...(opts.counters?.delivered ? { onDelivered: opts.counters.delivered } : {}),
    ...(opts.counters?.failed ? { onFailed: opts.counters.failed } : {}),
  });
  const expireDeps: ExpireDeps = {
    messages,
    subscriptions,
    changes: opts.changes,
    edge: opts.edge,
    policy: opts.policy,
    now,
    sendFailureImdn,
    ...(opts.counters?.expired ? { onExpired: opts.counters.expired } : {}),
  };
  const invoker: HandlerInvoker = {
    subscribe: (event) => subscribe(event),
    invite: (event) => invite(event),
    deposit: (event) => depositSip(event),
  };
  return { invoker, deliver, depositHttp, sweep: () => sweep(expireDeps) };
}
