import { describe, expect, it } from 'vitest';
import { FixedDelayTimers } from '#shared/sip/transaction/timers.ts';
import { delay, until } from '../transport/peers.ts';

describe('timers of one fixed delay', () => {
  it('fires each item once, in the order added, no sooner than the delay after it was added', async () => {
    const fired: Array<{ item: string; at: number }> = [];
    const added = new Map<string, number>();
    const timers = new FixedDelayTimers<string>(
      40,
      (item) => fired.push({ item, at: performance.now() }),
      () => {},
    );
    for (const item of ['a', 'b']) {
      added.set(item, performance.now());
      timers.add(item);
    }
    await delay(15);
    added.set('c', performance.now());
    timers.add('c');
    expect(timers.size).toBe(3);
    await until(() => fired.length === 3, 2000, 'three timers');
    expect(fired.map((f) => f.item)).toEqual(['a', 'b', 'c']);
    for (const f of fired) expect(f.at - added.get(f.item)!).toBeGreaterThanOrEqual(40);
    // 'c' waited its own delay, not the first batch's.
    expect(fired[2]!.at - fired[0]!.at).toBeGreaterThanOrEqual(10);
    expect(timers.size).toBe(0);
  });

  it('keeps firing the rest when a callback throws, and fires nothing after clear', async () => {
    const fired: number[] = [];
    const logged: string[] = [];
    const timers = new FixedDelayTimers<number>(
      10,
      (n) => {
        if (n === 1) throw new Error('boom');
        fired.push(n);
      },
      (_level, msg) => logged.push(msg),
    );
    timers.add(1);
    timers.add(2);
    await until(() => fired.length === 1);
    expect(fired).toEqual([2]);
    expect(logged).toHaveLength(1);
    timers.add(3);
    timers.clear();
    await delay(40);
    expect(fired).toEqual([2]);
    expect(timers.size).toBe(0);
  });

  it('stays correct across its compaction (thousands of items)', async () => {
    const fired: number[] = [];
    const timers = new FixedDelayTimers<number>(
      5,
      (n) => fired.push(n),
      () => {},
    );
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 1500; i++) timers.add(round * 1500 + i);
      await delay(2);
    }
    await until(() => fired.length === 4500, 3000, 'all items');
    expect(fired).toEqual(Array.from({ length: 4500 }, (_, i) => i));
  });
});
