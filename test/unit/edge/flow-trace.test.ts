/** The operator's ladder keeps the last `capacity` messages, oldest first, grouped by Call-ID. */
import { describe, expect, it } from 'vitest';
import { FlowTrace } from '#functions/edge/flow-trace.ts';

describe('FlowTrace', () => {
  it('keeps the last messages once full, in the order they came', () => {
    const trace = new FlowTrace(3);
    for (const [i, callId] of ['a', 'b', 'a', 'b', 'a'].entries())
      trace.msrp(callId, 'in', 'tcp 127.0.0.1:1', `SEND ${i}`);
    expect(trace.flow('a').map((e) => e.label)).toEqual(['SEND 2', 'SEND 4']);
    expect(trace.flow('b').map((e) => e.label)).toEqual(['SEND 3']);
    expect(trace.calls().map((c) => [c.callId, c.messages, c.first_label])).toEqual([
      ['a', 2, 'SEND 2'],
      ['b', 1, 'SEND 3'],
    ]);
  });

  it('keeps each field as it came (clipped, any characters) through many turns of the ring', () => {
    const trace = new FlowTrace(50);
    const long = `é${'x'.repeat(300)}`;
    for (let i = 0; i < 1000; i++) {
      trace.msrp(`call-${i % 7}`, i % 2 ? 'out' : 'in', `tcp [::1]:${i}`, i % 10 === 0 ? long : `SEND ${i}`, `tx-${i}`);
    }
    const last = trace.flow('call-5');
    // 999 % 7 = 5: the newest message is the last of its call, whole.
    expect(last.at(-1)).toMatchObject({
      proto: 'MSRP',
      dir: 'out',
      peer: 'tcp [::1]:999',
      label: 'SEND 999',
      seq: 'tx-999',
    });
    const kept = trace.calls(10).reduce((n, c) => n + c.messages, 0);
    expect(kept).toBeGreaterThan(20);
    expect(kept).toBeLessThanOrEqual(50);
    const labels = [0, 1, 2, 3, 4, 5, 6].flatMap((c) => trace.flow(`call-${c}`).map((e) => e.label));
    expect(labels.filter((l) => l.startsWith('é'))).toContain(`é${'x'.repeat(119)}…`);
    // Only whole entries of the newest messages: no two from far apart in time.
    const numbers = trace.flow('call-5').map((e) => Number(e.seq!.slice(3)));
    expect(numbers.every((n) => n > 1000 - 60)).toBe(true);
  });
});
