/**
 * DynamoSubscriptionStore and DynamoDeliverySessionStore against real dynalite: round trips of
 * the dialog state, expiry filtering, conditional renew, and the atomic counters that give
 * NOTIFY and BYE their CSeq (RFC 3261 §12.2.1.1: strictly increasing within a dialog).
 */
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDeliverySessionStore } from '#shared/adapters/dynamodb/delivery-sessions.ts';
import { DynamoSubscriptionStore } from '#shared/adapters/dynamodb/subscriptions.ts';
import type { LocalBackend } from '../../support/aws-local/index.ts';
import { NOW, dialog, memoryBackend, session, subscription } from './fixtures.ts';

let backend: LocalBackend;
let subs: DynamoSubscriptionStore;
let sessions: DynamoDeliverySessionStore;
let clockMs = NOW * 1000;

beforeAll(async () => {
  backend = await memoryBackend({ pageSize: 2 });
  subs = new DynamoSubscriptionStore(backend.clients.dynamo, backend.tables.subscriptions, { pageSize: 2 });
  sessions = new DynamoDeliverySessionStore(backend.clients.dynamo, backend.tables.sessions, { now: () => clockMs });
});
afterAll(() => backend?.stop());

let seq = 0;
const freshUser = () => `sip:watcher${++seq}@example.com`;
const dialogFor = (n: number, edgeId = 'http://10.0.1.23:8080') =>
  dialog({ callId: `call-${seq}-${n}@pc33.example.com`, flow: { ...dialog().flow, edgeId } });

