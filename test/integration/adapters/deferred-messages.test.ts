/**
 * DynamoDeferredMessageStore against real dynalite: idempotent deposit (also after a failure
 * between its two writes), expiry filtering, ordering, pagination, lookups and the sweep list.
 */
import { GetCommand, type BatchGetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { documentClient, localDynamoClient } from '#shared/adapters/clients.ts';
import { DynamoDeferredMessageStore, messageSortKey } from '#shared/adapters/dynamodb/deferred-messages.ts';
import type { LocalBackend } from '../../support/aws-local/index.ts';
import { ALICE, NOW, memoryBackend, message } from './fixtures.ts';
import { claimOne, releaseOne, deleteOne } from '../../support/one-message.ts';

let backend: LocalBackend;
/** Page size 2: every multi-item read crosses pages. */
let store: DynamoDeferredMessageStore;

beforeAll(async () => {
  backend = await memoryBackend({ pageSize: 2 });
  store = new DynamoDeferredMessageStore(backend.clients.dynamo, backend.tables.messages, { pageSize: 2 });
});
afterAll(() => backend?.stop());

let userSeq = 0;
const freshUser = () => `sip:user${++userSeq}@example.com`;

describe('put and get', () => {
  it('stores a message and reads it back whole, payload bytes included', async () => {
    const user = freshUser();
    const m = message({ user, conversationId: 'conv-1', contributionId: 'contrib-1' });
    const put = await store.put(m);
    expect(put.created).toBe(true);
    expect(put.message.id).toBe(m.id);

    const got = await store.get(user, m.id, NOW);
    expect(got).toBeDefined();
    expect(got!.cpim).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(got!.cpim).equals(Buffer.from(m.cpim))).toBe(true);
    expect({ ...got!, cpim: undefined }).toEqual({ ...m, cpim: undefined });
  });

  it('keeps absent optional fields absent', async () => {
    const user = freshUser();
    const m = message({ user, subject: undefined, dispositionNotification: undefined });
    await store.put(m);
    const got = await store.get(user, m.id, NOW);
    expect(got).toBeDefined();
    expect('subject' in got!).toBe(false);
    expect('dispositionNotification' in got!).toBe(false);
  });

  it('does not reveal a message to another user, nor an unknown id', async () => {
    const user = freshUser();
    const m = message({ user });
    await store.put(m);
    expect(await store.get(freshUser(), m.id, NOW)).toBeUndefined();
    expect(await store.get(user, 'no-such-id', NOW)).toBeUndefined();
  });
});

