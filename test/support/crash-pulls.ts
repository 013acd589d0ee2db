/**
 * Pulls against a service that is killed with SIGKILL at random moments (issue 11 "Done when"):
 * the service as `npm start` runs it (dist/edge/main.js, a separate process) on one data folder
 * with the default SQLite store, restarted on that folder after each kill. Clients pull
 * (SUBSCRIBE → NOTIFY → INVITE retrieve → MSRP SEND/200 → BYE) side by side, several per user,
 * and record every delivery by imdn.Message-ID and the run of the service (epoch) it came from.
 *
 * Whether the service processed a client's 200 is read from the store, not guessed: after each
 * restart, before any client runs again, the store is listed; a message delivered earlier and
 * now gone had its deletion committed in an earlier run. Then:
 * - a duplicate is a delivery after the deletion was committed (a later run than the one whose
 *   end the store no longer held it), or a second delivery within one run of the service (no
 *   kill between: never allowed);
 * - any other second delivery is a re-send of a message whose 200 was never processed
 *   (allowed: the client drops it by Message-ID);
 * - lost is deposited (201), never delivered and not in the store at the end.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CpmClient } from '#functions/edge/cpm-client.ts';
import { namespacedHeader, parseCpim } from '#shared/cpim/cpim.ts';
import { decodeList } from '#shared/deferred/list-codec.ts';
import { IMDN_NAMESPACE } from '#shared/deferred/names.ts';
import { connectMsrp } from '#shared/msrp/client.ts';
import { parseMsrpOffer } from '#shared/sdp/msrp-sdp.ts';
import { ADMIN_AUTH, depositHttp, spawnEdge, type ChildEdge } from '../e2e/support.ts';

export interface CrashRunOptions {
  users: number;
  /** Messages deposited per user at the start, and topped up to between runs. */
  messagesPerUser: number;
  /** Between runs, a user holding fewer than this many gets topped up (0: never). */
  refillBelow: number;
  pullersPerUser: number;
  kills: number;
  /** Each kill comes a uniform [0, this] ms after the run's first delivery. */
  maxKillDelayMs: number;
  /** Each pull retrieves 1 to this many of the listed messages, picked at random. */
  idsPerPull: number;
  /** After the last kill, pull until the store is empty or this long has passed. */
  drainMs: number;
  random?: () => number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface Duplicate {
  messageId: string;
  epoch: number;
  why: 'again in one run of the service' | 'after its deletion was committed';
}

export interface CrashReport {
  deposited: number;
  /** Message-IDs delivered at least once. */
  delivered: number;
  /** Still in the store at the end. */
  stored: number;
  /** Delivered, yet still stored at the end: no 200 of theirs was processed (allowed). */
  deliveredStillStored: number;
  lost: string[];
  duplicated: Duplicate[];
  /** Second deliveries of a message whose 200 the service never processed (allowed). */
  resends: number;
  /**
   * Deliveries in pulls a kill cut short (200 written, BYE never came: "maybe processed" for
   * the client), split by what the store showed after the restart.
   */
  cutShort: { processed: number; notProcessed: number };
  deliveries: number;
  /** Deliveries whose CPIM named no imdn.Message-ID (none expected). */
  unidentified: number;
  kills: number;
  pulls: { completed: number; interrupted: number };
  seconds: number;
}

const BOB = 'sip:bob@example.net';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class KilledError extends Error {}

/** One run of the service, from its start to its kill. */
class Epoch {
  readonly killed: Promise<never>;
  dead = false;
  private kill!: (err: Error) => void;
  private readonly closers = new Set<() => unknown>();
  private sawDelivery!: () => void;
  readonly firstDelivery = new Promise<void>((resolve) => (this.sawDelivery = resolve));

  constructor(
    readonly number: number,
    readonly edge: ChildEdge,
  ) {
    this.killed = new Promise<never>((_, reject) => (this.kill = reject));
    this.killed.catch(() => undefined);
  }

  get adminUrl(): string {
    return `http://127.0.0.1:${this.edge.ports.admin}`;
  }

  /** `p`, or a KilledError as soon as this run ends. */
  guard<T>(p: Promise<T>): Promise<T> {
    p.catch(() => undefined);
    return Promise.race([p, this.killed]);
  }

  /** Close this when the run ends; returns the untrack function. */
  track(close: () => unknown): () => void {
    this.closers.add(close);
    return () => this.closers.delete(close);
  }

  delivered(): void {
    this.sawDelivery();
  }

  end(): void {
    this.dead = true;
    this.kill(new KilledError(`run ${this.number} ended`));
    for (const close of this.closers) void Promise.resolve(close()).catch(() => undefined);
    this.closers.clear();
  }
}

