/**
 * NOTIFY requests for the deferred-messages package (RFC 6665 §4.2.2, protocol.md "NOTIFY"):
 * always full state, the oldest entries up to the configured cap, `total` the whole count.
 */
import type { InDialogRequestSpec } from '../events.ts';
import type { DeferredMessageEntry, Subscription } from '../deferred/model.ts';
import { EVENT_PACKAGE } from '../deferred/names.ts';
import { buildNotifyContent } from '../deferred/notify.ts';
import { subscriptionStateHeader } from '../sip/subscription/index.ts';
import type { Policy } from '../deferred/policy.ts';
import type { DeferredMessageStore, SubscriptionStore } from '../ports.ts';

export interface NotifyDeps {
  messages: DeferredMessageStore;
  subscriptions: SubscriptionStore;
  policy: Policy;
  /** Epoch milliseconds. */
  now: () => number;
}

export type SubscriptionEnd = 'timeout' | 'deactivated' | 'rejected';

/**
 * The user's current list: the first page and the whole count (`seen`: a summary revision the
 * count must include, from the change being notified).
 */
export async function currentList(
  deps: Pick<NotifyDeps, 'messages' | 'policy' | 'now'>,
  user: string,
  seen?: number,
): Promise<{ page: DeferredMessageEntry[]; total: number }> {
  const nowSec = Math.floor(deps.now() / 1000);
  const page = await deps.messages.list(user, nowSec, deps.policy.notifyMaxEntries);
  // A page short of the cap is the whole list: the summary is read only when more may follow.
  if (page.length < deps.policy.notifyMaxEntries) return { page, total: page.length };
  return { page, total: Math.max(page.length, await deps.messages.count(user, nowSec, seen)) };
}

/** One NOTIFY for a subscription with given counters. */
export function notifyRequest(
  sub: Pick<Subscription, 'user' | 'dialogId' | 'dialog' | 'expiresAt'>,
  list: { page: DeferredMessageEntry[]; total: number },
  counters: { cseq: number; version: number },
  policy: Policy,
  nowMs: number,
  end?: SubscriptionEnd,
): InDialogRequestSpec {
  const content = buildNotifyContent({
    messages: list.page,
    total: list.total,
    version: counters.version,
    maxEntries: policy.notifyMaxEntries,
  });
  const state = end
    ? subscriptionStateHeader({ state: 'terminated', reason: end })
    : subscriptionStateHeader({
        state: 'active',
        expiresIn: Math.max(0, sub.expiresAt - Math.floor(nowMs / 1000)),
      });
  return {
    method: 'NOTIFY',
    dialog: sub.dialog,
    cseq: counters.cseq,
    headers: [
      { name: 'Event', value: EVENT_PACKAGE },
      { name: 'Subscription-State', value: state },
    ],
    body: Buffer.from(content.body, 'utf8').toString('base64'),
    contentType: content.contentType,
    subscription: { user: sub.user, dialogId: sub.dialogId },
  };
}

/**
 * NOTIFYs for every active subscription of a user after their list changed; with `edgeId`, only
 * those whose dialog that edge task holds (each edge asks for its own). With `dialogIds` (the
 * watchers the change fan-out just read), those dialogs are notified without listing the user's
 * subscriptions again: each counter update returns its subscription, and one that has ended,
 * expired or moved to another edge task meanwhile is skipped (a refresh that moved it sent its
 * own NOTIFY). A subscription whose counters cannot be taken (removed meanwhile) is skipped.
 */
export async function notifyWatchers(
  deps: NotifyDeps,
  signal: { user: string; edgeId?: string; dialogIds?: readonly string[]; revision?: number },
): Promise<InDialogRequestSpec[]> {
  const { user, edgeId, dialogIds, revision } = signal;
  const nowMs = deps.now();
  const nowSec = Math.floor(nowMs / 1000);
  const held = (sub: Subscription) =>
    sub.expiresAt > nowSec && sub.state === 'active' && (edgeId === undefined || sub.dialog.flow.edgeId === edgeId);
  const dialogs = dialogIds ?? (await deps.subscriptions.listByUser(user, nowSec)).filter(held).map((s) => s.dialogId);
  if (dialogs.length === 0) return [];
  const list = await currentList(deps, user, revision);
  const out: InDialogRequestSpec[] = [];
  for (const dialogId of dialogs) {
    const turn = await deps.subscriptions.nextNotify(user, dialogId);
    if (turn && held(turn.subscription)) out.push(notifyRequest(turn.subscription, list, turn, deps.policy, nowMs));
  }
  return out;
}