describe('idempotent deposit', () => {
  it('stores the same (user, from, messageId) once and answers created:false with the first', async () => {
    const user = freshUser();
    const first = message({ user, messageId: 'dup-1', ageSeconds: 30 });
    const again = message({ user, messageId: 'dup-1', ageSeconds: 10 }); // a new id, a later arrival
    expect((await store.put(first)).created).toBe(true);
    const second = await store.put(again);
    expect(second.created).toBe(false);
    expect(second.message.id).toBe(first.id);
    expect(await store.count(user, NOW)).toBe(1);
    expect((await store.list(user, NOW)).map((m) => m.id)).toEqual([first.id]);
  });

  it('stores the same Message-ID from another sender, or to another user, separately', async () => {
    const user = freshUser();
    const other = freshUser();
    await store.put(message({ user, messageId: 'same' }));
    expect((await store.put(message({ user, messageId: 'same', from: 'sip:carol@example.org' }))).created).toBe(true);
    expect((await store.put(message({ user: other, messageId: 'same' }))).created).toBe(true);
    expect(await store.count(user, NOW)).toBe(2);
    expect(await store.count(other, NOW)).toBe(1);
  });

  it('stores a message exactly once under 10 concurrent identical deposits', async () => {
    const user = freshUser();
    const results = await Promise.all(
      Array.from({ length: 10 }, () => store.put(message({ user, messageId: 'burst' }))),
    );
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.message.id)).size).toBe(1);
    expect(await store.count(user, NOW)).toBe(1);
  });

  it('does not bring back a message delivered (deleted) before a late duplicate arrives', async () => {
    const user = freshUser();
    const m = message({ user, messageId: 'late-dup' });
    await store.put(m);
    expect(await deleteOne(store, user, m.id)).toBe(true);
    const dup = await store.put(message({ user, messageId: 'late-dup' }));
    expect(dup.created).toBe(false);
    expect(dup.message.id).toBe(m.id);
    expect(await store.count(user, NOW)).toBe(0);
  });

  it('completes a deposit whose message write failed after the dedupe write, once', async () => {
    // A client of its own whose first message PutItem fails, as a dropped connection would.
    const base = localDynamoClient(backend.aws.dynamoEndpoint);
    let failures = 0;
    base.middlewareStack.add(
      (next) => async (args) => {
        const item = (args.input as { Item?: Record<string, unknown> }).Item;
        if (failures === 0 && item && 'arrival' in item) {
          failures++;
          throw new Error('injected: connection reset');
        }
        return next(args);
      },
      { step: 'initialize', name: 'injectMessageWriteFailure' },
    );
    const flaky = new DynamoDeferredMessageStore(documentClient(base), backend.tables.messages);
    const user = freshUser();
    const first = message({ user, messageId: 'half' });

    await expect(flaky.put(first)).rejects.toThrow('injected');
    expect(failures).toBe(1);
    expect(await store.count(user, NOW)).toBe(0);

    // The sender retries (the deposit handler makes a new id): stored now, under the first id.
    const retry = await flaky.put(message({ user, messageId: 'half' }));
    expect(retry.created).toBe(true);
    expect(retry.message.id).toBe(first.id);
    const third = await store.put(message({ user, messageId: 'half' }));
    expect(third.created).toBe(false);
    expect(third.message.id).toBe(first.id);
    expect(await store.count(user, NOW)).toBe(1);
    expect((await store.get(user, first.id, NOW))?.messageId).toBe('half');
    base.destroy();
  });

  it('a deposit after retention takes the key of the expired copy TTL has not removed yet', async () => {
    const user = freshUser();
    const old = message({ user, messageId: 'reused', ageSeconds: 7200, ttl: -3600 });
    await store.put(old);
    const fresh = message({ user, messageId: 'reused', ageSeconds: 0 });
    const put = await store.put(fresh);
    expect(put.created).toBe(true);
    // The same key: the expired copy was removed as TTL would (a REMOVE on the stream, which
    // hands it to `expire` for its watchers and sender), and the new one stands there.
    expect(put.message.id).toBe(old.id);
    expect(await store.get(user, fresh.id, NOW)).toEqual(fresh);
    expect((await store.list(user, NOW)).map((m) => m.arrivedAt)).toEqual([fresh.arrivedAt]);
  });

  it('a put whose id is not the deposit id of its (user, from, messageId) is refused', async () => {
    await expect(store.put(message({ user: freshUser(), id: '01JNOTDERIVED0000000000000' }))).rejects.toThrow(/id/);
  });
});