/** Every stored message of a user, paged through the operator API: store id → imdn.Message-ID. */
async function storedOf(adminUrl: string, user: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let cursor: string | undefined;
  do {
    const q = new URLSearchParams({ user, limit: '500', ...(cursor ? { cursor } : {}) });
    const res = await fetch(`${adminUrl}/api/messages?${q}`, { headers: ADMIN_AUTH });
    if (res.status !== 200) throw new Error(`listing ${user}: HTTP ${res.status}`);
    const page = (await res.json()) as { entries: { id: string; messageId: string }[]; cursor?: string };
    for (const e of page.entries) out.set(e.id, e.messageId);
    cursor = page.cursor;
  } while (cursor);
  return out;
}

export async function runCrashPulls(opts: CrashRunOptions): Promise<CrashReport> {
  const random = opts.random ?? Math.random;
  const log = opts.log ?? (() => undefined);
  const started = performance.now();
  const dataDir = await mkdtemp(join(tmpdir(), 'deferred-crash-'));
  const users = Array.from({ length: opts.users }, (_, u) => `sip:crash${u}@example.com`);
  const deposited = new Set<string>();
  /** Every delivery by Message-ID; `cutShort` until its pull ended with the service's BYE. */
  const deliveries = new Map<string, { epoch: number; cutShort: boolean }[]>();
  /** Message-ID → the run after whose end the store no longer held it. */
  const goneAfter = new Map<string, number>();
  const pulls = { completed: 0, interrupted: 0 };
  let depositCount = 0;
  let deliveryCount = 0;
  let kills = 0;
  let unidentified = 0;
  let stopped = false;

  let epoch: Epoch | undefined;
  let waiting: ((e: Epoch | undefined) => void)[] = [];
  /** The running service; undefined once the run is over. */
  const live = (): Promise<Epoch | undefined> =>
    stopped || (epoch && !epoch.dead)
      ? Promise.resolve(stopped ? undefined : epoch)
      : new Promise((resolve) => waiting.push(resolve));

  const start = async (n: number): Promise<Epoch> => new Epoch(n, await spawnEdge({ DATA_DIR: dataDir }));
  const open = (e: Epoch | undefined) => {
    epoch = e;
    const w = waiting;
    waiting = [];
    for (const resolve of w) resolve(e);
  };

  /** The store as this run found it: every user's messages, by imdn.Message-ID. */
  const snapshot = async (e: Epoch): Promise<Map<string, Set<string>>> => {
    const byUser = new Map<string, Set<string>>();
    for (const user of users) byUser.set(user, new Set((await storedOf(e.adminUrl, user)).values()));
    return byUser;
  };

  const topUp = async (e: Epoch, byUser: Map<string, Set<string>>, always: boolean) => {
    await Promise.all(
      users.map(async (user) => {
        const held = byUser.get(user)!.size;
        if (!always && (opts.refillBelow <= 0 || held >= opts.refillBelow)) return;
        for (let i = held; i < opts.messagesPerUser; i++) {
          const messageId = `crash-${depositCount++}`;
          const reply = await depositHttp(e.adminUrl, { to: user, from: BOB, body: `message ${messageId}`, messageId });
          if (reply.status !== 201) throw new Error(`deposit ${messageId}: HTTP ${reply.status}`);
          deposited.add(messageId);
          byUser.get(user)!.add(messageId);
        }
      }),
    );
  };

  const record = (e: Epoch, cpim: Buffer, pulled: { cutShort: boolean }[]) => {
    const parsed = parseCpim(cpim);
    const messageId = parsed.ok ? namespacedHeader(parsed, IMDN_NAMESPACE, 'Message-ID') : undefined;
    if (!messageId) {
      unidentified++;
      return;
    }
    const list = deliveries.get(messageId) ?? [];
    const delivery = { epoch: e.number, cutShort: true };
    list.push(delivery);
    pulled.push(delivery);
    deliveries.set(messageId, list);
    deliveryCount++;
    e.delivered();
  };

  /** One pull: SUBSCRIBE, the first NOTIFY, unsubscribe, INVITE some listed ids, MSRP, BYE. */
  const pull = async (e: Epoch, user: string): Promise<void> => {
    const client = await e.guard(
      CpmClient.connect({ transport: 'tcp', server: { host: '127.0.0.1', port: e.edge.ports.tcp! }, user }),
    );
    const untrack = e.track(() => client.close());
    try {
      const sub = await e.guard(client.subscribe({ expires: 60 }));
      if (sub.response.status !== 200) throw new Error(`SUBSCRIBE ${sub.response.status}`);
      const list = decodeList((await e.guard(client.nextNotify(sub.dialog))).body.toString('utf8'));
      await e.guard(client.refresh(sub.dialog, 0));
      if (!list.ok) throw new Error(`NOTIFY: ${list.reason}`);
      if (list.entries.length === 0) {
        await sleep(50);
        return;
      }
      const entries = [...list.entries];
      for (let i = entries.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [entries[i], entries[j]] = [entries[j]!, entries[i]!];
      }
      const picked = entries.slice(0, 1 + Math.floor(random() * opts.idsPerPull));
      const inv = await e.guard(client.invite(picked.map((m) => ({ id: m.id, action: 'retrieve' as const }))));
      if (inv.response.status !== 200) throw new Error(`INVITE ${inv.response.status}`);
      const answer = parseMsrpOffer(inv.response.body.toString('utf8'));
      if (!answer.ok) throw new Error(`INVITE answer: ${answer.reason}`);
      const bye = client.nextBye(inv.dialog, 60_000);
      bye.catch(() => undefined);
      const pulled: { cutShort: boolean }[] = [];
      const msrp = await e.guard(
        connectMsrp({ localPath: inv.msrpPath, remotePath: answer.path, onMessage: (m) => record(e, m.body, pulled) }),
      );
      const untrackMsrp = e.track(() => msrp.close());
      try {
        await e.guard(bye);
        for (const d of pulled) d.cutShort = false;
      } finally {
        untrackMsrp();
        await msrp.close();
      }
      pulls.completed++;
    } finally {
      untrack();
      client.close();
    }
  };

  const puller = async (user: string) => {
    while (!stopped) {
      const e = await live();
      if (!e) return;
      try {
        await pull(e, user);
      } catch (err) {
        pulls.interrupted++;
        // The service died under the pull: wait for the next run. Any other failure: retry.
        if (!(err instanceof KilledError) && !e.dead) await sleep(100);
      }
    }
  };

  try {
    let current = await start(0);
    let byUser = await snapshot(current);
    await topUp(current, byUser, true);
    log(`deposited ${deposited.size} for ${users.length} users`);
    open(current);
    const pullers = users.flatMap((user) => Array.from({ length: opts.pullersPerUser }, () => puller(user)));

    while (kills < opts.kills) {
      await Promise.race([current.firstDelivery, sleep(10_000)]);
      await sleep(random() * opts.maxKillDelayMs);
      const exited = new Promise((resolve) => current.edge.child.once('exit', resolve));
      current.edge.child.kill('SIGKILL');
      await exited;
      kills++;
      current.end();

      current = await start(kills);
      // Before any client runs again: what the store holds is what the last run committed.
      byUser = await snapshot(current);
      const stored = new Set([...byUser.values()].flatMap((s) => [...s]));
      for (const messageId of deliveries.keys()) {
        if (!stored.has(messageId) && !goneAfter.has(messageId)) goneAfter.set(messageId, kills - 1);
      }
      await topUp(current, byUser, false);
      if (kills % 10 === 0 || kills === opts.kills) {
        log(`kills ${kills}: ${deliveryCount} deliveries, ${stored.size} stored, ${deposited.size} deposited`);
      }
      open(current);
    }

    // The last run is not killed: pull until nothing is left (or drainMs).
    const drainUntil = performance.now() + opts.drainMs;
    while (performance.now() < drainUntil) {
      const left = await snapshot(current);
      if ([...left.values()].every((s) => s.size === 0)) break;
      await sleep(250);
    }
    stopped = true;
    current.end();
    open(undefined);
    await Promise.all(pullers);

    const final = await snapshot(current);
    const stored = new Set([...final.values()].flatMap((s) => [...s]));
    const duplicated: Duplicate[] = [];
    let resends = 0;
    const cutShort = { processed: 0, notProcessed: 0 };
    for (const [messageId, list] of deliveries) {
      for (const d of list) {
        if (!d.cutShort || d.epoch === current.number) continue;
        if ((goneAfter.get(messageId) ?? Infinity) <= d.epoch) cutShort.processed++;
        else cutShort.notProcessed++;
      }
      for (let k = 1; k < list.length; k++) {
        const d = list[k]!;
        if (list.slice(0, k).some((earlier) => earlier.epoch === d.epoch)) {
          duplicated.push({ messageId, epoch: d.epoch, why: 'again in one run of the service' });
        } else if ((goneAfter.get(messageId) ?? Infinity) < d.epoch) {
          duplicated.push({ messageId, epoch: d.epoch, why: 'after its deletion was committed' });
        } else resends++;
      }
    }
    const exited = new Promise((resolve) => current.edge.child.once('exit', resolve));
    current.edge.child.kill('SIGTERM');
    await exited;
    return {
      deposited: deposited.size,
      delivered: deliveries.size,
      stored: stored.size,
      deliveredStillStored: [...deliveries.keys()].filter((id) => stored.has(id)).length,
      lost: [...deposited].filter((id) => !deliveries.has(id) && !stored.has(id)),
      duplicated,
      resends,
      cutShort,
      deliveries: deliveryCount,
      unidentified,
      kills,
      pulls,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    stopped = true;
    epoch?.end();
    open(undefined);
    if (epoch && epoch.edge.child.exitCode === null && epoch.edge.child.signalCode === null) {
      epoch.edge.child.kill('SIGKILL');
    }
    await rm(dataDir, { recursive: true, force: true });
  }
}
