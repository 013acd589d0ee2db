import { beforeEach, describe, expect, it } from 'vitest';
import { messagesExpired, sweep, type ExpireDeps } from '#functions/expire/logic.ts';
import { decodeList } from '#shared/deferred/list-codec.ts';
import type { DeferredMessageEntry, Subscription } from '#shared/deferred/model.ts';
import { defaultPolicy } from '#shared/deferred/policy.ts';
import {
  ManualClock,
  MemoryMessageStore,
  MemorySubscriptionStore,
  RecordingChangeFeed,
  RecordingEdge,
} from '../../support/memory-ports.ts';
import { ALICE, sampleMessage } from '../deferred/fixtures.ts';
import { bodyText } from './sip-request.ts';

const NOW = Date.UTC(2026, 11, 1, 0, 0, 0);
const nowSec = NOW / 1000;
const CAROL = 'sip:carol@example.org';

function subscription(user: string, callId: string, expiresAt: number): Subscription {
  return {
    user,
    dialogId: `${callId};l;r`,
    dialog: {
      callId,
      localTag: 'l',
      remoteTag: 'r',
      localUri: user,
      remoteUri: user,
      remoteTarget: 'sip:dev@192.0.2.10:50211;transport=tcp',
      routeSet: [],
      localCSeq: 4,
      flow: { edgeId: 'edge-7', transport: 'tcp', remoteAddress: '192.0.2.10', remotePort: 50211 },
    },
    version: 4,
    expiresAt,
    state: 'active',
  };
}

describe('expire handler', () => {
  let messages: MemoryMessageStore;
  let subscriptions: MemorySubscriptionStore;
  let changes: RecordingChangeFeed;
  let edge: RecordingEdge;
  let imdns: DeferredMessageEntry[];
  let expiredCounts: number[];
  let deps: ExpireDeps;

  const expiredPlain = sampleMessage(1, { expiresAt: nowSec - 10 });
  const expiredAsking = sampleMessage(2, {
    expiresAt: nowSec,
    dispositionNotification: 'positive-delivery, negative-delivery',
  });
  const expiredCarol = sampleMessage(3, {
    user: CAROL,
    to: CAROL,
    expiresAt: nowSec - 1,
    dispositionNotification: 'display',
  });
  const alive = sampleMessage(4, { expiresAt: nowSec + 100 });

  beforeEach(async () => {
    messages = new MemoryMessageStore();
    subscriptions = new MemorySubscriptionStore();
    changes = new RecordingChangeFeed();
    edge = new RecordingEdge();
    imdns = [];
    expiredCounts = [];
    deps = {
      messages,
      subscriptions,
      changes,
      edge,
      policy: defaultPolicy(),
      now: new ManualClock(NOW).now,
      sendFailureImdn: async (m) => {
        imdns.push(m);
      },
      onExpired: (n) => expiredCounts.push(n),
    };
    for (const m of [expiredPlain, expiredAsking, expiredCarol, alive]) await messages.put(m);
  });

  it('removes expired messages, tells their users once each and sends IMDN failed where asked', async () => {
    const out = await sweep(deps);
    expect(out.messages).toBe(3);
    expect(messages.all().map((m) => m.id)).toEqual([alive.id]);
    expect(changes.users.sort()).toEqual([ALICE, CAROL].sort());
    expect(imdns.map((m) => m.id)).toEqual([expiredAsking.id]);
    expect(expiredCounts).toEqual([3]);
  });

  it('does nothing when nothing has expired', async () => {
    const later = { ...deps, now: () => NOW - 3600_000 };
    expect(await sweep(later)).toEqual({ messages: 0, subscriptions: 0 });
    expect(messages.all()).toHaveLength(4);
    expect(changes.users).toEqual([]);
  });

  it('ends expired subscriptions with NOTIFY terminated;reason=timeout carrying the list, and keeps the live ones', async () => {
    await subscriptions.put(subscription(ALICE, 'old', nowSec - 5));
    await subscriptions.put(subscription(ALICE, 'live', nowSec + 600));
    const out = await sweep(deps);
    expect(out.subscriptions).toBe(1);
    expect(subscriptions.all().map((s) => s.dialog.callId)).toEqual(['live']);
    expect(edge.sent).toHaveLength(1);
    const { edgeId, request } = edge.sent[0]!;
    expect(edgeId).toBe('edge-7');
    expect(request.method).toBe('NOTIFY');
    expect(request.cseq).toBe(5);
    expect(request.dialog.callId).toBe('old');
    expect(request.headers).toContainEqual({ name: 'Subscription-State', value: 'terminated;reason=timeout' });
    const list = decodeList(bodyText(request.body));
    expect(list).toMatchObject({ ok: true, version: 4, total: 1 });
    expect(list.ok && list.entries.map((e) => e.id)).toEqual([alive.id]);
  });

  it('handles messages the store already removed (TTL) the same way', async () => {
    await messagesExpired(deps, [expiredAsking, expiredCarol]);
    expect(imdns.map((m) => m.id)).toEqual([expiredAsking.id]);
    expect(changes.users.sort()).toEqual([ALICE, CAROL].sort());
    // TTL removed them already: the handler deletes nothing itself.
    expect(messages.deletes).toHaveLength(0);
  });
});
