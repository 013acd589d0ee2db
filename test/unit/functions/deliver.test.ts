import type { SQSEvent } from 'aws-lambda';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  deliverSession,
  makeHandler,
  settleReport,
  type DeliverDeps,
  type DeliveryOutcome,
} from '#functions/deliver/logic.ts';
import type { DeliveryJob, DeliverySession } from '#shared/deferred/model.ts';
import {
  ManualClock,
  MemoryMessageStore,
  MemorySessionStore,
  RecordingChangeFeed,
  RecordingEdge,
} from '../../support/memory-ports.ts';
import { ALICE, sampleMessage } from '../deferred/fixtures.ts';
import { claimOne, deleteOne } from '../../support/one-message.ts';

const NOW = Date.UTC(2026, 10, 24, 8, 0, 0);
const m1 = sampleMessage(1);
const m2 = sampleMessage(2);
const m3 = sampleMessage(3);

function session(sessionId: string, retrieve: string[]): DeliverySession {
  return {
    user: ALICE,
    sessionId,
    dialogId: `call-${sessionId};tag-l;tag-r`,
    dialog: {
      callId: `call-${sessionId}`,
      localTag: 'tag-l',
      remoteTag: 'tag-r',
      localUri: ALICE,
      remoteUri: ALICE,
      remoteTarget: 'sip:alice@192.0.2.10:50211;transport=tcp',
      routeSet: [],
      localCSeq: 0,
      flow: { edgeId: 'edge-1', transport: 'tcp', remoteAddress: '192.0.2.10', remotePort: 50211 },
    },
    retrieve,
    clientPath: `msrp://192.0.2.10:9/${sessionId};tcp`,
    localPath: `msrp://pf.example.com:2855/${sessionId};tcp`,
    state: 'waiting',
    createdAt: new Date(NOW).toISOString(),
    expiresAt: NOW / 1000 + 3600,
  };
}

const job = (sessionId: string): DeliveryJob => ({ user: ALICE, sessionId, edgeId: 'edge-1' });

/**
 * One pull as the queue runs it: the job's step hands the claimed messages to the edge, the edge
 * SENDs them and reports, the report's step settles it.
 */
async function pull(deps: DeliverDeps, j: DeliveryJob): Promise<DeliveryOutcome> {
  await deliverSession(deps, j);
  const outcome: DeliveryOutcome = { delivered: [], failed: [] };
  for (const report of await (deps.edge as RecordingEdge).settled(j.sessionId)) {
    const settled = await settleReport(deps, report);
    outcome.delivered.push(...settled.delivered);
    outcome.failed.push(...settled.failed);
  }
  return outcome;
}

function sqsEvent(bodies: string[]): SQSEvent {
  return {
    Records: bodies.map((body, i) => ({ messageId: `sqs-${i}`, body }) as SQSEvent['Records'][number]),
  };
}