describe('subscriptions', () => {
  it('counts the unexpired subscriptions across users (the operator gauge)', async () => {
    const before = await subs.countActive(NOW);
    const user = freshUser();
    await subs.put(subscription({ user, dialog: dialogFor(1) }));
    await subs.put(subscription({ user: freshUser(), dialog: dialogFor(2) }));
    await subs.put(subscription({ user, dialog: dialogFor(3), expiresAt: NOW - 1 }));
    expect((await subs.countActive(NOW)) - before).toBe(2);
  });

  it('round-trips a subscription with its dialog state', async () => {
    const user = freshUser();
    const sub = subscription({ user, dialog: dialogFor(1), version: 3 });
    sub.dialog.localCSeq = 7;
    await subs.put(sub);
    expect(await subs.get(user, sub.dialogId, NOW)).toEqual(sub);
  });

  it('keeps a dialog without optional flow fields as it was', async () => {
    const user = freshUser();
    const d = dialogFor(2);
    delete d.flow.connectionId;
    d.routeSet = [];
    const sub = subscription({ user, dialog: d });
    await subs.put(sub);
    const got = await subs.get(user, sub.dialogId, NOW);
    expect(got?.dialog.routeSet).toEqual([]);
    expect(got && 'connectionId' in got.dialog.flow).toBe(false);
  });

  it('hides an expired subscription from get and listByUser while it is still stored', async () => {
    const user = freshUser();
    const sub = subscription({ user, dialog: dialogFor(1), expiresAt: NOW + 10 });
    await subs.put(sub);
    expect(await subs.get(user, sub.dialogId, NOW + 9)).toBeDefined();
    expect(await subs.get(user, sub.dialogId, NOW + 10)).toBeUndefined();
    expect(await subs.listByUser(user, NOW + 10)).toEqual([]);
    const raw = await backend.clients.dynamo.send(
      new GetCommand({ TableName: backend.tables.subscriptions, Key: { user, dialogId: sub.dialogId } }),
    );
    expect(raw.Item).toBeDefined();
  });

  it('lists only the active, unexpired subscriptions of the user, across pages', async () => {
    const user = freshUser();
    const active = [1, 2, 3, 4, 5].map((n) => subscription({ user, dialog: dialogFor(n) }));
    for (const s of active) await subs.put(s);
    await subs.put(subscription({ user, dialog: dialogFor(6), state: 'terminated' }));
    await subs.put(subscription({ user, dialog: dialogFor(7), expiresAt: NOW - 1 }));
    await subs.put(subscription({ user: freshUser(), dialog: dialogFor(8) }));

    const listed = await subs.listByUser(user, NOW);
    expect(listed.map((s) => s.dialogId).sort()).toEqual(active.map((s) => s.dialogId).sort());
  });

  it('renews only an existing subscription, leaving its counters alone', async () => {
    const user = freshUser();
    const sub = subscription({ user, dialog: dialogFor(1) });
    await subs.put(sub);
    await subs.nextNotify(user, sub.dialogId);
    expect(await subs.renew(user, sub.dialogId, NOW + 3600)).toBe(true);
    const got = await subs.get(user, sub.dialogId, NOW);
    expect(got?.expiresAt).toBe(NOW + 3600);
    expect(got?.version).toBe(1);
    expect(got?.dialog.localCSeq).toBe(1);

    expect(await subs.renew(user, 'gone;x;y', NOW + 3600)).toBe(false);
    expect(await subs.get(user, 'gone;x;y', NOW)).toBeUndefined();
  });

  it('renews together with the remote CSeq and returns it in the dialog (RFC 3261 §12.2.2)', async () => {
    const user = freshUser();
    const sub = subscription({ user, dialog: { ...dialogFor(1), remoteCSeq: 1 } });
    await subs.put(sub);
    expect(await subs.get(user, sub.dialogId, NOW)).toEqual(sub);
    await subs.nextNotify(user, sub.dialogId);

    expect(await subs.renew(user, sub.dialogId, NOW + 7200, 5)).toBe(true);
    const got = await subs.get(user, sub.dialogId, NOW);
    expect(got?.dialog.remoteCSeq).toBe(5);
    expect(got?.expiresAt).toBe(NOW + 7200);
    expect(got?.dialog.localCSeq).toBe(1);
    expect(got?.version).toBe(1);
    const raw = await backend.clients.dynamo.send(
      new GetCommand({ TableName: backend.tables.subscriptions, Key: { user, dialogId: sub.dialogId } }),
    );
    expect(raw.Item?.remoteCSeq).toBe(5);
    expect(raw.Item?.dialog).not.toHaveProperty('remoteCSeq');

    expect(await subs.renew(user, sub.dialogId, NOW + 7300)).toBe(true);
    expect((await subs.get(user, sub.dialogId, NOW))?.dialog.remoteCSeq).toBe(5);
    expect(await subs.renew(user, 'gone;x;y', NOW + 3600, 6)).toBe(false);
    expect(await subs.get(user, 'gone;x;y', NOW)).toBeUndefined();
  });

  it('renews onto the flow of the edge task the refresh came through, leaving the rest of the dialog', async () => {
    const user = freshUser();
    const sub = subscription({ user, dialog: { ...dialogFor(1, 'http://10.0.1.23:8080'), remoteCSeq: 1 } });
    await subs.put(sub);
    const flow = { ...sub.dialog.flow, edgeId: 'http://10.0.2.44:8080', remotePort: 41000 };
    expect(await subs.renew(user, sub.dialogId, NOW + 600, 2, flow)).toBe(true);
    const got = await subs.get(user, sub.dialogId, NOW);
    expect(got).toEqual({ ...sub, expiresAt: NOW + 600, dialog: { ...sub.dialog, remoteCSeq: 2, flow } });
    expect((await subs.listByUser(user, NOW)).map((s) => s.dialog.flow.edgeId)).toEqual(['http://10.0.2.44:8080']);
  });

  // The version handed out numbers this NOTIFY from 0 (protocol.md); the record keeps how many were taken.
  it('takes NOTIFY counters one step at a time, then none once the subscription is deleted', async () => {
    const user = freshUser();
    const sub = subscription({ user, dialog: dialogFor(1) });
    sub.dialog.localCSeq = 10;
    await subs.put(sub);
    // Each turn comes with the subscription as its update left it (a NOTIFY by dialog id reads nothing else).
    expect(await subs.nextNotify(user, sub.dialogId)).toEqual({
      cseq: 11,
      version: 0,
      subscription: { ...sub, version: 1, dialog: { ...sub.dialog, localCSeq: 11 } },
    });
    expect(await subs.nextNotify(user, sub.dialogId)).toMatchObject({ cseq: 12, version: 1 });
    await subs.delete(user, sub.dialogId);
    expect(await subs.nextNotify(user, sub.dialogId)).toBeUndefined();
    // The counter update did not recreate the deleted item.
    expect(await subs.get(user, sub.dialogId, NOW)).toBeUndefined();
  });

  it('hands out strictly increasing, distinct CSeqs under 50 concurrent NOTIFYs', async () => {
    const user = freshUser();
    const sub = subscription({ user, dialog: dialogFor(1) });
    await subs.put(sub);
    const taken = await Promise.all(Array.from({ length: 50 }, () => subs.nextNotify(user, sub.dialogId)));
    const cseqs = taken.map((t) => t!.cseq).sort((a, b) => a - b);
    const versions = taken.map((t) => t!.version).sort((a, b) => a - b);
    expect(cseqs).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(versions).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(await subs.nextNotify(user, sub.dialogId)).toMatchObject({ cseq: 51, version: 50 });
  });

  it('lists expired subscriptions across users for the sweep, soonest first, up to the limit', async () => {
    const later = NOW + 50_000_000;
    const users = [freshUser(), freshUser()];
    const expiring = [0, 1, 2, 3].map((n) =>
      subscription({ user: users[n % 2], dialog: dialogFor(n), expiresAt: NOW + 40_000_000 + n }),
    );
    for (const s of expiring) await subs.put(s);
    await subs.put(subscription({ user: users[0], dialog: dialogFor(9), expiresAt: later + 1 }));

    const listed = (await subs.listExpired(later, 100)).filter((s) => users.includes(s.user));
    expect(listed.map((s) => s.dialogId)).toEqual(expiring.map((s) => s.dialogId));
    expect(listed[0]).toEqual(expiring[0]);
    expect(await subs.listExpired(later, 3)).toHaveLength(3);
    expect(await subs.listExpired(0, 10)).toEqual([]);
  });
});

