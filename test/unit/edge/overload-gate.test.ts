/**
 * The overload gate's admission rules (issue 11 item 10): new work is refused first, existing
 * work keeps finishing; a request that waited too long or a late loop refuses new work only.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { OverloadGate } from '#functions/edge/overload-gate.ts';

let gate: OverloadGate | undefined;
afterEach(() => gate?.stop());

describe('OverloadGate', () => {
  it('refuses new work at MAX_IN_FLIGHT, work of existing dialogs only at twice that', async () => {
    gate = new OverloadGate({ maxInFlight: 2, maxLagMs: 60_000 });
    const releases: (() => void)[] = [];
    const hold = () => gate!.run(() => new Promise<void>((resolve) => releases.push(resolve)));
    const running = [hold(), hold()];
    expect(gate.refusal(false)).toBe('in-flight');
    expect(gate.refusal(true)).toBeUndefined();
    running.push(hold(), hold());
    expect(gate.refusal(true)).toBe('in-flight');
    for (const release of releases) release();
    await Promise.all(running);
    expect(gate.running).toBe(0);
    expect(gate.refusal(false)).toBeUndefined();
  });

  it('refuses new work that waited past the bound or while the loop is late, not existing work', () => {
    let now = 0;
    let waited = 0;
    gate = new OverloadGate({
      maxInFlight: 10,
      maxLagMs: 100,
      queueDelay: () => waited,
      maxQueueDelayMs: 250,
      now: () => now,
    });
    expect(gate.refusal(false)).toBeUndefined();
    waited = 250; // a burst absorbed: served however many came at once
    expect(gate.refusal(false)).toBeUndefined();
    waited = 251;
    expect(gate.refusal(false)).toBe('queue-delay');
    expect(gate.refusal(true)).toBeUndefined();
    waited = 0;
    now = 101; // no tick for 101 ms: the loop is stuck in one long turn
    expect(gate.refusal(false)).toBe('loop-lag');
    expect(gate.refusal(true)).toBeUndefined();
    gate.tick();
    expect(gate.refusal(false)).toBeUndefined();
  });
});
