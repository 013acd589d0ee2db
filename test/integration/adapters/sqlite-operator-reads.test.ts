/** The operator's reads on the local default's SQLite store: list pages, cross-user counts. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteBackend, type SqliteBackend } from '#shared/adapters/sqlite/index.ts';
import { NOW, dialog, message, subscription } from './fixtures.ts';

let dir: string;
let backend: SqliteBackend;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deferred-sqlite-ops-'));
  backend = await openSqliteBackend({ dataDir: dir });
});
afterAll(async () => {
  backend?.close();
  await rm(dir, { recursive: true, force: true });
});

let seq = 0;
const freshUser = () => `sip:ops${++seq}@example.com`;

describe('SQLite operator reads', () => {
  it('pages a user list by limit and cursor, oldest first, without gaps or repeats, expired ones left out', async () => {
    const store = backend.ports.messages;
    const user = freshUser();
    // Two messages in the same second: the cursor must order by id within it.
    const live = [50, 40, 40, 20, 10].map((age) => message({ user, ageSeconds: age }));
    for (const m of live) await store.put(m);
    await store.put(message({ user, ageSeconds: 5, ttl: -1 }));
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.listPage(user, NOW, { limit: 2, ...(cursor ? { cursor } : {}) });
      expect(page.messages.length).toBeLessThanOrEqual(2);
      seen.push(...page.messages.map((m) => m.id));
      cursor = page.cursor;
    } while (cursor);
    const order = [...live].sort((a, b) => a.arrivedAt.localeCompare(b.arrivedAt) || a.id.localeCompare(b.id));
    expect(seen).toEqual(order.map((m) => m.id));
    await expect(store.listPage(user, NOW, { limit: 2, cursor: 'bm9wZQ' })).rejects.toThrow(/cursor/);
  });

  it('counts unexpired messages, users holding them and active subscriptions', async () => {
    const before = await backend.ports.messages.stats(NOW);
    const subsBefore = await backend.ports.subscriptions.countActive(NOW);
    const [u1, u2] = [freshUser(), freshUser()];
    await backend.ports.messages.put(message({ user: u1 }));
    await backend.ports.messages.put(message({ user: u1 }));
    await backend.ports.messages.put(message({ user: u2 }));
    await backend.ports.messages.put(message({ user: freshUser(), ttl: -1 }));
    const after = await backend.ports.messages.stats(NOW);
    expect(after.pending - before.pending).toBe(3);
    expect(after.users - before.users).toBe(2);
    await backend.ports.subscriptions.put(subscription({ user: u1, dialog: dialog({ callId: `c-${seq}-1` }) }));
    await backend.ports.subscriptions.put(
      subscription({ user: u2, dialog: dialog({ callId: `c-${seq}-2` }), expiresAt: NOW - 1 }),
    );
    expect((await backend.ports.subscriptions.countActive(NOW)) - subsBefore).toBe(1);
  });
});
