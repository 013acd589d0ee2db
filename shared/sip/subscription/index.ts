/**
 * The RFC 6665 subscription dialog, as a notifier sees it: the Subscription-State of its NOTIFYs
 * and which answers to a NOTIFY end the subscription. Nothing here knows the event package.
 */
import { getHeader } from '../messages/index.ts';
import type { Header, SipMessage } from '../messages/index.ts';

export type SubscriptionStateSpec =
  { state: 'active'; expiresIn: number } | { state: 'terminated'; reason: 'timeout' | 'deactivated' | 'rejected' };

/** RFC 6665 §8.2.3 Subscription-State: "active;expires=3599", "terminated;reason=timeout". */
export function subscriptionStateHeader(spec: SubscriptionStateSpec): string {
  if (spec.state === 'active') return `active;expires=${Math.max(0, Math.floor(spec.expiresIn))}`;
  return `terminated;reason=${spec.reason}`;
}

/** Whether a NOTIFY (or its header list) ends the subscription (RFC 6665 §4.1.3: "terminated"). */
export function isTerminalNotify(notify: SipMessage | { headers: Header[] }): boolean {
  const value =
    'kind' in notify
      ? getHeader(notify, 'Subscription-State')
      : notify.headers.find((h) => h.name.toLowerCase() === 'subscription-state')?.value;
  return /^\s*terminated/i.test(value ?? '');
}

/**
 * RFC 6665 §4.2.2: "If the NOTIFY request fails due to expiration of SIP Timer F (transaction
 * timeout), the notifier SHOULD remove the subscription." A 481 means the dialog is gone (§4.1.3).
 * protocol.md adds: any other non-2xx without Retry-After ends it too, except 401/407 (a
 * challenge the subscriber's core may make).
 */
export function endsSubscription(status: number, retryAfter: number | undefined): boolean {
  if (status < 300) return false;
  if (status === 481 || status === 408) return true;
  if (status === 401 || status === 407) return false;
  return retryAfter === undefined;
}
