/**
 * The edge's side of a delivery hand-off: SENDs in order, each once, stopped by 408/481 or the
 * deadline, one report per session once the final part is sent.
 */
import { describe, expect, it } from 'vitest';
import { TransferRunner } from '#functions/edge/transfer-runner.ts';
import type { DeliveryReport, DeliveryTransfer, TransferredMessage } from '#shared/deferred/model.ts';
import { ManualClock } from '../../support/memory-ports.ts';
import { dialog } from '../../integration/adapters/fixtures.ts';

const NOW = Date.UTC(2026, 10, 24, 8, 0, 0);

const message = (id: string): TransferredMessage => ({
  id,
  cpim: new Uint8Array(Buffer.from(`cpim ${id}`)),
  arrivedAt: new Date(NOW - 60_000).toISOString(),
  from: 'sip:bob@example.net',
  bytes: 6,
});

function transfer(ids: string[], final: boolean, sessionId = 's1'): DeliveryTransfer {
  return {
    user: 'sip:alice@example.com',
    sessionId,
    edgeId: 'http://127.0.0.1:1',
    dialog: dialog({ flow: { ...dialog().flow, edgeId: 'http://127.0.0.1:1' } }),
    byeCSeq: 2,
    deadline: NOW + 135_000,
    messages: ids.map(message),
    final,
  };
}

function runner(answer: (id: string) => number | Promise<number>, clock = new ManualClock(NOW), pipelined = false) {
  const sent: string[] = [];
  const reports: DeliveryReport[] = [];
  const r = new TransferRunner({
    send: async (_sessionId, m) => {
      sent.push(m.id);
      return { status: await answer(m.id) };
    },
    report: async (report) => {
      reports.push(report);
    },
    now: clock.now,
    pipelined,
  });
  return { r, sent, reports, clock };
}

const statuses = (report: DeliveryReport) => report.results.map((x) => `${x.id} ${x.status}${x.sent ? '' : ' unsent'}`);

describe('TransferRunner', () => {
  it('sends the parts in order, each message once, and reports once after the final part', async () => {
    const { r, sent, reports } = runner(() => 200);
    r.accept(transfer(['a', 'b'], false));
    r.accept(transfer(['b', 'c'], false)); // a repeated part (the control call retried)
    await new Promise((resolve) => setImmediate(resolve));
    expect(reports).toEqual([]);
    r.accept(transfer(['d'], true));
    await r.settled();
    expect(sent).toEqual(['a', 'b', 'c', 'd']);
    expect(reports).toHaveLength(1);
    expect(statuses(reports[0]!)).toEqual(['a 200', 'b 200', 'c 200', 'd 200']);
    expect(reports[0]).toMatchObject({ type: 'delivery-report', sessionId: 's1', byeCSeq: 2 });
    expect(reports[0]).not.toHaveProperty('deadline');
    // A late repeat after the report sends nothing again.
    r.accept(transfer(['a'], true));
    await r.settled();
    expect(sent).toHaveLength(4);
    expect(reports).toHaveLength(1);
  });

  it('stops at 481 (session gone): the rest are reported unsent with that status', async () => {
    const { r, sent, reports } = runner((id) => (id === 'b' ? 481 : 200));
    r.accept(transfer(['a', 'b', 'c'], true));
    await r.settled();
    expect(sent).toEqual(['a', 'b']);
    expect(statuses(reports[0]!)).toEqual(['a 200', 'b 481', 'c 481 unsent']);
  });

  it('pipelined (the listener keeps call order), sends all at once and reports each by its own status', async () => {
    let answer!: () => void;
    const later = new Promise<void>((resolve) => (answer = resolve));
    const { r, sent, reports } = runner(
      async (id) => {
        await later;
        return id === 'b' ? 408 : 200;
      },
      new ManualClock(NOW),
      true,
    );
    r.accept(transfer(['a', 'b', 'c'], true));
    await new Promise((resolve) => setImmediate(resolve));
    // All three went out before the first answer came back.
    expect(sent).toEqual(['a', 'b', 'c']);
    answer();
    await r.settled();
    expect(statuses(reports[0]!)).toEqual(['a 200', 'b 408', 'c 200']);
  });

  it('starts no SEND past the deadline and reports then, even without the final part', async () => {
    const clock = new ManualClock(NOW);
    const { r, sent, reports } = runner(() => {
      clock.advance(140_000); // the client took its time answering
      return 200;
    }, clock);
    r.accept(transfer(['a', 'b'], false));
    await new Promise((resolve) => setImmediate(resolve));
    expect(sent).toEqual(['a']);
    expect(statuses(reports[0]!)).toEqual(['a 200', 'b 408 unsent']);
  });

  it('on stop reports at once: what is not sent as unsent, a SEND awaiting its answer not at all', async () => {
    let answer!: (status: number) => void;
    const { r, reports } = runner((id) => (id === 'a' ? new Promise<number>((resolve) => (answer = resolve)) : 200));
    r.accept(transfer(['a', 'b'], true));
    await r.stop();
    expect(statuses(reports[0]!)).toEqual(['b 408 unsent']);
    answer(200);
    await new Promise((resolve) => setImmediate(resolve));
    expect(reports).toHaveLength(1);
  });
});
