import { describe, expect, it } from 'vitest';
import { RecentLists } from '#shared/adapters/sqlite/recent-lists.ts';

const row = (id: string, expires = 100) => ({ id, expires_at: expires });

describe('RecentLists', () => {
  it('gives the rows among the ids, each once, in the order asked, unexpired at the time given', () => {
    const lists = new RecentLists();
    lists.remember('alice', 10, [row('a'), row('b', 50), row('c')]);
    expect(lists.rowsOf('alice', ['c', 'x', 'a', 'c'], 10)).toEqual([row('c'), row('a')]);
    expect(lists.rowsOf('alice', ['a', 'b'], 50)).toEqual([row('a')]);
    expect(lists.rowsOf('bob', ['a'], 10)).toBeUndefined();
  });

  it('keeps nothing for a time before the list was read, or once forgotten', () => {
    const lists = new RecentLists();
    lists.remember('alice', 10, [row('a')]);
    expect(lists.rowsOf('alice', ['a'], 9)).toBeUndefined();
    lists.forget('alice');
    expect(lists.rowsOf('alice', ['a'], 10)).toBeUndefined();
  });

  it('keeps the users listed last, and no list longer than its bound', () => {
    const lists = new RecentLists(2, 3);
    lists.remember('a', 0, [row('1')]);
    lists.remember('b', 0, [row('1')]);
    // Listed again: now the most recent.
    lists.remember('a', 0, [row('1')]);
    lists.remember('c', 0, [row('1')]);
    expect(lists.size).toBe(2);
    expect(lists.rowsOf('b', ['1'], 0)).toBeUndefined();
    expect(lists.rowsOf('a', ['1'], 0)).toEqual([row('1')]);
    lists.remember('a', 0, [row('1'), row('2'), row('3'), row('4')]);
    expect(lists.rowsOf('a', ['1'], 0)).toBeUndefined();
  });

  it('keeps no more than its bytes in all: the users listed first go, and a list over them is not kept', () => {
    const lists = new RecentLists<{ id: string; expires_at: number; size: number }>(10, 10, 100, (r) => r.size);
    const sized = (id: string, size: number) => ({ id, expires_at: 100, size });
    lists.remember('a', 0, [sized('1', 40)]);
    lists.remember('b', 0, [sized('1', 30), sized('2', 20)]);
    expect(lists.keptBytes).toBe(90);
    lists.remember('c', 0, [sized('1', 30)]);
    expect(lists.rowsOf('a', ['1'], 0)).toBeUndefined();
    expect(lists.rowsOf('b', ['1'], 0)).toHaveLength(1);
    expect(lists.keptBytes).toBe(80);
    lists.remember('d', 0, [sized('1', 101)]);
    expect(lists.rowsOf('d', ['1'], 0)).toBeUndefined();
    expect(lists.keptBytes).toBe(80);
    lists.forget('b');
    expect(lists.keptBytes).toBe(30);
  });

  it('lists all the rows kept unexpired at the time given, in the order remembered', () => {
    const lists = new RecentLists();
    lists.remember('alice', 10, [row('b'), row('a', 50), row('c')]);
    expect(lists.listOf('alice', 10)).toEqual([row('b'), row('a', 50), row('c')]);
    expect(lists.listOf('alice', 50)).toEqual([row('b'), row('c')]);
    expect(lists.listOf('alice', 9)).toBeUndefined();
    expect(lists.listOf('bob', 10)).toBeUndefined();
  });

  it('keeps a list again after a removal, less the removed rows, unless something came in between', () => {
    const lists = new RecentLists();
    lists.remember('alice', 10, [row('a'), row('b'), row('c')]);
    const keepAgain = lists.forgetUntilRemoved('alice');
    // Forgotten while the removal runs.
    expect(lists.listOf('alice', 10)).toBeUndefined();
    keepAgain(['a', 'c']);
    expect(lists.listOf('alice', 10)).toEqual([row('b')]);
    // Kept again even when nothing is left.
    lists.forgetUntilRemoved('alice')(['b']);
    expect(lists.listOf('alice', 10)).toEqual([]);

    // Another write in between (forget), a list in between (remember), a failed removal: not kept again.
    lists.remember('alice', 10, [row('a'), row('b')]);
    const afterWrite = lists.forgetUntilRemoved('alice');
    lists.forget('alice');
    afterWrite(['a']);
    expect(lists.listOf('alice', 10)).toBeUndefined();
    lists.remember('alice', 10, [row('a'), row('b')]);
    const afterList = lists.forgetUntilRemoved('alice');
    lists.remember('alice', 11, [row('a'), row('b'), row('d')]);
    afterList(['a']);
    expect(lists.listOf('alice', 11)).toEqual([row('a'), row('b'), row('d')]);
    const failed = lists.forgetUntilRemoved('alice');
    failed(undefined);
    expect(lists.listOf('alice', 11)).toBeUndefined();
    // Nothing kept before the removal: nothing kept after it.
    lists.forgetUntilRemoved('bob')(['x']);
    expect(lists.listOf('bob', 10)).toBeUndefined();
  });

  it('a list kept again after a removal counts its bytes and keeps within the bounds', () => {
    const lists = new RecentLists<{ id: string; expires_at: number; size: number }>(2, 10, 100, (r) => r.size);
    const sized = (id: string, size: number) => ({ id, expires_at: 100, size });
    lists.remember('a', 0, [sized('1', 40), sized('2', 30)]);
    lists.forgetUntilRemoved('a')(['1']);
    expect(lists.keptBytes).toBe(30);
    lists.remember('b', 0, [sized('1', 60)]);
    expect(lists.keptBytes).toBe(90);
    // Kept again after 'c' was listed: the least recently kept ('b') goes, for the user bound.
    const keepAgain = lists.forgetUntilRemoved('a');
    lists.remember('c', 0, [sized('1', 10)]);
    keepAgain(['2']);
    expect(lists.size).toBe(2);
    expect(lists.listOf('b', 0)).toBeUndefined();
    expect(lists.listOf('a', 0)).toEqual([]);
    expect(lists.keptBytes).toBe(10);
  });
});
