/** The operator's user view lists that user's recent deliveries, newest first, of the last 200 across users. */
import { describe, expect, it } from 'vitest';
import { Operator, type OperatorDeps } from '#functions/edge/operator.ts';

function operatorAt(clock: { t: number }): Operator {
  const deps = {
    messages: { listPage: async () => ({ messages: [] }), count: async () => 0 },
    subscriptions: { listByUser: async () => [] },
    outbox: {},
    changes: { userChanged: async () => undefined },
    now: () => clock.t,
  } as unknown as OperatorDeps;
  return new Operator(deps);
}

describe('Operator recent deliveries', () => {
  it("shows a user's own deliveries, newest first, with their time, and forgets all but the last 200", async () => {
    const clock = { t: Date.parse('2026-12-07T10:00:00.000Z') };
    const operator = operatorAt(clock);
    for (let i = 0; i < 250; i++) {
      clock.t += 1000;
      operator.delivered({ user: i % 2 ? 'sip:b@x' : 'sip:a@x', id: `m${i}`, from: 'sip:s@x', latencyMs: i });
    }
    const a = (await operator.user('sip:a@x')).deliveries;
    // The last 200 are m50..m249; a's are the even ones, 100 of them.
    expect(a).toHaveLength(100);
    expect(a[0]).toEqual({
      user: 'sip:a@x',
      id: 'm248',
      from: 'sip:s@x',
      latencyMs: 248,
      at: new Date(Date.parse('2026-12-07T10:00:00.000Z') + 249_000).toISOString(),
    });
    expect(a.at(-1)!.id).toBe('m50');
    expect((await operator.user('sip:c@x')).deliveries).toEqual([]);
  });
});
