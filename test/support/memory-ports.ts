/**
 * In-memory implementations of the ports (shared/ports.ts) for handler unit tests. They keep
 * the contracts the DynamoDB/SQS adapters keep (expiry filtering, idempotent put, atomic
 * counters) and record what the handlers asked of the outside world.
 */
import type {
  DeferredMessage,
  DeferredMessageEntry,
  DeliveryJob,
  DeliveryReport,
  DeliveryTransfer,
  DeliverySession,
  Subscription,
} from '#shared/deferred/model.ts';
import type { InDialogRequestSpec } from '#shared/events.ts';
import { TransferRunner } from '#functions/edge/transfer-runner.ts';
import {
  lastTurn,
  StoreFullError,
  storedBytes,
  type ChangeFeed,
  type DeferredMessageStore,
  type DeliveryQueue,
  type DeliverySessionStore,
  type EdgeGateway,
  type MessagePage,
  type NotifyTurn,
  type Removed,
  type StoreLimits,
  type SubscriptionStore,
} from '#shared/ports.ts';

const byArrival = (a: DeferredMessage, b: DeferredMessage) =>
  `${a.arrivedAt}#${a.id}` < `${b.arrivedAt}#${b.id}`
    ? -1
    : `${a.arrivedAt}#${a.id}` > `${b.arrivedAt}#${b.id}`
      ? 1
      : 0;

/** The entry of a message: everything but the payload. */
function entryOf(m: DeferredMessage): DeferredMessageEntry {
  const { cpim: _payload, ...entry } = m;
  return structuredClone(entry);
}

export class MemoryMessageStore implements DeferredMessageStore {
  private readonly items = new Map<string, DeferredMessage>();
  /** Leases of claimed messages: the holding session and until when (epoch seconds), by key. */
  private readonly leases = new Map<string, { holder: string; until: number }>();
  /** (user, from, messageId) -> the first deposit's id: a late duplicate is never stored again. */
  private readonly dedupe = new Map<string, { id: string; expiresAt: number; first: DeferredMessage }>();
  /** Per-user summary counters, kept as the DynamoDB adapter keeps them (add on put, subtract on delete). */
  private readonly counts = new Map<string, number>();
  /** Every id a delete asked for, in order. */
  readonly deletes: { user: string; id: string }[] = [];
  /** Every store call by method name, in order, with the ids asked for (cost assertions). */
  readonly calls: { method: keyof DeferredMessageStore; ids?: readonly string[] }[] = [];

  private static key(user: string, id: string): string {
    return JSON.stringify([user, id]);
  }

  /** Stored bytes per user, beside the counts, and in all. */
  private readonly bytes = new Map<string, number>();
  private totalBytes = 0;

  async put(message: DeferredMessage, limits?: StoreLimits): Promise<{ created: boolean; message: DeferredMessage }> {
    this.calls.push({ method: 'put' });
    const dedupeKey = JSON.stringify([message.user, message.from, message.messageId]);
    const claim = this.dedupe.get(dedupeKey);
    const nowSec = Math.floor(Date.parse(message.arrivedAt) / 1000);
    if (claim && claim.expiresAt > nowSec) {
      const stored = this.items.get(MemoryMessageStore.key(message.user, claim.id));
      return { created: false, message: stored ?? claim.first };
    }
    const size = storedBytes(message);
    if (limits) {
      if ((this.counts.get(message.user) ?? 0) >= limits.maxMessagesPerUser) throw new StoreFullError('messages');
      if ((this.bytes.get(message.user) ?? 0) + size > limits.maxBytesPerUser) throw new StoreFullError('bytes');
      if (this.totalBytes + size > limits.maxStoreBytes) throw new StoreFullError('total');
    }
    const copy = structuredClone(message);
    const key = MemoryMessageStore.key(message.user, message.id);
    const stale = this.items.get(key);
    if (stale && stale.expiresAt <= nowSec) {
      // An expired copy the sweep has not reached under the same id: it stays for the sweep
      // (watchers, negative-delivery IMDN) under an id of its own.
      const moved = { ...stale, id: `${stale.id}~${stale.arrivedAt}` };
      this.items.set(MemoryMessageStore.key(moved.user, moved.id), moved);
    }
    this.items.set(key, copy);
    this.counts.set(message.user, (this.counts.get(message.user) ?? 0) + 1);
    this.bytes.set(message.user, (this.bytes.get(message.user) ?? 0) + size);
    this.totalBytes += size;
    this.dedupe.set(dedupeKey, { id: message.id, expiresAt: message.expiresAt, first: copy });
    return { created: true, message: structuredClone(copy) };
  }