describe('list and count', () => {
  it('lists oldest first, honours the limit and skips expired items across pages', async () => {
    const user = freshUser();
    const ages = [500, 400, 300, 200, 100, 50, 10];
    const expired = new Set([400, 200]); // interleaved, so pages hold fewer matches than Limit
    const stored = [];
    // Deposited newest first: the order must come from arrival, not from write order.
    for (const age of [...ages].reverse()) {
      const m = message({ user, ageSeconds: age, ttl: expired.has(age) ? -1 : 3600 });
      await store.put(m);
      stored.push(m);
    }
    const alive = ages.filter((a) => !expired.has(a));
    const byAge = new Map(stored.map((m) => [NOW - Date.parse(m.arrivedAt) / 1000, m.id]));

    expect((await store.list(user, NOW)).map((m) => m.id)).toEqual(alive.map((a) => byAge.get(a)));
    expect((await store.list(user, NOW, 3)).map((m) => m.id)).toEqual(alive.slice(0, 3).map((a) => byAge.get(a)));
    expect(await store.list(user, NOW, 0)).toEqual([]);
    // The summary counts what is stored: the two expired ones until the sweep removes them.
    expect(await store.count(user, NOW)).toBe(7);
    for (const m of stored) if (m.expiresAt <= NOW) await deleteOne(store, user, m.id);
    expect(await store.count(user, NOW)).toBe(5);
  });

  it('counts from an eventually consistent read when it has seen the change named, strongly consistent when not', async () => {
    const user = freshUser();
    // The summary revisions the store's own writes left, which the change fan-out passes on.
    await store.put(message({ user }));
    const afterFirst = store.revisions.latest(user)!;
    await store.put(message({ user }));
    const afterSecond = store.revisions.latest(user)!;
    expect(afterSecond).toBeGreaterThan(afterFirst);
    // A replica that has seen the first deposit only: its summary is one revision behind.
    let behind: Record<string, unknown> | undefined;
    const reads: boolean[] = [];
    const lagging = {
      send: async (command: GetCommand) => {
        reads.push(command.input.ConsistentRead === true);
        const out = await backend.clients.dynamo.send(command);
        if (command.input.ConsistentRead) return out;
        return { ...out, Item: behind };
      },
    } as unknown as DynamoDBDocumentClient;
    const replica = new DynamoDeferredMessageStore(lagging, backend.tables.messages);
    behind = { user, sk: 'summary', count: 1, rev: afterFirst };
    expect(await replica.count(user, NOW, afterFirst)).toBe(1);
    expect(reads).toEqual([false]);
    // The second deposit's NOTIFY must count it: that replica has not seen it, so read strongly.
    expect(await replica.count(user, NOW, afterSecond)).toBe(2);
    expect(reads).toEqual([false, false, true]);
    // Nothing named: strongly consistent at once.
    expect(await replica.count(user, NOW)).toBe(2);
    expect(reads).toEqual([false, false, true, true]);
    // A delivery's count update leaves a newer revision too.
    await store.uncount(user, { messages: 1, bytes: 1 });
    expect(store.revisions.latest(user)).toBeGreaterThan(afterSecond);
  });

  it('filters an item the moment it expires, though it is still stored (TTL deletes late)', async () => {
    const user = freshUser();
    const m = message({ user, ttl: 5 });
    await store.put(m);
    expect(await store.count(user, NOW + 4)).toBe(1);
    // Counted until removed (the sweep's delete subtracts it).
    expect(await store.count(user, NOW + 5)).toBe(1);
    expect(await store.list(user, NOW + 5)).toEqual([]);
    expect(await store.get(user, m.id, NOW + 5)).toBeUndefined();

    const raw = await backend.clients.dynamo.send(
      new GetCommand({ TableName: backend.tables.messages, Key: { user, sk: messageSortKey(m) } }),
    );
    expect(raw.Item?.sk).toBe(messageSortKey(m));
  });

  it('counts the same with the default (1 MB) page size', async () => {
    const user = freshUser();
    for (let i = 0; i < 5; i++) await store.put(message({ user }));
    const unpaged = new DynamoDeferredMessageStore(backend.clients.dynamo, backend.tables.messages);
    expect(await unpaged.count(user, NOW)).toBe(5);
    expect(await store.count(user, NOW)).toBe(5);
  });

  it('does not count or list the dedupe records', async () => {
    const user = freshUser();
    await store.put(message({ user, messageId: 'x' }));
    await store.put(message({ user, messageId: 'x' }));
    const listed = await store.list(user, NOW);
    expect(listed).toHaveLength(1);
    expect(listed[0]!.messageId).toBe('x');
  });
});

