/**
 * What an operator may see and do through the admin port (the console, the CLI, /api): a user's
 * pending list (metadata only, never a payload), subscriptions and recent deliveries; purging one
 * message or all of a user's. A purge is an operator's deletion: it is counted, the user's
 * watchers are told, and a sender who asked for negative-delivery gets an IMDN `failed`, as for
 * a user's own `delete` (protocol.md "Deposit").
 */
import type { DeferredMessage, DeferredMessageEntry } from '#shared/deferred/model.ts';
import { parseDispositionNotification } from '#shared/cpim/imdn.ts';
import type { ChangeFeed, DeferredMessageStore, ImdnOutbox, SubscriptionStore } from '#shared/ports.ts';

/** A message as an operator sees it: everything but the payload. */
export type MessageMeta = DeferredMessageEntry & { bytes: number };

export interface RecentDelivery {
  user: string;
  id: string;
  from: string;
  at: string;
  latencyMs: number;
}

export interface OperatorDeps {
  messages: DeferredMessageStore;
  subscriptions: SubscriptionStore;
  outbox: ImdnOutbox;
  changes: ChangeFeed;
  now?: () => number;
  onPurged?: (count: number) => void;
}

/** Deliveries the user view remembers, across users. */
const RECENT_DELIVERIES = 200;

/** Largest page the list API serves. */
export const MAX_PAGE = 500;

export class OperatorError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A store may hand back the whole message: the payload is dropped here, its size kept. */
const meta = (m: DeferredMessageEntry): MessageMeta => {
  const { cpim, ...rest } = m as Partial<DeferredMessage> & DeferredMessageEntry;
  return { ...rest, bytes: cpim?.length ?? m.size };
};

export class Operator {
  /**
   * The last RECENT_DELIVERIES deliveries, written round (slot `recorded % RECENT_DELIVERIES`),
   * each with its time in epoch ms: one is recorded per message delivered, read only when an
   * operator looks, so the date is formatted then.
   */
  private readonly deliveries: (Omit<RecentDelivery, 'at'> & { atMs: number })[] = [];
  private recorded = 0;
  private readonly now: () => number;

  constructor(private readonly deps: OperatorDeps) {
    this.now = deps.now ?? Date.now;
  }

  private nowSec(): number {
    return Math.floor(this.now() / 1000);
  }

  /** Remember a delivery for the user view (the last 200 across users). */
  delivered(d: Omit<RecentDelivery, 'at'>): void {
    const entry = { user: d.user, id: d.id, from: d.from, latencyMs: d.latencyMs, atMs: this.now() };
    this.deliveries[this.recorded++ % RECENT_DELIVERIES] = entry;
  }

  /** A user's recent deliveries, newest first. */
  private recentDeliveries(user: string): RecentDelivery[] {
    const out: RecentDelivery[] = [];
    const kept = Math.min(this.recorded, RECENT_DELIVERIES);
    for (let n = this.recorded - 1; n >= this.recorded - kept; n--) {
      const { atMs, ...d } = this.deliveries[n % RECENT_DELIVERIES]!;
      if (d.user === user) out.push({ ...d, at: new Date(atMs).toISOString() });
    }
    return out;
  }

  async list(user: string, page: { limit?: number; cursor?: string } = {}) {
    const limit = page.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
      throw new OperatorError(400, `limit: an integer from 1 to ${MAX_PAGE}`);
    }
    const nowSec = this.nowSec();
    let result;
    try {
      result = await this.deps.messages.listPage(user, nowSec, {
        limit,
        ...(page.cursor ? { cursor: page.cursor } : {}),
      });
    } catch (err) {
      if (err instanceof RangeError) throw new OperatorError(400, err.message);
      throw err;
    }
    return {
      user,
      total: await this.deps.messages.count(user, nowSec),
      entries: result.messages.map(meta),
      ...(result.cursor ? { cursor: result.cursor } : {}),
    };
  }

  /** Pending list (first page), active subscriptions with their devices, recent deliveries. */
  async user(user: string) {
    const pending = await this.list(user);
    const subs = await this.deps.subscriptions.listByUser(user, this.nowSec());
    return {
      ...pending,
      subscriptions: subs.map((s) => ({
        dialogId: s.dialogId,
        expiresAt: new Date(s.expiresAt * 1000).toISOString(),
        device: s.dialog.remoteTarget,
        transport: s.dialog.flow.transport,
        address: `${s.dialog.flow.remoteAddress}:${s.dialog.flow.remotePort}`,
        notifies: s.version,
      })),
      deliveries: this.recentDeliveries(user),
    };
  }

  /** Remove one message (`id`) or all of the user's; resolves with the ids removed. */
  async purge(user: string, id?: string): Promise<{ user: string; purged: string[] }> {
    const nowSec = this.nowSec();
    const targets: DeferredMessageEntry[] = [];
    if (id !== undefined) {
      const one = await this.deps.messages.get(user, id, nowSec);
      if (!one) throw new OperatorError(404, `id: no pending message ${id} for ${user}`);
      targets.push(one);
    } else {
      let cursor: string | undefined;
      do {
        const page = await this.deps.messages.listPage(user, nowSec, {
          limit: MAX_PAGE,
          ...(cursor ? { cursor } : {}),
        });
        targets.push(...page.messages);
        cursor = page.cursor;
      } while (cursor);
    }
    const purged = await this.deps.messages.deleteMany(
      user,
      targets.map((m) => m.id),
    );
    const removed = new Set(purged);
    for (const m of targets) {
      if (!removed.has(m.id)) continue;
      if (parseDispositionNotification(m.dispositionNotification ?? '').has('negative-delivery')) {
        await this.deps.outbox.failed(m).catch(() => undefined);
      }
    }
    if (purged.length > 0) {
      this.deps.onPurged?.(purged.length);
      await this.deps.changes.userChanged(user).catch(() => undefined);
    }
    return { user, purged };
  }

  async state(): Promise<{ pending: number; users: number; subscriptions: number }> {
    const nowSec = this.nowSec();
    const [stats, subscriptions] = await Promise.all([
      this.deps.messages.stats(nowSec),
      this.deps.subscriptions.countActive(nowSec),
    ]);
    return { ...stats, subscriptions };
  }
}
