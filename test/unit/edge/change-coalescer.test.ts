/**
 * NOTIFY rounds for list changes: immediate while the user's changes are few (a deposit then a
 * retrieval), rate-limited in a burst, never losing the last change (full state).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ChangeCoalescer } from '#functions/edge/change-coalescer.ts';
import type { ChangeDetail } from '#shared/ports.ts';

describe('ChangeCoalescer', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fires at once for a deposit followed by a retrieval within the interval', async () => {
    vi.useFakeTimers();
    const fired: number[] = [];
    const c = new ChangeCoalescer(async () => void fired.push(Date.now()), 1000, Date.now, 3);
    const t0 = Date.now();
    await c.userChanged('alice');
    vi.advanceTimersByTime(100);
    await c.userChanged('alice');
    expect(fired).toEqual([t0, t0 + 100]);
    c.stop();
  });

  it('in a burst, fires the first few at once and then one round per interval carrying the rest', async () => {
    vi.useFakeTimers();
    const fired: number[] = [];
    const c = new ChangeCoalescer(async () => void fired.push(Date.now()), 1000, Date.now, 3);
    const t0 = Date.now();
    for (let i = 0; i < 10; i++) await c.userChanged('bob');
    expect(fired).toEqual([t0, t0, t0]);
    await vi.advanceTimersByTimeAsync(999);
    expect(fired).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1);
    expect(fired).toEqual([t0, t0, t0, t0 + 1000]);
    // Another user is not held back by bob's burst.
    await c.userChanged('carol');
    expect(fired).toHaveLength(5);
    c.stop();
  });

  it('passes on what a change tells; a round that waited carries all its changes’ watchers and the newest revision', async () => {
    vi.useFakeTimers();
    const rounds: ChangeDetail[] = [];
    const c = new ChangeCoalescer(async (_user, change) => void rounds.push(change), 1000, Date.now, 1);
    await c.userChanged('alice', { dialogIds: ['d1'], revision: 4 });
    expect(rounds).toEqual([{ dialogIds: ['d1'], revision: 4 }]);
    await c.userChanged('alice', { dialogIds: ['d1'], revision: 6 });
    await c.userChanged('alice', { dialogIds: ['d2'], revision: 5 });
    await vi.advanceTimersByTimeAsync(1000);
    expect(rounds[1]).toEqual({ dialogIds: ['d1', 'd2'], revision: 6 });
    // A change that tells nothing (the edge's own, local mode) makes the round list the
    // watchers and read the count strongly consistent.
    await c.userChanged('alice', { dialogIds: ['d1'], revision: 7 });
    await c.userChanged('alice');
    await vi.advanceTimersByTimeAsync(1000);
    expect(rounds[2]).toEqual({});
    c.stop();
  });
});
