import { describe, expect, it } from 'vitest';
import { FixedDelayTimers, TimerQueues, TimerSet } from '#shared/sip/transaction/timers.ts';
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

  it('never fires an item cancelled by its handle, and counts only the items still waiting', async () => {
    const fired: string[] = [];
    const timers = new FixedDelayTimers<string>(
      10,
      (item) => fired.push(item),
      () => {},
    );
    const a = timers.add('a');
    const b = timers.add('b');
    timers.add('c');
    timers.cancel(b);
    timers.cancel(b);
    expect(timers.size).toBe(2);
    await until(() => fired.length === 2);
    // A handle that fired is spent: cancelling it now touches nothing added since.
    timers.cancel(a);
    timers.add('d');
    await until(() => fired.length === 3);
    expect(fired).toEqual(['a', 'c', 'd']);
    expect(timers.size).toBe(0);
  });
});

describe("a layer's timer queues", () => {
  it('fire each timer after its own delay, in deadline order, and drop a cleared one', async () => {
    const fired: Array<{ name: string; at: number }> = [];
    const queues = new TimerQueues(() => {});
    const set = new TimerSet(queues);
    const other = new TimerSet(queues);
    const t0 = performance.now();
    set.set('E', 30, () => fired.push({ name: 'E', at: performance.now() - t0 }));
    set.set('F', 10, () => fired.push({ name: 'F', at: performance.now() - t0 }));
    other.set('E', 30, () => fired.push({ name: 'other E', at: performance.now() - t0 }));
    expect(set.has('E')).toBe(true);
    other.clear('E');
    expect(other.has('E')).toBe(false);
    // Set again under the same name: the first one is replaced, not fired as well.
    set.set('F', 20, () => fired.push({ name: 'F again', at: performance.now() - t0 }));
    expect(queues.size).toBe(2);
    await until(() => fired.length === 2, 2000, 'two timers');
    await delay(40);
    expect(fired.map((f) => f.name)).toEqual(['F again', 'E']);
    expect(fired[0]!.at).toBeGreaterThanOrEqual(20);
    expect(fired[1]!.at).toBeGreaterThanOrEqual(30);
    expect(set.has('E')).toBe(false);
    expect(queues.size).toBe(0);
  });
});
