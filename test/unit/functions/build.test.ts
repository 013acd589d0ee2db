/**
 * One wiring per handler (functions/<name>/build.ts): the Lambda entries and the local default
 * build their handlers with these, so what operators count is the same in both modes. Before,
 * the local default counted a duplicate deposit as a deposit and never counted deletions.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { buildDeliver } from '#functions/deliver/build.ts';
import { buildDeposit } from '#functions/deposit/build.ts';
import { buildExpire } from '#functions/expire/build.ts';
import { buildInvite } from '#functions/invite/build.ts';
import { wrapAsCpim } from '#shared/cpim/cpim.ts';
import { encodeActionList } from '#shared/deferred/actions.ts';
import type { DeferredMessage } from '#shared/deferred/model.ts';
import { CPIM_CONTENT_TYPE, LIST_CONTENT_TYPE } from '#shared/deferred/names.ts';
import { defaultPolicy } from '#shared/deferred/policy.ts';
import type { ImdnOutbox } from '#shared/ports.ts';
import { buildMsrpOffer } from '#shared/sdp/msrp-sdp.ts';
import type { HandlerEvents } from '#shared/service/handler-events.ts';
import { buildMultipart } from '#shared/sip/messages/index.ts';
import {
  ManualClock,
  MemoryMessageStore,
  MemoryQueue,
  MemorySessionStore,
  MemorySubscriptionStore,
  RecordingChangeFeed,
  RecordingEdge,
} from '../../support/memory-ports.ts';
import { ALICE, BOB, sampleMessage } from '../deferred/fixtures.ts';
import { sipEvent } from './sip-request.ts';

const NOW = Date.UTC(2026, 10, 23, 10, 0, 5);

/** Every event, as a line, in order. */
function recorder(): { seen: string[]; events: Required<HandlerEvents> } {
  const seen: string[] = [];
  return {
    seen,
    events: {
      deposited: () => seen.push('deposited'),
      deleted: () => seen.push('deleted'),
      delivered: () => seen.push('delivered'),
      deliveryFailed: (status) => seen.push(`failed ${status}`),
      expired: (n) => seen.push(`expired ${n}`),
    },
  };
}

const noOutbox: ImdnOutbox = { failed: async () => undefined };