  async list(user: string, now: number, limit?: number): Promise<DeferredMessageEntry[]> {
    this.calls.push({ method: 'list' });
    const mine = [...this.items.values()].filter((m) => m.user === user && m.expiresAt > now).sort(byArrival);
    return (limit === undefined ? mine : mine.slice(0, limit)).map(entryOf);
  }

  async count(user: string, _now: number): Promise<number> {
    this.calls.push({ method: 'count' });
    return this.counts.get(user) ?? 0;
  }

  async get(user: string, id: string, now: number): Promise<DeferredMessage | undefined> {
    this.calls.push({ method: 'get', ids: [id] });
    const m = this.items.get(MemoryMessageStore.key(user, id));
    return m && m.expiresAt > now ? structuredClone(m) : undefined;
  }

  async getMany(user: string, ids: readonly string[], now: number): Promise<DeferredMessageEntry[]> {
    this.calls.push({ method: 'getMany', ids: [...ids] });
    const out: DeferredMessageEntry[] = [];
    for (const id of new Set(ids)) {
      const m = this.items.get(MemoryMessageStore.key(user, id));
      if (m && m.expiresAt > now) out.push(entryOf(m));
    }
    return out;
  }

  // Synchronous check-and-set per id: the same atomicity as each DynamoDB conditional write.
  async claimMany(
    user: string,
    ids: readonly string[],
    holder: string,
    nowSec: number,
    leaseSeconds: number,
  ): Promise<DeferredMessage[]> {
    this.calls.push({ method: 'claimMany', ids: [...ids] });
    const taken: DeferredMessage[] = [];
    for (const id of new Set(ids)) {
      const key = MemoryMessageStore.key(user, id);
      const m = this.items.get(key);
      if (!m || m.expiresAt <= nowSec) continue;
      const lease = this.leases.get(key);
      if (lease && lease.holder !== holder && lease.until >= nowSec) continue;
      this.leases.set(key, { holder, until: nowSec + leaseSeconds });
      taken.push(structuredClone(m));
    }
    return taken;
  }

  async releaseMany(user: string, ids: readonly string[], holder: string): Promise<string[]> {
    this.calls.push({ method: 'releaseMany', ids: [...ids] });
    return [...new Set(ids)].filter((id) => {
      const key = MemoryMessageStore.key(user, id);
      if (this.leases.get(key)?.holder !== holder) return false;
      this.leases.delete(key);
      return true;
    });
  }

  async deleteMany(user: string, ids: readonly string[]): Promise<string[]> {
    this.calls.push({ method: 'deleteMany', ids: [...ids] });
    const removed: string[] = [];
    let bytes = 0;
    for (const id of new Set(ids)) {
      this.deletes.push({ user, id });
      const key = MemoryMessageStore.key(user, id);
      this.leases.delete(key);
      const gone = this.items.get(key);
      if (!gone) continue;
      this.items.delete(key);
      removed.push(id);
      bytes += storedBytes(gone);
    }
    await this.uncount(user, { messages: removed.length, bytes });
    return removed;
  }

  async uncount(user: string, removed: Removed): Promise<void> {
    this.counts.set(user, Math.max(0, (this.counts.get(user) ?? 0) - removed.messages));
    this.bytes.set(user, Math.max(0, (this.bytes.get(user) ?? 0) - removed.bytes));
    this.totalBytes = Math.max(0, this.totalBytes - removed.bytes);
  }