describe('deliver handler', () => {
  let messages: MemoryMessageStore;
  let sessions: MemorySessionStore;
  let edge: RecordingEdge;
  let changes: RecordingChangeFeed;
  let deps: DeliverDeps;
  let clock: ManualClock;
  let failed: number[];
  let latencies: number[];

  beforeEach(async () => {
    messages = new MemoryMessageStore();
    sessions = new MemorySessionStore();
    edge = new RecordingEdge();
    changes = new RecordingChangeFeed();
    failed = [];
    latencies = [];
    clock = new ManualClock(NOW);
    edge.now = clock.now;
    deps = {
      messages,
      sessions,
      edge,
      changes,
      now: clock.now,
      onFailed: (s) => failed.push(s),
      onDelivered: (ms) => latencies.push(ms),
    };
    for (const m of [m1, m2, m3]) await messages.put(m);
    await sessions.put(session('s1', [m1.id, m2.id, m3.id]));
  });

  it('deletes each message only after the client answered 200, then ends the session with BYE', async () => {
    const presentWhenSent: boolean[] = [];
    edge.deliverAnswer = (_edge, _session, id) => {
      presentWhenSent.push(messages.all().some((m) => m.id === id));
      return 200;
    };
    const outcome = await pull(deps, job('s1'));
    expect(outcome).toEqual({ delivered: [m1.id, m2.id, m3.id], failed: [] });
    expect(presentWhenSent).toEqual([true, true, true]);
    expect(messages.all()).toHaveLength(0);
    expect(edge.delivered.map((d) => d.id)).toEqual([m1.id, m2.id, m3.id]);
    expect(Buffer.from(edge.delivered[0]!.cpim).equals(Buffer.from(m1.cpim))).toBe(true);
    expect(edge.log.slice(-2)).toEqual(['close s1', 'send BYE']);
    const bye = edge.sent[0]!.request;
    expect(bye).toMatchObject({ method: 'BYE', cseq: 1 });
    expect(bye.dialog.callId).toBe('call-s1');
    // Left leased (no write after the transfers): a second copy of the job does nothing.
    expect(await pull(deps, job('s1'))).toEqual({ delivered: [], failed: [] });
    expect(edge.sent).toHaveLength(1);
    expect(changes.users).toEqual([ALICE]);
    expect(latencies).toHaveLength(3);
  });

  it('claims the session’s messages in one store call and settles them in one delete and one give-back', async () => {
    edge.deliverAnswer = (_e, _s, id) => (id === m2.id ? 415 : 200);
    await pull(deps, job('s1'));
    const writes = messages.calls.filter((c) => ['claimMany', 'deleteMany', 'releaseMany'].includes(c.method));
    expect(writes).toEqual([
      { method: 'claimMany', ids: [m1.id, m2.id, m3.id] },
      { method: 'deleteMany', ids: [m1.id, m3.id] },
      { method: 'releaseMany', ids: [m2.id] },
    ]);
    // Counted off by the delete itself: the summary holds the one left.
    expect(await messages.count(ALICE, NOW / 1000)).toBe(1);
  });

  it('leaves a message the client refused and goes on with the rest', async () => {
    edge.deliverAnswer = (_e, _s, id) => (id === m2.id ? 415 : 200);
    const outcome = await pull(deps, job('s1'));
    expect(outcome).toEqual({ delivered: [m1.id, m3.id], failed: [{ id: m2.id, status: 415 }] });
    expect(messages.all().map((m) => m.id)).toEqual([m2.id]);
    expect(failed).toEqual([415]);
  });

  it('settles a report SQS delivers twice once: counts, releases and tells the watchers once', async () => {
    edge.deliverAnswer = (_e, _s, id) => (id === m2.id ? 415 : 200);
    await deliverSession(deps, job('s1'));
    const [report] = await edge.settled('s1');
    const first = await settleReport(deps, report!);
    const again = await settleReport(deps, report!);
    // The outcome is the report's; what it changes happens once.
    expect(again).toEqual(first);
    expect(messages.all().map((m) => m.id)).toEqual([m2.id]);
    expect(await messages.count(ALICE, NOW / 1000)).toBe(1);
    expect(latencies).toHaveLength(2);
    expect(failed).toEqual([415]);
    expect(changes.users).toEqual([ALICE]);
    // The refused message was given back by the first settle: the next session takes it at once.
    await sessions.put(session('s2', [m2.id]));
    edge.deliverAnswer = () => 200;
    expect(await pull(deps, job('s2'))).toEqual({ delivered: [m2.id], failed: [] });
  });

  it('on 408 (no answer or no connection) leaves that message and all after it untouched, and still sends BYE', async () => {
    edge.deliverAnswer = (_e, _s, id) => (id === m2.id ? 408 : 200);
    const outcome = await pull(deps, job('s1'));
    expect(outcome).toEqual({
      delivered: [m1.id],
      failed: [
        { id: m2.id, status: 408 },
        { id: m3.id, status: 408 },
      ],
    });
    expect(edge.delivered.map((d) => d.id)).toEqual([m1.id, m2.id]);
    expect(messages.all().map((m) => m.id)).toEqual([m2.id, m3.id]);
    expect(edge.sent.map((s) => s.request.method)).toEqual(['BYE']);
  });

  it('to an edge that keeps call order, asks for every message at once and settles each by its own status', async () => {
    // The edge's MSRP listener pipelines: a 408 for m2 (no answer) says nothing of m3, which the client took.
    edge.pipelined = true;
    let asked = 0;
    const answers: Array<() => void> = [];
    edge.deliverAnswer = (_e, _s, id) => (id === m2.id ? 408 : 200);
    const deliver = edge.deliver.bind(edge);
    edge.deliver = (edgeId, sessionId, message) => {
      asked++;
      return new Promise((resolve) => answers.push(() => resolve(deliver(edgeId, sessionId, message))));
    };
    const run = pull(deps, job('s1'));
    while (answers.length < 3) await new Promise((r) => setImmediate(r));
    // All three went out before the first answer came back.
    expect(asked).toBe(3);
    for (const answer of answers) answer();
    expect(await run).toEqual({ delivered: [m1.id, m3.id], failed: [{ id: m2.id, status: 408 }] });
    expect(messages.all().map((m) => m.id)).toEqual([m2.id]);
    expect(edge.sent.map((s) => s.request.method)).toEqual(['BYE']);
  });

  it('changes nothing in the store when the client never connects', async () => {
    edge.deliverAnswer = () => 408;
    await pull(deps, job('s1'));
    expect(messages.all()).toHaveLength(3);
    expect(messages.deletes).toHaveLength(0);
    expect(edge.sent.map((s) => s.request.method)).toEqual(['BYE']);
  });

  it('is idempotent: a retry skips what was delivered and a finished session does nothing', async () => {
    await deleteOne(messages, ALICE, m1.id);
    const outcome = await pull(deps, job('s1'));
    expect(outcome.delivered).toEqual([m2.id, m3.id]);
    const again = await pull(deps, job('s1'));
    expect(again).toEqual({ delivered: [], failed: [] });
    expect(edge.sent).toHaveLength(1);
  });

  it('runs a session once when SQS hands the same job to two attempts at once', async () => {
    const [first, second] = await Promise.all([pull(deps, job('s1')), pull(deps, job('s1'))]);
    expect(first.delivered).toEqual([m1.id, m2.id, m3.id]);
    expect(second).toEqual({ delivered: [], failed: [] });
    expect(edge.delivered.map((d) => d.id)).toEqual([m1.id, m2.id, m3.id]);
    expect(edge.sent.map((s) => s.request.method)).toEqual(['BYE']);
    expect(edge.closed).toHaveLength(1);
    expect(changes.users).toEqual([ALICE]);
  });

  it('leaves a session alone while another attempt holds its lease', async () => {
    expect(await sessions.claim('s1', NOW / 1000, 600)).toBe(true); // the first, still running
    clock.advance(599_000);
    expect(await pull(deps, job('s1'))).toEqual({ delivered: [], failed: [] });
    expect(edge.log).toEqual([]);
    expect(messages.all()).toHaveLength(3);
    expect(await sessions.get('s1')).toMatchObject({ state: 'delivering', leaseUntil: NOW / 1000 + 600 });
  });

  it('takes over a session whose lease ran out (the attempt holding it died)', async () => {
    expect(await sessions.claim('s1', NOW / 1000, 600)).toBe(true);
    clock.advance(601_000);
    const outcome = await pull(deps, job('s1'));
    expect(outcome.delivered).toEqual([m1.id, m2.id, m3.id]);
    expect(edge.sent.map((s) => s.request.method)).toEqual(['BYE']);
    expect(edge.sent[0]!.request.cseq).toBe(1);
  });

  it('holds the session for leaseSeconds while it delivers', async () => {
    const leases: (number | undefined)[] = [];
    edge.deliverAnswer = () => {
      leases.push(sessions.all()[0]!.leaseUntil);
      return 200;
    };
    await pull({ ...deps, leaseSeconds: 90 }, job('s1'));
    expect(leases).toEqual([NOW / 1000 + 90, NOW / 1000 + 90, NOW / 1000 + 90]);
  });

  it('gives the session and its messages back when the hand-off fails, so the retry need not wait out the lease', async () => {
    edge.handOffAnswer = () => new Error('edge down');
    await expect(pull(deps, job('s1'))).rejects.toThrow('edge down');
    const back = await sessions.get('s1');
    expect(back?.state).toBe('waiting');
    expect(back?.leaseUntil).toBeUndefined();
    expect(edge.delivered).toEqual([]);
    // Another pull may claim them at once.
    expect(await claimOne(messages, ALICE, m1.id, 'other', NOW / 1000, 180)).toBeDefined();
  });

  it('returns without waiting for the client: the edge SENDs, then its report settles the session', async () => {
    let answer!: (status: number) => void;
    const answered = new Promise<number>((resolve) => (answer = resolve));
    edge = new HeldEdge(answered);
    edge.now = clock.now;
    deps = { ...deps, edge };
    expect(await deliverSession(deps, job('s1'))).toEqual([m1.id, m2.id, m3.id]);
    // Handed over in one call, with a deadline before the claims' leases end.
    expect(edge.transfers).toHaveLength(1);
    expect(edge.transfers[0]).toMatchObject({ sessionId: 's1', final: true, byeCSeq: 1 });
    expect(edge.transfers[0]!.deadline).toBeGreaterThan(NOW);
    expect(edge.transfers[0]!.deadline).toBeLessThan(NOW + 180_000);
    // The client has not answered: nothing deleted, no BYE yet.
    expect(messages.all()).toHaveLength(3);
    expect(edge.sent).toEqual([]);
    answer(200);
    const [report] = await edge.settled('s1');
    expect(report!.results.map((r) => [r.id, r.status])).toEqual([
      [m1.id, 200],
      [m2.id, 200],
      [m3.id, 200],
    ]);
    expect(messages.all()).toHaveLength(3);
    expect(await settleReport(deps, report!)).toEqual({ delivered: [m1.id, m2.id, m3.id], failed: [] });
    expect(messages.all()).toEqual([]);
    expect(edge.sent.map((s) => s.request.method)).toEqual(['BYE']);
    // A report settled again (SQS delivers at least once) deletes nothing more and counts nothing twice.
    await settleReport(deps, report!);
    expect(latencies).toHaveLength(3);
    expect(await messages.count(ALICE, NOW / 1000)).toBe(0);
  });

  it('settles a session with nothing left to send at once, without a hand-off', async () => {
    for (const m of [m1, m2, m3]) await deleteOne(messages, ALICE, m.id);
    expect(await deliverSession(deps, job('s1'))).toEqual([]);
    expect(edge.transfers).toEqual([]);
    expect(edge.log).toEqual(['close s1', 'send BYE']);
  });

  it('reports only the failed records of a batch, so SQS redelivers just those', async () => {
    await sessions.put(session('s1', [m1.id, m2.id]));
    await sessions.put(session('s2', [m3.id]));
    edge.handOffAnswer = (_e, sessionId) => (sessionId === 's2' ? new Error('edge-1 unreachable') : undefined);
    const handler = makeHandler(deps);
    const result = await handler(sqsEvent([JSON.stringify(job('s1')), JSON.stringify(job('s2')), '{not json']));
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'sqs-1' }, { itemIdentifier: 'sqs-2' }]);
    // The edge's report comes back on the same queue, to the same handler.
    const reports = await edge.settled();
    expect((await handler(sqsEvent(reports.map((r) => JSON.stringify(r))))).batchItemFailures).toEqual([]);
    expect(messages.all().map((m) => m.id)).toEqual([m3.id]);
  });

  it('a record whose session was not delivered is retried to completion', async () => {
    let reachable = false;
    edge.handOffAnswer = () => (reachable ? undefined : new Error('edge down'));
    const handler = makeHandler(deps);
    expect((await handler(sqsEvent([JSON.stringify(job('s1'))]))).batchItemFailures).toHaveLength(1);
    expect(messages.all()).toHaveLength(3);
    reachable = true;
    expect((await handler(sqsEvent([JSON.stringify(job('s1'))]))).batchItemFailures).toHaveLength(0);
    expect(messages.all()).toHaveLength(3);
    const reports = (await edge.settled()).map((r) => JSON.stringify(r));
    expect((await handler(sqsEvent(reports))).batchItemFailures).toHaveLength(0);
    expect(messages.all()).toHaveLength(0);
  });
});

