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
});