describe('delete', () => {
  it('answers true once, then false', async () => {
    const user = freshUser();
    const m = message({ user });
    await store.put(m);
    expect(await deleteOne(store, user, m.id)).toBe(true);
    expect(await deleteOne(store, user, m.id)).toBe(false);
    expect(await store.get(user, m.id, NOW)).toBeUndefined();
  });

  it("cannot delete another user's message", async () => {
    const user = freshUser();
    const m = message({ user });
    await store.put(m);
    expect(await deleteOne(store, freshUser(), m.id)).toBe(false);
    expect(await store.get(user, m.id, NOW)).toBeDefined();
  });

  it('removes an expired message that TTL has not removed yet', async () => {
    const user = freshUser();
    const m = message({ user, ttl: -10 });
    await store.put(m);
    expect(await deleteOne(store, user, m.id)).toBe(true);
  });
});

describe('listExpired', () => {
  it('lists nothing, expired or not: messages expire by TTL only, and its stream feeds `expire`', async () => {
    const user = freshUser();
    await store.put(message({ user, ttl: -1 }));
    expect(await store.listExpired(NOW + 10_000_000, 100)).toEqual([]);
    // Hidden from every read meanwhile.
    expect(await store.list(user, NOW)).toEqual([]);
  });
});

describe('through createPorts', () => {
  it('is the messages port of the local backend', async () => {
    const user = freshUser();
    const m = message({ user: user, to: ALICE });
    expect((await backend.ports.messages.put(m)).created).toBe(true);
    expect((await backend.ports.messages.get(user, m.id, NOW))?.id).toBe(m.id);
  });
});

describe('operator reads', () => {
  it('pages a user list by limit and cursor, oldest first, without gaps or repeats, expired ones left out', async () => {
    const user = freshUser();
    const live = [50, 40, 30, 20, 10].map((age) => message({ user, ageSeconds: age }));
    for (const m of live) await store.put(m);
    await store.put(message({ user, ageSeconds: 5, ttl: -1 }));
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await store.listPage(user, NOW, { limit: 2, ...(cursor ? { cursor } : {}) });
      expect(page.messages.length).toBeLessThanOrEqual(2);
      seen.push(...page.messages.map((m) => m.id));
      cursor = page.cursor;
      pages++;
    } while (cursor);
    expect(seen).toEqual(live.map((m) => m.id));
    expect(pages).toBe(3);
  });

  it('refuses a cursor it never returned', async () => {
    await expect(store.listPage(freshUser(), NOW, { limit: 2, cursor: 'bm9wZQ' })).rejects.toThrow(/cursor/);
  });

  it('counts the stored messages and the users holding them from the summaries, until TTL removes them', async () => {
    const before = await store.stats(NOW);
    const [u1, u2, u3] = [freshUser(), freshUser(), freshUser()];
    await store.put(message({ user: u1 }));
    await store.put(message({ user: u1 }));
    const delivered = message({ user: u2 });
    await store.put(delivered);
    await store.put(message({ user: u2 }));
    await deleteOne(store, u2, delivered.id);
    // Expired but not yet removed by TTL: still stored, so still counted.
    await store.put(message({ user: u3, ttl: -1 }));
    const after = await store.stats(NOW);
    expect(after.pending - before.pending).toBe(4);
    expect(after.users - before.users).toBe(3);
  });
});