  /** The user's stored bytes, as the summary keeps them. */
  storedBytesOf(user: string): number {
    return this.bytes.get(user) ?? 0;
  }

  async listExpired(now: number, limit: number): Promise<DeferredMessage[]> {
    this.calls.push({ method: 'listExpired' });
    return structuredClone(
      [...this.items.values()]
        .filter((m) => m.expiresAt <= now)
        .sort((a, b) => a.expiresAt - b.expiresAt)
        .slice(0, limit),
    );
  }

  async listPage(user: string, now: number, page: { limit: number; cursor?: string }): Promise<MessagePage> {
    const mine = await this.list(user, now);
    let start = 0;
    if (page.cursor !== undefined) {
      const after = Buffer.from(page.cursor, 'base64url').toString('utf8');
      if (!after.includes('#')) throw new RangeError('cursor: not one this list returned');
      start = mine.findIndex((m) => `${m.arrivedAt}#${m.id}` > after);
      if (start < 0) start = mine.length;
    }
    const messages = mine.slice(start, start + Math.max(0, page.limit));
    const last = messages[messages.length - 1];
    return start + messages.length < mine.length && last
      ? { messages, cursor: Buffer.from(`${last.arrivedAt}#${last.id}`).toString('base64url') }
      : { messages };
  }

  async stats(now: number): Promise<{ pending: number; users: number }> {
    const live = [...this.items.values()].filter((m) => m.expiresAt > now);
    return { pending: live.length, users: new Set(live.map((m) => m.user)).size };
  }

  /** Everything stored, expired or not (assertions). */
  all(): DeferredMessage[] {
    return structuredClone([...this.items.values()].sort(byArrival));
  }
}

export class MemorySubscriptionStore implements SubscriptionStore {
  private readonly items = new Map<string, Subscription>();

  private static key(user: string, dialogId: string): string {
    return JSON.stringify([user, dialogId]);
  }

  async put(sub: Subscription): Promise<void> {
    this.items.set(MemorySubscriptionStore.key(sub.user, sub.dialogId), structuredClone(sub));
  }

  async get(user: string, dialogId: string, now: number): Promise<Subscription | undefined> {
    const sub = this.items.get(MemorySubscriptionStore.key(user, dialogId));
    return sub && sub.expiresAt > now ? structuredClone(sub) : undefined;
  }

  async listByUser(user: string, now: number): Promise<Subscription[]> {
    return structuredClone(
      [...this.items.values()].filter((s) => s.user === user && s.expiresAt > now && s.state === 'active'),
    );
  }

  async delete(user: string, dialogId: string): Promise<void> {
    this.items.delete(MemorySubscriptionStore.key(user, dialogId));
  }

  async renew(
    user: string,
    dialogId: string,
    expiresAt: number,
    remoteCSeq?: number,
    flow?: Subscription['dialog']['flow'],
  ): Promise<boolean> {
    const sub = this.items.get(MemorySubscriptionStore.key(user, dialogId));
    if (!sub) return false;
    sub.expiresAt = expiresAt;
    if (remoteCSeq !== undefined) sub.dialog.remoteCSeq = remoteCSeq;
    if (flow !== undefined) sub.dialog.flow = structuredClone(flow);
    return true;
  }

  /** The CSeq after the dialog's last one, and this NOTIFY's version (the first is 0). */
  async nextNotify(user: string, dialogId: string): Promise<NotifyTurn | undefined> {
    const sub = this.items.get(MemorySubscriptionStore.key(user, dialogId));
    if (!sub) return undefined;
    sub.dialog.localCSeq += 1;
    const version = sub.version;
    sub.version += 1;
    return { cseq: sub.dialog.localCSeq, version, subscription: structuredClone(sub) };
  }

  async endNotify(user: string, dialogId: string): Promise<NotifyTurn | undefined> {
    const key = MemorySubscriptionStore.key(user, dialogId);
    const sub = this.items.get(key);
    if (!sub) return undefined;
    this.items.delete(key);
    return lastTurn(structuredClone(sub));
  }

