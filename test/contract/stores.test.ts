/**
 * One store contract for the in-memory fakes, the SQLite adapters and the DynamoDB adapters:
 * idempotent deposit by (user, sender, imdn.Message-ID), expiry hidden from every read,
 * conditional claims and leases, atomic counters.
 */
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import type { DeferredMessage } from '#shared/deferred/model.ts';
import { NOW, dialog, message, session, subscription } from '../integration/adapters/fixtures.ts';
import { dynamoStores, fresh, memoryStores, sqliteStores, type StoreImplementation, type Stores } from './stores.ts';
import { claimOne, releaseOne, deleteOne } from '../support/one-message.ts';

const implementations: StoreImplementation[] = [memoryStores, sqliteStores(), dynamoStores()];

describe.each(implementations)('$name', (impl) => {
  let stores: Stores;
  let user: string;
  beforeEach(async () => {
    stores = await impl.open();
    user = `sip:${fresh('user')}@example.com`;
  });
  afterAll(() => impl.closeAll());

  /** A message of this case's user. */
  const mine = (over: Parameters<typeof message>[0] = {}): DeferredMessage => message({ user, ...over });

  describe('deferred messages', () => {
    it('stores a message once and reads it back whole, payload bytes included', async () => {
      const m = mine({ cpim: new Uint8Array([0, 1, 0xfe, 0xff, 13, 10]) });
      const put = await stores.messages.put(m);
      expect(put.created).toBe(true);
      expect(await stores.messages.get(user, m.id, NOW)).toEqual(m);
      expect(await stores.messages.count(user, NOW)).toBe(1);
    });

    it('lists oldest first, up to the limit, and counts only the user’s own', async () => {
      const later = mine({ ageSeconds: 10 });
      const earlier = mine({ ageSeconds: 300 });
      const middle = mine({ ageSeconds: 100 });
      for (const m of [later, earlier, middle]) await stores.messages.put(m);
      await stores.messages.put(message({ user: `sip:${fresh('other')}@example.com` }));
      expect((await stores.messages.list(user, NOW)).map((m) => m.id)).toEqual([earlier.id, middle.id, later.id]);
      expect((await stores.messages.list(user, NOW, 2)).map((m) => m.id)).toEqual([earlier.id, middle.id]);
      expect(await stores.messages.list(user, NOW, 0)).toEqual([]);
      expect(await stores.messages.count(user, NOW)).toBe(3);
    });

    it('a second deposit with the same sender and Message-ID stores nothing and answers with the first', async () => {
      const first = mine({ messageId: 'same' });
      await stores.messages.put(first);
      const again = await stores.messages.put(mine({ messageId: 'same', ageSeconds: 5 }));
      expect(again.created).toBe(false);
      expect(again.message.id).toBe(first.id);
      expect(again.message.arrivedAt).toBe(first.arrivedAt);
      expect(await stores.messages.count(user, NOW)).toBe(1);
      // Another sender's message with the same Message-ID is another message.
      const other = await stores.messages.put(mine({ messageId: 'same', from: 'sip:carol@example.org' }));
      expect(other.created).toBe(true);
      expect(await stores.messages.count(user, NOW)).toBe(2);
    });

    it('a late duplicate of a delivered (deleted) message does not bring it back', async () => {
      const first = mine({ messageId: 'gone' });
      await stores.messages.put(first);
      expect(await deleteOne(stores.messages, user, first.id)).toBe(true);
      const late = await stores.messages.put(mine({ messageId: 'gone', ageSeconds: 1 }));
      expect(late.created).toBe(false);
      expect(late.message.id).toBe(first.id);
      expect(await stores.messages.list(user, NOW)).toEqual([]);
      expect(await stores.messages.count(user, NOW)).toBe(0);
    });

    it('after the first copy’s retention the same Message-ID is a new message', async () => {
      const first = mine({ messageId: 'again', ttl: 60 });
      await stores.messages.put(first);
      // Arrives two minutes after NOW, when the first copy (and its claim) has expired.
      const later = mine({ messageId: 'again', ageSeconds: -120, ttl: 3600 });
      const put = await stores.messages.put(later);
      expect(put.created).toBe(true);
      expect(put.message.id).toBe(later.id);
    });

    it('deletes once: true when it was there, false after and for an unknown id', async () => {
      const m = mine();
      await stores.messages.put(m);
      expect(await deleteOne(stores.messages, user, m.id)).toBe(true);
      expect(await deleteOne(stores.messages, user, m.id)).toBe(false);
      expect(await deleteOne(stores.messages, user, 'no-such-id')).toBe(false);
      expect(await stores.messages.get(user, m.id, NOW)).toBeUndefined();
    });

    it('reads many ids in one call: the user’s unexpired ones, without payloads', async () => {
      const a = mine();
      const b = mine();
      const old = mine({ ttl: -1 });
      for (const m of [a, b, old]) await stores.messages.put(m);
      const got = await stores.messages.getMany(user, [b.id, 'unknown', old.id, a.id, a.id], NOW);
      expect(got.map((m) => m.id).sort()).toEqual([a.id, b.id].sort());
      expect(got.every((m) => !('cpim' in m))).toBe(true);
      expect(await stores.messages.getMany(`${user}-other`, [a.id], NOW)).toEqual([]);
    });

    it('a message is claimed by one delivery at a time, and given back on release', async () => {
      const m = mine();
      await stores.messages.put(m);
      const racing = await Promise.all(
        ['s1', 's2', 's3'].map((h) => claimOne(stores.messages, user, m.id, h, NOW, 60)),
      );
      expect(racing.filter((r) => r !== undefined)).toHaveLength(1);
      const winner = ['s1', 's2', 's3'][racing.findIndex((r) => r !== undefined)]!;
      const loser = winner === 's1' ? 's2' : 's1';
      expect((await claimOne(stores.messages, user, m.id, winner, NOW + 1, 60))?.cpim).toEqual(m.cpim);
      expect(await claimOne(stores.messages, user, m.id, loser, NOW + 30, 60)).toBeUndefined();
      // Not the holder: no effect, and said so.
      expect(await releaseOne(stores.messages, user, m.id, loser)).toBe(false);
      expect(await claimOne(stores.messages, user, m.id, loser, NOW + 30, 60)).toBeUndefined();
      expect(await releaseOne(stores.messages, user, m.id, winner)).toBe(true);
      // Given back once: a second release (a delivery report settled again) changes nothing.
      expect(await releaseOne(stores.messages, user, m.id, winner)).toBe(false);
      expect(await releaseOne(stores.messages, user, 'unknown', winner)).toBe(false);
      expect(await claimOne(stores.messages, user, m.id, loser, NOW + 30, 60)).toBeDefined();
      // A lease that ran out is taken over.
      expect(await claimOne(stores.messages, user, m.id, winner, NOW + 30 + 61, 60)).toBeDefined();
      expect(await claimOne(stores.messages, user, 'unknown', winner, NOW, 60)).toBeUndefined();
    });

    it('an expired message is hidden from get and list, and leaves the count when removed', async () => {
      const expired = mine({ ttl: -1 });
      const live = mine();
      await stores.messages.put(expired);
      await stores.messages.put(live);
      expect(await stores.messages.get(user, expired.id, NOW)).toBeUndefined();
      expect(await stores.messages.getMany(user, [expired.id], NOW)).toEqual([]);
      expect(await claimOne(stores.messages, user, expired.id, 's1', NOW, 60)).toBeUndefined();
      expect((await stores.messages.list(user, NOW)).map((m) => m.id)).toEqual([live.id]);
      // The count is a summary counter: it may still hold the expired one until it is removed.
      expect([1, 2]).toContain(await stores.messages.count(user, NOW));
      const swept = (await stores.messages.listExpired(NOW, 1000)).filter((m) => m.user === user);
      if (impl.expiry === 'ttl') {
        // TTL removes it and `expire` takes it off the count (functions/expire/handler.ts).
        expect(swept).toEqual([]);
        await stores.messages.uncount(user, { messages: 1, bytes: expired.cpim.byteLength });
      } else {
        expect(swept.map((m) => m.id)).toEqual([expired.id]);
        expect(swept[0]!.cpim).toEqual(expired.cpim);
        expect(await deleteOne(stores.messages, user, expired.id)).toBe(true);
      }
      expect(await stores.messages.count(user, NOW)).toBe(1);
    });

    it('claims many in one call, each id on its own: taken in the order asked, the rest left out', async () => {
      const [a, b, gone, expired, e] = [mine(), mine(), mine(), mine({ ttl: -1 }), mine()];
      for (const m of [a, b, gone, expired, e]) await stores.messages.put(m);
      expect(await claimOne(stores.messages, user, b.id, 'other', NOW, 60)).toBeDefined();
      expect(await deleteOne(stores.messages, user, gone.id)).toBe(true);
      // Held by another live lease, gone, expired, unknown, repeated: not all or nothing.
      const asked = [e.id, b.id, gone.id, expired.id, a.id, 'unknown', e.id];
      const taken = await stores.messages.claimMany(user, asked, 's1', NOW, 60);
      expect(taken.map((m) => m.id)).toEqual([e.id, a.id]);
      expect(taken[0]!.cpim).toEqual(e.cpim);
      expect(taken[1]).toEqual(a);
      // The holder again (a retried job of the same session) takes them again; another does not.
      expect((await stores.messages.claimMany(user, [a.id, e.id], 's1', NOW + 1, 60)).map((m) => m.id)).toEqual([
        a.id,
        e.id,
      ]);
      expect(await stores.messages.claimMany(user, [a.id, e.id, b.id], 's2', NOW + 30, 60)).toEqual([]);
      // Leases that ran out are taken over, each on its own.
      expect((await stores.messages.claimMany(user, [b.id, a.id], 's2', NOW + 62, 60)).map((m) => m.id)).toEqual([
        b.id,
        a.id,
      ]);
      expect(await stores.messages.claimMany(user, [], 's1', NOW, 60)).toEqual([]);
      // Claimed messages stay stored and listed.
      expect((await stores.messages.list(user, NOW)).map((m) => m.id).sort()).toEqual([a.id, b.id, e.id].sort());
    });

    it('gives many back in one call: the ids this holder held', async () => {
      const [a, b, c] = [mine(), mine(), mine()];
      for (const m of [a, b, c]) await stores.messages.put(m);
      await stores.messages.claimMany(user, [a.id, c.id], 's1', NOW, 60);
      await stores.messages.claimMany(user, [b.id], 's2', NOW, 60);
      expect(await stores.messages.releaseMany(user, [c.id, b.id, 'unknown', a.id], 's1')).toEqual([c.id, a.id]);
      // Given back once (a report settled again changes nothing); the other holder keeps its own.
      expect(await stores.messages.releaseMany(user, [a.id, c.id], 's1')).toEqual([]);
      expect(await stores.messages.claimMany(user, [a.id, b.id, c.id], 's3', NOW + 1, 60)).toHaveLength(2);
      expect(await stores.messages.releaseMany(user, [], 's1')).toEqual([]);
    });

    it('deletes many in one call, leased or not: the ids that were there, counted off together', async () => {
      const size = mine().cpim.byteLength;
      const ms = [mine(), mine(), mine(), mine()];
      for (const m of ms) await stores.messages.put(m);
      const [m0, m1, m2, m3] = ms as [DeferredMessage, DeferredMessage, DeferredMessage, DeferredMessage];
      await stores.messages.claimMany(user, [m2.id], 'session', NOW, 60);
      expect(await stores.messages.deleteMany(user, [m3.id, 'unknown', m0.id, m0.id, m2.id])).toEqual([
        m3.id,
        m0.id,
        m2.id,
      ]);
      expect(await stores.messages.count(user, NOW)).toBe(1);
      expect((await stores.messages.list(user, NOW)).map((m) => m.id)).toEqual([m1.id]);
      // Their bytes left the summary too: room for one more under a cap of two.
      const limits = { maxMessagesPerUser: 100, maxBytesPerUser: size * 2, maxStoreBytes: 1_000_000_000 };
      expect((await stores.messages.put(mine(), limits)).created).toBe(true);
      // Deleted once: again (a report settled again) nothing is there, nothing counted off.
      expect(await stores.messages.deleteMany(user, [m3.id, m0.id])).toEqual([]);
      expect(await stores.messages.deleteMany(user, [])).toEqual([]);
      expect(await stores.messages.count(user, NOW)).toBe(2);
    });

    describe('caps, checked in the write that counts a deposit', () => {
      const roomy = { maxMessagesPerUser: 100, maxBytesPerUser: 1_000_000, maxStoreBytes: 1_000_000_000 };

      it('refuses a deposit over the user’s message cap; a duplicate of a stored one is still answered', async () => {
        const limits = { ...roomy, maxMessagesPerUser: 2 };
        const [a, b] = [mine(), mine()];
        await stores.messages.put(a, limits);
        await stores.messages.put(b, limits);
        await expect(stores.messages.put(mine(), limits)).rejects.toMatchObject({
          name: 'StoreFullError',
          cap: 'messages',
        });
        const again = await stores.messages.put(mine({ messageId: a.messageId }), limits);
        expect(again).toMatchObject({ created: false, message: { id: a.id } });
        expect(await stores.messages.count(user, NOW)).toBe(2);
        expect((await stores.messages.list(user, NOW)).map((m) => m.id).sort()).toEqual([a.id, b.id].sort());
      });

      it('counts stored bytes per user: over the cap refused, room again after a delete or an uncount', async () => {
        const size = mine().cpim.byteLength;
        const limits = { ...roomy, maxBytesPerUser: size * 2 + size / 2 };
        const [a, b] = [mine(), mine()];
        await stores.messages.put(a, limits);
        await stores.messages.put(b, limits);
        const third = mine();
        await expect(stores.messages.put(third, limits)).rejects.toMatchObject({ cap: 'bytes' });
        expect(await stores.messages.count(user, NOW)).toBe(2);
        expect(await deleteOne(stores.messages, user, a.id)).toBe(true);
        expect((await stores.messages.put(third, limits)).created).toBe(true);
        await expect(stores.messages.put(mine(), limits)).rejects.toMatchObject({ cap: 'bytes' });
        // A removal the store did not make itself (TTL's), counted off by `expire`.
        await stores.messages.uncount(user, { messages: 1, bytes: b.cpim.byteLength });
        expect((await stores.messages.put(mine(), limits)).created).toBe(true);
        // Another user's bytes are their own.
        expect((await stores.messages.put(message({ user: `${user}-other` }), limits)).created).toBe(true);
        // A message larger than the whole cap never fits.
        await expect(
          stores.messages.put(mine({ cpim: new Uint8Array(limits.maxBytesPerUser + 1) }), {
            ...roomy,
            maxBytesPerUser: size,
          }),
        ).rejects.toMatchObject({ cap: 'bytes' });
      });

      it('holds a total for the whole store where it keeps one (SQLite), not in DynamoDB', async () => {
        const size = mine().cpim.byteLength;
        const before = mine();
        await stores.messages.put(before);
        // However much the other cases stored, this cap is below it.
        const limits = { ...roomy, maxStoreBytes: size };
        const put = stores.messages.put(mine(), limits);
        if (!impl.totalCap) expect((await put).created).toBe(true);
        else await expect(put).rejects.toMatchObject({ cap: 'total' });
      });
    });

    it('a deposit after retention, before the expired copy left, stores the new one and keeps the old for expiry', async () => {
      const old = mine({ messageId: 'kept', ageSeconds: 7200, ttl: -60 });
      await stores.messages.put(old);
      const fresh = mine({ messageId: 'kept', ageSeconds: 0 });
      const put = await stores.messages.put(fresh);
      expect(put.created).toBe(true);
      expect(await stores.messages.get(user, fresh.id, NOW)).toEqual(fresh);
      if (impl.expiry === 'sweep') {
        // Still there for the sweep, which tells its watchers and sender.
        const swept = (await stores.messages.listExpired(NOW, 1000)).filter((m) => m.user === user);
        expect(swept.map((m) => m.arrivedAt)).toEqual([old.arrivedAt]);
        expect(await deleteOne(stores.messages, user, swept[0]!.id)).toBe(true);
        expect(await stores.messages.get(user, fresh.id, NOW)).toEqual(fresh);
      }
    });
  });

  describe('subscriptions', () => {
    const sub = (over: Parameters<typeof subscription>[0] = {}) => {
      const d = over.dialog ?? dialog({ callId: fresh('call') });
      return subscription({ user, dialog: d, dialogId: `${d.callId};${d.localTag};${d.remoteTag}`, ...over });
    };

    it('reads back what was put; lists only active, unexpired ones', async () => {
      const active = sub();
      const terminated = sub({ state: 'terminated' });
      const expired = sub({ expiresAt: NOW - 1 });
      for (const s of [active, terminated, expired]) await stores.subscriptions.put(s);
      expect(await stores.subscriptions.get(user, active.dialogId, NOW)).toEqual(active);
      expect(await stores.subscriptions.get(user, expired.dialogId, NOW)).toBeUndefined();
      expect((await stores.subscriptions.listByUser(user, NOW)).map((s) => s.dialogId)).toEqual([active.dialogId]);
      const swept = (await stores.subscriptions.listExpired(NOW, 1000)).filter((s) => s.user === user);
      expect(swept.map((s) => s.dialogId)).toEqual([expired.dialogId]);
    });

    it('takes NOTIFY versions from 0 and CSeqs strictly increasing, atomically', async () => {
      const s = sub({ dialog: dialog({ callId: fresh('call'), localCSeq: 7 }) });
      await stores.subscriptions.put(s);
      const taken = await Promise.all([1, 2, 3].map(() => stores.subscriptions.nextNotify(user, s.dialogId)));
      expect(taken.map((t) => t!.version).sort()).toEqual([0, 1, 2]);
      expect(taken.map((t) => t!.cseq).sort((a, b) => a - b)).toEqual([8, 9, 10]);
      const after = await stores.subscriptions.get(user, s.dialogId, NOW);
      expect(after!.version).toBe(3);
      expect(after!.dialog.localCSeq).toBe(10);
      // Each turn carries the subscription as its own update left it (a NOTIFY by dialog id reads nothing more).
      for (const t of taken)
        expect(t!.subscription).toEqual({
          ...after,
          version: t!.version + 1,
          dialog: { ...after!.dialog, localCSeq: t!.cseq },
        });
    });

    it('a counter or a refresh of a removed subscription creates nothing', async () => {
      const s = sub();
      await stores.subscriptions.put(s);
      await stores.subscriptions.delete(user, s.dialogId);
      expect(await stores.subscriptions.nextNotify(user, s.dialogId)).toBeUndefined();
      expect(await stores.subscriptions.renew(user, s.dialogId, NOW + 900)).toBe(false);
      expect(await stores.subscriptions.get(user, s.dialogId, NOW)).toBeUndefined();
    });

    it('ends a subscription in one write: the last NOTIFY’s counters, then nothing left', async () => {
      const s = sub({ dialog: dialog({ callId: fresh('call'), localCSeq: 4 }) });
      await stores.subscriptions.put(s);
      const first = await stores.subscriptions.nextNotify(user, s.dialogId);
      const last = await stores.subscriptions.endNotify(user, s.dialogId);
      // The turn after nextNotify's, as another nextNotify would have taken it.
      expect(last).toEqual({
        cseq: first!.cseq + 1,
        version: first!.version + 1,
        subscription: {
          ...first!.subscription,
          version: first!.subscription.version + 1,
          dialog: { ...first!.subscription.dialog, localCSeq: first!.cseq + 1 },
        },
      });
      expect(await stores.subscriptions.get(user, s.dialogId, NOW)).toBeUndefined();
      expect(await stores.subscriptions.endNotify(user, s.dialogId)).toBeUndefined();
      expect(await stores.subscriptions.nextNotify(user, s.dialogId)).toBeUndefined();
    });

    it('a refresh sets the expiry and the remote CSeq, keeping the counters', async () => {
      const s = sub();
      await stores.subscriptions.put(s);
      await stores.subscriptions.nextNotify(user, s.dialogId);
      expect(await stores.subscriptions.renew(user, s.dialogId, NOW + 900, 42)).toBe(true);
      const after = await stores.subscriptions.get(user, s.dialogId, NOW);
      expect(after).toMatchObject({ expiresAt: NOW + 900, version: 1 });
      expect(after!.dialog.remoteCSeq).toBe(42);
      expect(after!.dialog.localCSeq).toBe(s.dialog.localCSeq + 1);
      expect(await stores.subscriptions.renew(user, s.dialogId, NOW + 1200)).toBe(true);
      expect((await stores.subscriptions.get(user, s.dialogId, NOW))!.dialog.remoteCSeq).toBe(42);
    });
  });

  describe('delivery sessions', () => {
    const mySession = (over: Parameters<typeof session>[0] = {}) =>
      session({ user, sessionId: fresh('s'), retrieve: ['01JA', '01JB'], ...over });

    it('reads back what was put; hides an expired one', async () => {
      const s = mySession();
      await stores.sessions.put(s);
      expect(await stores.sessions.get(s.sessionId)).toEqual(s);
      const expired = mySession({ expiresAt: NOW - 1 });
      await stores.sessions.put(expired);
      expect(await stores.sessions.get(expired.sessionId)).toBeUndefined();
    });

    it('one claim wins while its lease lives; a lapsed lease can be taken over', async () => {
      const s = mySession();
      await stores.sessions.put(s);
      const racing = await Promise.all([1, 2, 3].map(() => stores.sessions.claim(s.sessionId, NOW, 60)));
      expect(racing.filter(Boolean)).toHaveLength(1);
      expect(await stores.sessions.claim(s.sessionId, NOW + 30, 60)).toBe(false);
      expect(await stores.sessions.claim(s.sessionId, NOW + 61, 60)).toBe(true);
      expect(await stores.sessions.get(s.sessionId)).toMatchObject({ state: 'delivering', leaseUntil: NOW + 121 });
    });

    it('a done, missing or expired session cannot be claimed', async () => {
      const done = mySession({ state: 'done' });
      const expired = mySession({ expiresAt: NOW - 1 });
      await stores.sessions.put(done);
      await stores.sessions.put(expired);
      expect(await stores.sessions.claim(done.sessionId, NOW, 60)).toBe(false);
      expect(await stores.sessions.claim(expired.sessionId, NOW, 60)).toBe(false);
      expect(await stores.sessions.claim(fresh('missing'), NOW, 60)).toBe(false);
    });

    it('release gives back only its own lease', async () => {
      const s = mySession();
      await stores.sessions.put(s);
      expect(await stores.sessions.claim(s.sessionId, NOW, 60)).toBe(true);
      await stores.sessions.release(s.sessionId, NOW + 999);
      expect(await stores.sessions.claim(s.sessionId, NOW, 60)).toBe(false);
      await stores.sessions.release(s.sessionId, NOW + 60);
      expect((await stores.sessions.get(s.sessionId))!.state).toBe('waiting');
      expect(await stores.sessions.claim(s.sessionId, NOW, 60)).toBe(true);
    });

    it('takes BYE CSeqs atomically; updates state and retrievals; an update creates nothing', async () => {
      const s = mySession({ dialog: dialog({ callId: fresh('inv'), localCSeq: 1 }) });
      await stores.sessions.put(s);
      const cseqs = await Promise.all([1, 2].map(() => stores.sessions.nextCSeq(s.sessionId)));
      expect(cseqs.sort((a, b) => a! - b!)).toEqual([2, 3]);
      await stores.sessions.update(s.sessionId, { state: 'done', retrieve: ['01JB'] });
      expect(await stores.sessions.get(s.sessionId)).toMatchObject({ state: 'done', retrieve: ['01JB'] });
      expect((await stores.sessions.get(s.sessionId))!.dialog.localCSeq).toBe(3);
      const missing = fresh('missing');
      await stores.sessions.update(missing, { state: 'done' });
      expect(await stores.sessions.get(missing)).toBeUndefined();
      expect(await stores.sessions.nextCSeq(missing)).toBeUndefined();
      await stores.sessions.delete(s.sessionId);
      expect(await stores.sessions.get(s.sessionId)).toBeUndefined();
    });

    it('begin stores a session from its job, leased, with BYE’s CSeq taken, in one write; one attempt at a time', async () => {
      const s = mySession({ dialog: dialog({ callId: fresh('inv'), localCSeq: 4 }) });
      const racing = await Promise.all([1, 2, 3].map(() => stores.sessions.begin(s, NOW, 60)));
      expect(racing.filter((c) => c !== undefined)).toEqual([5]);
      expect(await stores.sessions.get(s.sessionId)).toMatchObject({
        state: 'delivering',
        leaseUntil: NOW + 60,
        retrieve: s.retrieve,
        dialog: { localCSeq: 5, callId: s.dialog.callId },
      });
      expect(await stores.sessions.begin(s, NOW + 30, 60)).toBeUndefined();
      // Given back, or its lease run out: the next attempt takes it with the next CSeq.
      await stores.sessions.release(s.sessionId, NOW + 60);
      expect(await stores.sessions.begin(s, NOW + 30, 60)).toBe(6);
      expect(await stores.sessions.begin(s, NOW + 91, 60)).toBe(7);
      expect(await stores.sessions.begin(mySession({ expiresAt: NOW - 1 }), NOW, 60)).toBeUndefined();
    });

    it('begin takes a session stored before (a job queued by an earlier version)', async () => {
      const s = mySession({ dialog: dialog({ callId: fresh('inv'), localCSeq: 1 }) });
      await stores.sessions.put(s);
      expect(await stores.sessions.begin(s, NOW, 60)).toBe(2);
      expect(await stores.sessions.begin(s, NOW, 60)).toBeUndefined();
      const done = mySession({ state: 'done' });
      await stores.sessions.put(done);
      expect(await stores.sessions.begin(done, NOW, 60)).toBeUndefined();
    });
  });
});