/** An edge whose clients answer every SEND only once `answered` resolves, with its status. */
class HeldEdge extends RecordingEdge {
  private status = 0;

  constructor(private readonly answered: Promise<number>) {
    super();
    this.deliverAnswer = () => this.status;
  }

  override async deliver(
    edgeId: string,
    sessionId: string,
    message: { id: string; cpim: Uint8Array },
  ): Promise<{ status: number }> {
    this.status = await this.answered;
    return super.deliver(edgeId, sessionId, message);
  }
}

/** An edge whose MSRP transfers take a turn of the event loop, so two sessions' deliveries interleave. */
class SlowEdge extends RecordingEdge {
  override async deliver(
    edgeId: string,
    sessionId: string,
    message: { id: string; cpim: Uint8Array },
  ): Promise<{ status: number }> {
    await new Promise((resolve) => setImmediate(resolve));
    return super.deliver(edgeId, sessionId, message);
  }
}

describe('two concurrent sessions of one user (issue 11: a message is claimed by one delivery at a time)', () => {
  let messages: MemoryMessageStore;
  let sessions: MemorySessionStore;
  let edge: SlowEdge;
  let deps: DeliverDeps;

  beforeEach(async () => {
    messages = new MemoryMessageStore();
    sessions = new MemorySessionStore();
    edge = new SlowEdge();
    edge.now = new ManualClock(NOW).now;
    deps = { messages, sessions, edge, changes: new RecordingChangeFeed(), now: edge.now };
    for (const m of [m1, m2, m3]) await messages.put(m);
    // Two devices of alice pulled the same list at once: both INVITEs name every message.
    await sessions.put(session('phone', [m1.id, m2.id, m3.id]));
    await sessions.put(session('laptop', [m1.id, m2.id, m3.id]));
  });

  it('delivers each message exactly once across both sessions', async () => {
    const [phone, laptop] = await Promise.all([pull(deps, job('phone')), pull(deps, job('laptop'))]);
    const sent = edge.delivered.map((d) => d.id);
    expect([...sent].sort()).toEqual([m1.id, m2.id, m3.id].sort());
    expect([...phone.delivered, ...laptop.delivered].sort()).toEqual([m1.id, m2.id, m3.id].sort());
    expect(messages.all()).toEqual([]);
    // Both sessions still end with their BYE.
    expect(edge.sent.filter((s) => s.request.method === 'BYE')).toHaveLength(2);
  });

  it('gives a message back when its delivery fails, so nothing is lost and a later pull delivers it', async () => {
    // The phone's client refuses m2; the laptop never sees m2 while the phone holds it.
    edge.deliverAnswer = (_e, sessionId, id) => (sessionId === 'phone' && id === m2.id ? 486 : 200);
    await Promise.all([pull(deps, job('phone')), pull(deps, job('laptop'))]);
    const deliveredOk = edge.delivered.filter((d) => !(d.sessionId === 'phone' && d.id === m2.id)).map((d) => d.id);
    expect(new Set(deliveredOk).size).toBe(deliveredOk.length);
    // m2 was either delivered to the laptop once, or is still stored for the next pull.
    const left = messages.all().map((m) => m.id);
    expect([...deliveredOk, ...left].sort()).toEqual([m1.id, m2.id, m3.id].sort());

    if (left.includes(m2.id)) {
      await sessions.put(session('again', [m2.id]));
      edge.deliverAnswer = () => 200;
      expect((await pull(deps, job('again'))).delivered).toEqual([m2.id]);
    }
    expect(messages.all()).toEqual([]);
  });

  it('lets a retried job of the same session take its own claim again', async () => {
    edge.handOffAnswer = () => new Error('edge unreachable');
    await expect(pull(deps, job('phone'))).rejects.toThrow('edge unreachable');
    edge.handOffAnswer = () => undefined;
    // The session and message claims were released on the error; the job runs again and delivers all.
    expect((await pull(deps, job('phone'))).delivered).toEqual([m1.id, m2.id, m3.id]);
  });
});