  async listExpired(now: number, limit: number): Promise<Subscription[]> {
    return structuredClone(
      [...this.items.values()]
        .filter((s) => s.expiresAt <= now)
        .sort((a, b) => a.expiresAt - b.expiresAt)
        .slice(0, limit),
    );
  }

  async countActive(now: number): Promise<number> {
    return [...this.items.values()].filter((s) => s.expiresAt > now && s.state === 'active').length;
  }

  all(): Subscription[] {
    return structuredClone([...this.items.values()]);
  }
}

export class MemorySessionStore implements DeliverySessionStore {
  private readonly items = new Map<string, DeliverySession>();

  /** With a clock (epoch ms), `get` hides sessions past `expiresAt`, as the real stores do. */
  constructor(private readonly now?: () => number) {}

  async put(session: DeliverySession): Promise<void> {
    this.items.set(session.sessionId, structuredClone(session));
  }

  async get(sessionId: string): Promise<DeliverySession | undefined> {
    const s = this.items.get(sessionId);
    if (s && this.now && s.expiresAt <= Math.floor(this.now() / 1000)) return undefined;
    return s ? structuredClone(s) : undefined;
  }

  async update(sessionId: string, patch: Partial<Pick<DeliverySession, 'state' | 'retrieve'>>): Promise<void> {
    const s = this.items.get(sessionId);
    if (s) Object.assign(s, structuredClone(patch));
  }

  // Synchronous check-and-set: the same atomicity as the DynamoDB conditional write.
  async claim(sessionId: string, nowSec: number, leaseSeconds: number): Promise<boolean> {
    const s = this.items.get(sessionId);
    if (!s || s.expiresAt <= nowSec) return false;
    const leaseOver = s.leaseUntil === undefined || s.leaseUntil < nowSec;
    if (!(s.state === 'waiting' || (s.state === 'delivering' && leaseOver))) return false;
    s.state = 'delivering';
    s.leaseUntil = nowSec + leaseSeconds;
    return true;
  }

  async release(sessionId: string, leaseUntil: number): Promise<void> {
    const s = this.items.get(sessionId);
    if (s?.state !== 'delivering' || s.leaseUntil !== leaseUntil) return;
    s.state = 'waiting';
    delete s.leaseUntil;
  }

  async begin(session: DeliverySession, nowSec: number, leaseSeconds: number): Promise<number | undefined> {
    if (session.expiresAt <= nowSec) return undefined;
    const stored = this.items.get(session.sessionId);
    if (!stored) {
      this.items.set(session.sessionId, {
        ...structuredClone(session),
        state: 'delivering',
        leaseUntil: nowSec + leaseSeconds,
        dialog: { ...structuredClone(session.dialog), localCSeq: session.dialog.localCSeq + 1 },
      });
      return session.dialog.localCSeq + 1;
    }
    if (!(await this.claim(session.sessionId, nowSec, leaseSeconds))) return undefined;
    return this.nextCSeq(session.sessionId);
  }

  async nextCSeq(sessionId: string): Promise<number | undefined> {
    const s = this.items.get(sessionId);
    if (!s) return undefined;
    s.dialog.localCSeq += 1;
    return s.dialog.localCSeq;
  }

  async delete(sessionId: string): Promise<void> {
    this.items.delete(sessionId);
  }

  all(): DeliverySession[] {
    return structuredClone([...this.items.values()]);
  }
}

export class MemoryQueue implements DeliveryQueue {
  readonly jobs: DeliveryJob[] = [];
  readonly reports: DeliveryReport[] = [];

  async enqueue(job: DeliveryJob): Promise<void> {
    this.jobs.push(structuredClone(job));
  }

  async report(report: DeliveryReport): Promise<void> {
    this.reports.push(structuredClone(report));
  }
}

/** What the client answers an MSRP SEND with, or an Error when the edge cannot be reached. */
export type DeliverAnswer = (edgeId: string, sessionId: string, messageId: string) => number | Error;

