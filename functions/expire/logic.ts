/**
 * Retention (protocol.md "Deposit", last point): expired messages leave the store and their
 * users' watchers get a NOTIFY; expired subscriptions get their final NOTIFY
 * `terminated;reason=timeout` (RFC 6665 §4.4.3). The local default sweeps on a timer; in AWS the
 * messages table's TTL stream feeds the same logic with the removed items.
 */
import type { DeferredMessage, DeferredMessageEntry } from '#shared/deferred/model.ts';
import { parseDispositionNotification } from '#shared/cpim/imdn.ts';
import type { ChangeFeed, DeferredMessageStore, EdgeGateway, SubscriptionStore } from '#shared/ports.ts';
import { currentList, notifyRequest } from '#shared/service/notifications.ts';
import type { Policy } from '#shared/deferred/policy.ts';

export interface ExpireDeps {
  messages: DeferredMessageStore;
  subscriptions: SubscriptionStore;
  changes: ChangeFeed;
  edge: EdgeGateway;
  policy: Policy;
  now: () => number;
  /** A sender that asked for negative-delivery gets an IMDN `failed` (RFC 5438 §7.2.1.1). */
  sendFailureImdn?: (message: DeferredMessageEntry) => Promise<void>;
  onExpired?: (count: number) => void;
}

/** Handle messages already removed from the store (TTL) or to remove now (sweep). */
export async function messagesExpired(deps: ExpireDeps, expired: DeferredMessage[]): Promise<void> {
  const users = new Set<string>();
  for (const message of expired) {
    users.add(message.user);
    const wanted = message.dispositionNotification
      ? parseDispositionNotification(message.dispositionNotification)
      : new Set<string>();
    // One report that cannot be queued must not stop the others nor the NOTIFYs (the message is gone already).
    if (wanted.has('negative-delivery')) await deps.sendFailureImdn?.(message).catch(() => undefined);
  }
  deps.onExpired?.(expired.length);
  for (const user of users) await deps.changes.userChanged(user);
}

/** One local sweep: expired messages, then expired subscriptions. */
export async function sweep(deps: ExpireDeps, batch = 100): Promise<{ messages: number; subscriptions: number }> {
  const nowMs = deps.now();
  const nowSec = Math.floor(nowMs / 1000);
  const expired = await deps.messages.listExpired(nowSec, batch);
  // One delete per user the batch names (the sweep's batch spans users).
  const byUser = new Map<string, DeferredMessage[]>();
  for (const m of expired) {
    const mine = byUser.get(m.user);
    if (mine) mine.push(m);
    else byUser.set(m.user, [m]);
  }
  const removed: DeferredMessage[] = [];
  for (const [user, messages] of byUser) {
    const gone = new Set(
      await deps.messages.deleteMany(
        user,
        messages.map((m) => m.id),
      ),
    );
    removed.push(...messages.filter((m) => gone.has(m.id)));
  }
  if (removed.length > 0) await messagesExpired(deps, removed);

  const subs = await deps.subscriptions.listExpired(nowSec, batch);
  for (const sub of subs) {
    const counters = await deps.subscriptions.endNotify(sub.user, sub.dialogId);
    if (!counters) continue;
    const list = await currentList(deps, sub.user);
    const notify = notifyRequest(sub, list, counters, deps.policy, nowMs, 'timeout');
    await deps.edge.send(sub.dialog.flow.edgeId, notify).catch(() => undefined);
  }
  return { messages: removed.length, subscriptions: subs.length };
}
