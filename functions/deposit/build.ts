/**
 * The deposit handler's two entries (SIP MESSAGE, HTTP JSON) from their ports: what the Lambda
 * entry (./handler.ts) and the local default (functions/edge/local-side.ts) both run. A deposit
 * is counted when it stored a new message, never for a duplicate, in both modes.
 */
import type { Policy } from '#shared/deferred/policy.ts';
import type { SipHandlerResult, SipRequestEvent } from '#shared/events.ts';
import type { DeferredMessageStore } from '#shared/ports.ts';
import type { HandlerEvents } from '#shared/service/handler-events.ts';
import { makeHttpHandler, makeSipHandler, type HttpResult } from './logic.ts';

export interface DepositBuild {
  ports: { messages: DeferredMessageStore };
  policy: Policy;
  /** The host named in Warning headers (RFC 3261 §20.43). */
  warnAgent: string;
  /** SIP_DOMAIN: deposits for users of other domains are refused (404). */
  servedDomain: string;
  events?: Pick<HandlerEvents, 'deposited'>;
  now: () => number;
}

export interface DepositHandlers {
  sip(event: SipRequestEvent): Promise<SipHandlerResult>;
  http(json: unknown): Promise<HttpResult>;
}

export function buildDeposit(opts: DepositBuild): DepositHandlers {
  const deps = {
    messages: opts.ports.messages,
    policy: opts.policy,
    warnAgent: opts.warnAgent,
    servedDomain: opts.servedDomain,
    now: opts.now,
  };
  const sip = makeSipHandler(deps);
  const http = makeHttpHandler(deps);
  const deposited = opts.events?.deposited;
  // Both entries name the user whose list changed exactly when a new message was stored.
  const counted = <R extends { changedUsers?: string[] }>(result: R): R => {
    if (result.changedUsers?.length) deposited?.();
    return result;
  };
  return {
    sip: async (event) => counted(await sip(event)),
    http: async (json) => counted(await http(json)),
  };
}
