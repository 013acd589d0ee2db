/**
 * The store methods an INVITE and a delivery rely on, held to one behaviour in the in-memory
 * fake, the SQLite adapter and the DynamoDB adapter (on dynalite): `getMany` (one batch, no
 * payload, nothing foreign or expired) and `claim`/`release` (a message is delivered by one
 * session at a time).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDeferredMessageStore } from '#shared/adapters/dynamodb/deferred-messages.ts';
import { openSqliteBackend, type SqliteBackend } from '#shared/adapters/sqlite/index.ts';
import type { DeferredMessageStore } from '#shared/ports.ts';
import { MemoryMessageStore } from '../../support/memory-ports.ts';
import type { LocalBackend } from '../../support/aws-local/index.ts';
import { NOW, memoryBackend, message } from './fixtures.ts';
import { claimOne, releaseOne, deleteOne } from '../../support/one-message.ts';

let dynamo: LocalBackend;
let sqlite: SqliteBackend;
let dataDir: string;

beforeAll(async () => {
  dynamo = await memoryBackend();
  dataDir = await mkdtemp(path.join(tmpdir(), 'claims-'));
  sqlite = await openSqliteBackend({ dataDir });
});
afterAll(async () => {
  await dynamo?.stop();
  sqlite?.close();
  await rm(dataDir, { recursive: true, force: true });
});

const stores: [string, () => DeferredMessageStore][] = [
  ['memory', () => new MemoryMessageStore()],
  ['sqlite', () => sqlite.ports.messages],
  ['dynamodb', () => new DynamoDeferredMessageStore(dynamo.clients.dynamo, dynamo.tables.messages)],
];

let userSeq = 0;
const freshUser = () => `sip:claims${++userSeq}@example.com`;

describe.each(stores)('%s store', (_name, make) => {
  it('getMany returns the known, unexpired ones among the ids, without payload', async () => {
    const store = make();
    const user = freshUser();
    const [a, b, gone, foreign] = [
      message({ user }),
      message({ user }),
      message({ user, ttl: -1 }),
      message({ user: freshUser() }),
    ];
    for (const m of [a!, b!, gone!, foreign!]) await store.put(m);
    const got = await store.getMany(user, [a!.id, 'unknown', b!.id, gone!.id, foreign!.id, a!.id], NOW);
    expect(got.map((m) => m.id).sort()).toEqual([a!.id, b!.id].sort());
    const { cpim: _payload, ...entry } = a!;
    expect(got.find((m) => m.id === a!.id)).toEqual(entry);
    expect(await store.getMany(user, [], NOW)).toEqual([]);
  });

  it('claim: one holder at a time; the holder again; release frees it; a lapsed lease is taken', async () => {
    const store = make();
    const user = freshUser();
    const m = message({ user });
    await store.put(m);
    const taken = await claimOne(store, user, m.id, 'phone', NOW, 600);
    expect(taken && Buffer.from(taken.cpim).equals(Buffer.from(m.cpim))).toBe(true);
    expect(await claimOne(store, user, m.id, 'laptop', NOW, 600)).toBeUndefined();
    expect(await claimOne(store, user, m.id, 'phone', NOW + 1, 600)).toBeDefined();
    await releaseOne(store, user, m.id, 'laptop');
    expect(await claimOne(store, user, m.id, 'laptop', NOW + 2, 600)).toBeUndefined();
    await releaseOne(store, user, m.id, 'phone');
    expect(await claimOne(store, user, m.id, 'laptop', NOW + 3, 600)).toBeDefined();
    expect(await claimOne(store, user, m.id, 'tablet', NOW + 3 + 601, 600)).toBeDefined();
    // Claimed, still stored and listed.
    expect((await store.list(user, NOW)).map((e) => e.id)).toEqual([m.id]);
    expect(await store.count(user, NOW)).toBe(1);
  });

  it('claim refuses what is gone, unknown or expired', async () => {
    const store = make();
    const user = freshUser();
    const m = message({ user, ttl: 5 });
    await store.put(m);
    expect(await claimOne(store, user, m.id, 's', NOW + 5, 600)).toBeUndefined();
    expect(await claimOne(store, user, 'unknown', 's', NOW, 600)).toBeUndefined();
    expect(await claimOne(store, freshUser(), m.id, 's', NOW, 600)).toBeUndefined();
    expect(await deleteOne(store, user, m.id)).toBe(true);
    expect(await claimOne(store, user, m.id, 's', NOW, 600)).toBeUndefined();
  });

  it('two claims racing for one message: exactly one wins', async () => {
    const store = make();
    const user = freshUser();
    const m = message({ user });
    await store.put(m);
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => claimOne(store, user, m.id, `session-${i}`, NOW, 600)),
    );
    expect(results.filter((r) => r !== undefined)).toHaveLength(1);
  });
});