describe('delivery sessions', () => {
  it('round-trips a session', async () => {
    const s = session({ sessionId: 'rt-1' });
    await sessions.put(s);
    expect(await sessions.get('rt-1')).toEqual(s);
    expect(await sessions.get('unknown')).toBeUndefined();
  });

  it('updates state and retrieve list, and ignores an update of a removed session', async () => {
    await sessions.put(session({ sessionId: 'up-1' }));
    await sessions.update('up-1', { state: 'delivering' });
    await sessions.update('up-1', { retrieve: ['01JB'] });
    const got = await sessions.get('up-1');
    expect(got?.state).toBe('delivering');
    expect(got?.retrieve).toEqual(['01JB']);
    await sessions.update('up-1', { state: 'done', retrieve: [] });
    expect(await sessions.get('up-1')).toMatchObject({ state: 'done', retrieve: [] });

    await sessions.delete('up-1');
    await sessions.update('up-1', { state: 'delivering' });
    expect(await sessions.get('up-1')).toBeUndefined();
  });

  it('takes the next CSeq of the INVITE dialog for BYE, none once deleted', async () => {
    const s = session({ sessionId: 'cseq-1' });
    s.dialog.localCSeq = 1;
    await sessions.put(s);
    expect(await sessions.nextCSeq('cseq-1')).toBe(2);
    expect(await sessions.nextCSeq('cseq-1')).toBe(3);
    expect((await sessions.get('cseq-1'))?.dialog.localCSeq).toBe(3);
    await sessions.delete('cseq-1');
    expect(await sessions.nextCSeq('cseq-1')).toBeUndefined();
    expect(await sessions.get('cseq-1')).toBeUndefined();
  });

  it('hides a session past its expiry', async () => {
    await sessions.put(session({ sessionId: 'exp-1', expiresAt: NOW + 60 }));
    expect(await sessions.get('exp-1')).toBeDefined();
    clockMs = (NOW + 60) * 1000;
    try {
      expect(await sessions.get('exp-1')).toBeUndefined();
    } finally {
      clockMs = NOW * 1000;
    }
  });

  it('lets one attempt claim a waiting session, none other while its lease lasts, another after', async () => {
    await sessions.put(session({ sessionId: 'lease-1' }));
    expect(await sessions.claim('lease-1', NOW, 600)).toBe(true);
    expect(await sessions.get('lease-1')).toMatchObject({ state: 'delivering', leaseUntil: NOW + 600 });
    expect(await sessions.claim('lease-1', NOW, 600)).toBe(false);
    expect(await sessions.claim('lease-1', NOW + 600, 600)).toBe(false); // lease ends after, not at, leaseUntil
    expect(await sessions.claim('lease-1', NOW + 601, 600)).toBe(true);
    expect(await sessions.get('lease-1')).toMatchObject({ state: 'delivering', leaseUntil: NOW + 1201 });
  });

  it('lets exactly one of several racing claims win', async () => {
    await sessions.put(session({ sessionId: 'lease-race' }));
    const won = await Promise.all([1, 2, 3].map(() => sessions.claim('lease-race', NOW, 600)));
    expect(won.filter(Boolean)).toHaveLength(1);
  });

  it('refuses a claim on a done, missing or expired session', async () => {
    await sessions.put(session({ sessionId: 'lease-done', state: 'done' }));
    expect(await sessions.claim('lease-done', NOW, 600)).toBe(false);
    expect(await sessions.claim('lease-missing', NOW, 600)).toBe(false);
    const bare = await backend.clients.dynamo.send(
      new GetCommand({ TableName: backend.tables.sessions, Key: { sessionId: 'lease-missing' } }),
    );
    expect(bare.Item).toBeUndefined(); // the refused claim created no item
    await sessions.put(session({ sessionId: 'lease-exp', expiresAt: NOW + 60 }));
    expect(await sessions.claim('lease-exp', NOW + 60, 600)).toBe(false);
    await sessions.put(session({ sessionId: 'lease-finished' }));
    expect(await sessions.claim('lease-finished', NOW, 600)).toBe(true);
    await sessions.update('lease-finished', { state: 'done' });
    expect(await sessions.claim('lease-finished', NOW + 601, 600)).toBe(false);
  });

  it('releases only the lease it is given', async () => {
    await sessions.put(session({ sessionId: 'lease-rel' }));
    expect(await sessions.claim('lease-rel', NOW, 600)).toBe(true);
    await sessions.release('lease-rel', NOW + 1); // not ours: stays
    expect(await sessions.claim('lease-rel', NOW + 1, 600)).toBe(false);
    await sessions.release('lease-rel', NOW + 600);
    const back = await sessions.get('lease-rel');
    expect(back?.state).toBe('waiting');
    expect(back?.leaseUntil).toBeUndefined();
    expect(await sessions.claim('lease-rel', NOW + 1, 600)).toBe(true);
    await sessions.update('lease-rel', { state: 'done' });
    await sessions.release('lease-rel', NOW + 601);
    expect((await sessions.get('lease-rel'))?.state).toBe('done');
  });
});