/**
 * Records everything a handler asks of an edge; answers are scripted. A hand-off runs on the
 * edge's own TransferRunner, with `deliver` as its MSRP transfer; its reports are kept in
 * `reports` (the delivery queue), for the test to settle.
 */
export class RecordingEdge implements EdgeGateway {
  readonly sent: { edgeId: string; request: InDialogRequestSpec }[] = [];
  readonly transfers: DeliveryTransfer[] = [];
  readonly reports: DeliveryReport[] = [];
  /** An Error: the edge cannot be reached for this hand-off (the control call fails). */
  handOffAnswer: (edgeId: string, sessionId: string) => Error | undefined = () => undefined;
  /** Its SENDs keep call order per session, pipelined (as the edge's MSRP listener). */
  pipelined = false;
  /** The edge's clock (epoch ms), against which hand-off deadlines run: the test's clock. */
  now: () => number = Date.now;
  private readonly runners = new Map<string, TransferRunner>();
  readonly delivered: { edgeId: string; sessionId: string; id: string; cpim: Uint8Array }[] = [];
  readonly closed: { edgeId: string; sessionId: string }[] = [];
  /** Every call in order, e.g. "deliver m1", "close s1", "send BYE". */
  readonly log: string[] = [];

  constructor(
    public deliverAnswer: DeliverAnswer = () => 200,
    public sendStatus: (request: InDialogRequestSpec) => number = () => 200,
  ) {}

  async send(edgeId: string, request: InDialogRequestSpec): Promise<{ status: number }> {
    this.sent.push({ edgeId, request: structuredClone(request) });
    this.log.push(`send ${request.method}`);
    return { status: this.sendStatus(request) };
  }

  async transfer(edgeId: string, transfer: DeliveryTransfer): Promise<void> {
    this.log.push(`transfer ${transfer.sessionId}`);
    const refused = this.handOffAnswer(edgeId, transfer.sessionId);
    if (refused) throw refused;
    this.transfers.push(transfer);
    let runner = this.runners.get(edgeId);
    if (!runner) {
      runner = new TransferRunner({
        send: (sessionId, message) => this.deliver(edgeId, sessionId, message),
        now: () => this.now(),
        pipelined: this.pipelined,
        report: async (report) => {
          this.reports.push(structuredClone(report));
        },
      });
      this.runners.set(edgeId, runner);
    }
    runner.accept(transfer);
  }

  /** Every hand-off's SENDs done and its report queued; takes the reports (of one session). */
  async settled(sessionId?: string): Promise<DeliveryReport[]> {
    await Promise.all([...this.runners.values()].map((r) => r.settled()));
    const taken = this.reports.filter((r) => sessionId === undefined || r.sessionId === sessionId);
    for (const r of taken) this.reports.splice(this.reports.indexOf(r), 1);
    return taken;
  }

  /** One MSRP transfer on the edge, answered as `deliverAnswer` says. */
  async deliver(
    edgeId: string,
    sessionId: string,
    message: { id: string; cpim: Uint8Array },
  ): Promise<{ status: number }> {
    this.log.push(`deliver ${message.id}`);
    const answer = this.deliverAnswer(edgeId, sessionId, message.id);
    if (answer instanceof Error) throw answer;
    this.delivered.push({ edgeId, sessionId, id: message.id, cpim: message.cpim });
    return { status: answer };
  }

  async closeSession(edgeId: string, sessionId: string): Promise<void> {
    this.log.push(`close ${sessionId}`);
    this.closed.push({ edgeId, sessionId });
  }
}

export class RecordingChangeFeed implements ChangeFeed {
  readonly users: string[] = [];

  async userChanged(user: string): Promise<void> {
    this.users.push(user);
  }
}

/** A clock tests move by hand (epoch milliseconds). */
export class ManualClock {
  constructor(public nowMs: number) {}
  readonly now = (): number => this.nowMs;
  advance(ms: number): void {
    this.nowMs += ms;
  }
}
