/**
 * SqliteSubscriptionStore's refresh: a renew that names the refresh's flow moves the
 * subscription to the edge task holding the client now, as DynamoSubscriptionStore does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteDatabase, SqliteSubscriptionStore } from '#shared/adapters/sqlite/index.ts';
import { NOW, dialog, subscription, tempDir } from './fixtures.ts';

describe('SQLite subscriptions: renew', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let db: SqliteDatabase;
  let subs: SqliteSubscriptionStore;

  beforeAll(async () => {
    dir = await tempDir();
    db = await SqliteDatabase.open({ dataDir: dir.dir });
    subs = new SqliteSubscriptionStore(db);
  });
  afterAll(async () => {
    db?.close();
    await dir?.remove();
  });

  it('renews onto the flow of the edge task the refresh came through, leaving the rest of the dialog', async () => {
    const user = 'sip:alice@example.com';
    const first = { ...dialog().flow, edgeId: 'http://10.0.1.23:8080' };
    const sub = subscription({ user, dialog: { ...dialog({ flow: first }), remoteCSeq: 1 } });
    await subs.put(sub);
    const flow = { ...first, edgeId: 'http://10.0.2.44:8080', remotePort: 41000 };
    expect(await subs.renew(user, sub.dialogId, NOW + 600, 2, flow)).toBe(true);
    expect(await subs.get(user, sub.dialogId, NOW)).toEqual({
      ...sub,
      expiresAt: NOW + 600,
      dialog: { ...sub.dialog, remoteCSeq: 2, flow },
    });
    // Without a flow (and without a CSeq) only the expiry changes.
    expect(await subs.renew(user, sub.dialogId, NOW + 900)).toBe(true);
    expect((await subs.get(user, sub.dialogId, NOW))?.dialog).toEqual({ ...sub.dialog, remoteCSeq: 2, flow });
    expect(await subs.renew(user, 'gone;x;y', NOW + 900, 3, flow)).toBe(false);
  });
});