describe('the build functions report the same events in both modes', () => {
  let messages: MemoryMessageStore;
  let clock: ManualClock;
  let rec: ReturnType<typeof recorder>;
  beforeEach(() => {
    messages = new MemoryMessageStore();
    clock = new ManualClock(NOW);
    rec = recorder();
  });

  it('a deposit counts once; its duplicates (SIP or HTTP) are answered but not counted', async () => {
    const deposit = buildDeposit({
      ports: { messages },
      policy: defaultPolicy(),
      warnAgent: 'pf.example.com',
      servedDomain: 'example.com',
      events: rec.events,
      now: clock.now,
    });
    const cpim = wrapAsCpim({
      from: BOB,
      to: ALICE,
      dateTime: '2026-11-23T10:00:00.000Z',
      messageId: 'dup-1',
      contentType: 'text/plain;charset=UTF-8',
      body: Buffer.from('once'),
    });
    const message = () =>
      sipEvent(
        [
          `MESSAGE ${ALICE} SIP/2.0`,
          'Via: SIP/2.0/TCP 198.51.100.7:5060;branch=z9hG4bKmsg1',
          'Max-Forwards: 70',
          `From: <${BOB}>;tag=m1`,
          `To: <${ALICE}>`,
          'Call-ID: deposit-1',
          'CSeq: 1 MESSAGE',
          `Content-Type: ${CPIM_CONTENT_TYPE}`,
        ],
        { body: cpim },
      );
    expect((await deposit.sip(message())).response.status).toBe(202);
    expect((await deposit.sip(message())).response.status).toBe(202);
    const http = { to: ALICE, from: BOB, body: 'over http', messageId: 'dup-2' };
    expect((await deposit.http(http)).statusCode).toBe(201);
    expect((await deposit.http(http)).statusCode).toBe(200);
    expect(rec.seen).toEqual(['deposited', 'deposited']);
    expect(messages.all()).toHaveLength(2);
  });

  it('an INVITE counts each message its delete actions removed, and only those', async () => {
    const kept = sampleMessage(1);
    const doomed = sampleMessage(2);
    for (const m of [kept, doomed]) await messages.put(m);
    const invite = buildInvite({
      ports: { messages, sessions: new MemorySessionStore(), queue: new MemoryQueue(), outbox: noOutbox },
      policy: defaultPolicy(),
      serviceUris: ['sip:deferred@example.com'],
      msrp: { host: 'pf.example.com', port: 2855 },
      ownerMsrpPort: 2855,
      events: rec.events,
      now: clock.now,
    });
    const offer = buildMsrpOffer({ host: '192.0.2.10', port: 9, sessionId: 's111271' });
    const body = buildMultipart(
      [
        { headers: [{ name: 'Content-Type', value: 'application/sdp' }], body: Buffer.from(offer.sdp) },
        {
          headers: [{ name: 'Content-Type', value: LIST_CONTENT_TYPE }],
          body: Buffer.from(
            encodeActionList([
              { id: doomed.id, action: 'delete' },
              { id: '01JDQ8NOSUCHMESSAGE0000000', action: 'delete' },
              { id: kept.id, action: 'retrieve' },
            ]),
          ),
        },
      ],
      'b1',
    );
    const result = await invite(
      sipEvent(
        [
          `INVITE ${ALICE} SIP/2.0`,
          'Via: SIP/2.0/TCP 192.0.2.10:50211;branch=z9hG4bKinv1',
          'Max-Forwards: 70',
          `From: <${ALICE}>;tag=inv-from`,
          `To: <${ALICE}>`,
          'Call-ID: invite-call-1',
          'CSeq: 1 INVITE',
          `Contact: <${ALICE.replace('@example.com', '@192.0.2.10:50211;transport=tcp')}>`,
          'Content-Type: multipart/mixed;boundary=b1',
        ],
        { body },
      ),
    );
    expect(result.response.status).toBe(200);
    expect(rec.seen).toEqual(['deleted']);
    expect(messages.all().map((m) => m.id)).toEqual([kept.id]);
  });

  it('deliveries and failures, and expiries, are reported once each', async () => {
    const delivered = sampleMessage(1);
    const refused = sampleMessage(2);
    for (const m of [delivered, refused]) await messages.put(m);
    const sessions = new MemorySessionStore();
    await sessions.put({
      user: ALICE,
      sessionId: 's-1',
      dialogId: 'c;l;r',
      dialog: {
        callId: 'c',
        localTag: 'l',
        remoteTag: 'r',
        localUri: ALICE,
        remoteUri: ALICE,
        remoteTarget: 'sip:alice@192.0.2.10',
        routeSet: [],
        localCSeq: 1,
        flow: { edgeId: 'edge-1', transport: 'tcp', remoteAddress: '192.0.2.10', remotePort: 5060 },
      },
      retrieve: [delivered.id, refused.id],
      clientPath: 'msrp://192.0.2.10:9/s1;tcp',
      localPath: 'msrp://pf.example.com:2855/s-1;tcp',
      state: 'waiting',
      createdAt: new Date(NOW).toISOString(),
      expiresAt: NOW / 1000 + 600,
    });
    const edge = new RecordingEdge((_e, _s, id) => (id === refused.id ? 486 : 200));
    edge.now = clock.now;
    const changes = new RecordingChangeFeed();
    const deliver = buildDeliver({ ports: { messages, sessions, edge, changes }, events: rec.events, now: clock.now });
    const job = { user: ALICE, sessionId: 's-1', edgeId: 'edge-1' };
    await deliver({ Records: [{ messageId: '1', body: JSON.stringify(job) } as never] });
    // The same function settles the edge's report, off the same queue.
    const reports = await edge.settled();
    await deliver({ Records: reports.map((r, i) => ({ messageId: `r${i}`, body: JSON.stringify(r) }) as never) });
    expect(rec.seen).toEqual(['delivered', 'failed 486']);

    const old: DeferredMessage = sampleMessage(3, { expiresAt: Math.floor(NOW / 1000) - 1 });
    await messages.put(old);
    const expire = buildExpire({
      ports: { messages, subscriptions: new MemorySubscriptionStore(), changes, edge, outbox: noOutbox },
      policy: defaultPolicy(),
      events: rec.events,
      now: clock.now,
    });
    await expire.sweep();
    await expire.sweep();
    expect(rec.seen).toEqual(['delivered', 'failed 486', 'expired 1']);
  });
});