describe('getMany (an INVITE’s ids in one batch)', () => {
  it('returns the known, unexpired ones without payload, and nothing of another user', async () => {
    const user = freshUser();
    const a = message({ user });
    const b = message({ user });
    const gone = message({ user, ttl: -1 });
    const foreign = message({ user: freshUser() });
    for (const m of [a, b, gone, foreign]) await store.put(m);
    const got = await store.getMany(user, [a.id, 'unknown', b.id, gone.id, foreign.id, a.id], NOW);
    expect(got.map((m) => m.id).sort()).toEqual([a.id, b.id].sort());
    expect(got.every((m) => !('cpim' in m) && !('sk' in m) && !('arrival' in m))).toBe(true);
    expect(got.find((m) => m.id === a.id)).toEqual(omitCpim(a));
  });

  it('reads more than one BatchGetItem’s worth of keys (100) in chunks', async () => {
    const user = freshUser();
    const made = [];
    for (let i = 0; i < 3; i++) {
      const m = message({ user });
      await store.put(m);
      made.push(m.id);
    }
    const ids = [...Array.from({ length: 150 }, (_, i) => `unknown-${i}`), ...made];
    expect((await store.getMany(user, ids, NOW)).map((m) => m.id).sort()).toEqual([...made].sort());
  });

  it('reads eventually consistent (half the units), and again strongly consistent only the ids that read missed', async () => {
    const user = freshUser();
    const old = message({ user });
    const fresh = message({ user });
    await store.put(old);
    await store.put(fresh);
    // A replica behind by the last deposit: the eventually consistent read does not see `fresh`.
    const reads: { consistent: boolean; keys: number }[] = [];
    const lagging = {
      send: async (command: BatchGetCommand) => {
        const request = command.input.RequestItems![backend.tables.messages]!;
        reads.push({ consistent: request.ConsistentRead === true, keys: request.Keys!.length });
        const out = await backend.clients.dynamo.send(command);
        if (request.ConsistentRead) return out;
        const items = out.Responses![backend.tables.messages]!.filter((item) => item.sk !== messageSortKey(fresh));
        return { ...out, Responses: { [backend.tables.messages]: items } };
      },
    } as unknown as DynamoDBDocumentClient;
    const behind = new DynamoDeferredMessageStore(lagging, backend.tables.messages);
    const got = await behind.getMany(user, [old.id, fresh.id], NOW);
    expect(got.map((m) => m.id).sort()).toEqual([old.id, fresh.id].sort());
    expect(reads).toEqual([
      { consistent: false, keys: 2 },
      { consistent: true, keys: 1 },
    ]);
  });
});

describe('claim and release (one delivery at a time per message)', () => {
  it('leases a message to one holder; another is refused until it is released or lapses', async () => {
    const user = freshUser();
    const m = message({ user });
    await store.put(m);
    const taken = await claimOne(store, user, m.id, 'session-1', NOW, 600);
    expect(taken && Buffer.from(taken.cpim).equals(Buffer.from(m.cpim))).toBe(true);
    expect(taken && !('leaseUntil' in taken) && !('leaseHolder' in taken)).toBe(true);
    expect(await claimOne(store, user, m.id, 'session-2', NOW, 600)).toBeUndefined();
    // The same session's retried job takes it again.
    expect(await claimOne(store, user, m.id, 'session-1', NOW + 1, 600)).toBeDefined();
    // Another holder's release does nothing; the holder's own frees it.
    await releaseOne(store, user, m.id, 'session-2');
    expect(await claimOne(store, user, m.id, 'session-2', NOW + 2, 600)).toBeUndefined();
    await releaseOne(store, user, m.id, 'session-1');
    expect(await claimOne(store, user, m.id, 'session-2', NOW + 3, 600)).toBeDefined();
    // A lapsed lease is taken over.
    expect(await claimOne(store, user, m.id, 'session-3', NOW + 3 + 601, 600)).toBeDefined();
    // Still listed while leased (it is still stored), and the claim did not touch the count.
    expect((await store.list(user, NOW)).map((e) => e.id)).toEqual([m.id]);
    expect(await store.count(user, NOW)).toBe(1);
  });

  it('refuses a claim on a message that is gone or expired', async () => {
    const user = freshUser();
    const m = message({ user, ttl: 5 });
    await store.put(m);
    expect(await claimOne(store, user, m.id, 's', NOW + 5, 600)).toBeUndefined();
    expect(await claimOne(store, user, 'unknown', 's', NOW, 600)).toBeUndefined();
    await deleteOne(store, user, m.id);
    expect(await claimOne(store, user, m.id, 's', NOW, 600)).toBeUndefined();
    expect(await store.count(user, NOW)).toBe(0);
  });
});

function omitCpim<T extends { cpim: unknown }>(m: T): Omit<T, 'cpim'> {
  const { cpim: _payload, ...rest } = m;
  return rest;
}
