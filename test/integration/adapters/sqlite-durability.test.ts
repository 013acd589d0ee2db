/**
 * The SQLite store acknowledges a write (the promise a 202/201 waits for) only once the WAL
 * holding its commit is on disk, and does that wait off the event loop: node's fdatasync (libuv's
 * thread pool) is held here to show that no write resolves before it returns, that commits made
 * meanwhile wait for the next fdatasync, and that a failed fdatasync is never acknowledged. The
 * WAL's checkpoints run outside the commits too: the database file's fdatasync is held the same way.
 */
import * as fs from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SqliteDatabase, type SynchronousMode } from '#shared/adapters/sqlite/index.ts';
import { CHECKPOINT_PAGES, DATABASE_FILE, type SqliteOptions } from '#shared/adapters/sqlite/database.ts';
import { tempDir } from './fixtures.ts';

type Done = (err: NodeJS.ErrnoException | null) => void;
const held: { fd: number; done: Done }[] = [];
let holding = false;

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  return {
    ...real,
    fdatasync: (fd: number, done: Done) => {
      if (holding) held.push({ fd, done });
      else real.fdatasync(fd, done);
    },
  };
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  holding = false;
  for (const h of held.splice(0)) fs.fdatasync(h.fd, h.done);
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function openDb(
  synchronous: SynchronousMode,
  pacing: Pick<SqliteOptions, 'commitDelayMs' | 'busy'> = {},
): Promise<{
  db: SqliteDatabase;
  dir: string;
  insert: (x: number) => Promise<number>;
  insertMany: (from: number, count: number) => Promise<void>;
}> {
  const { dir, remove } = await tempDir();
  cleanups.push(remove);
  const db = await SqliteDatabase.open({ dataDir: dir, synchronous, ...pacing });
  cleanups.push(() => db.close());
  db.db.exec('CREATE TABLE t (x INTEGER PRIMARY KEY, pad TEXT)');
  const stmt = db.db.prepare('INSERT INTO t (x, pad) VALUES (?, ?)');
  return {
    db,
    dir,
    insert: (x) => db.write(() => Number(stmt.run(x, null).lastInsertRowid)),
    // Rows of 1 KB: a write worth more WAL pages than a checkpoint waits for.
    insertMany: (from, count) =>
      db.write(() => {
        for (let x = from; x < from + count; x++) stmt.run(x, 'p'.repeat(1000));
      }),
  };
}

/** The file an fdatasync was asked for, by its descriptor. */
const fileOf = (fd: number) => fs.readlinkSync(`/proc/self/fd/${fd}`);

/** Whether the promise settled within a few turns of the event loop. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return done;
}

describe('SQLite store durability (synchronous=FULL)', () => {
  it('resolves a write only after the fdatasync of its commit returns', async () => {
    const { db, insert } = await openDb('FULL');
    holding = true;
    const first = insert(1);
    expect(await settled(first)).toBe(false);
    expect(held).toHaveLength(1);
    // Committed, so visible to reads, but not yet acknowledged.
    expect(db.db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 1 });
    held.shift()!.done(null);
    await expect(first).resolves.toBe(1);
  });

  it('writes made while an fdatasync runs share the next commit and the next fdatasync', async () => {
    const { db, insert } = await openDb('FULL');
    const rows = () => db.db.prepare('SELECT count(*) AS n FROM t').get();
    holding = true;
    const first = insert(1);
    await settled(first);
    const second = insert(2);
    const third = insert(3);
    expect(await settled(Promise.all([second, third]))).toBe(false);
    expect(held).toHaveLength(1); // one fdatasync at a time
    expect(rows()).toEqual({ n: 1 }); // gathered, not yet committed
    held.shift()!.done(null);
    await expect(first).resolves.toBe(1);
    expect(await settled(second)).toBe(false);
    expect(held).toHaveLength(1); // one more, for both later commits
    held.shift()!.done(null);
    await expect(Promise.all([second, third])).resolves.toEqual([2, 3]);
  });

  it('never acknowledges a write whose fdatasync failed, nor any write after it', async () => {
    const { insert } = await openDb('FULL');
    holding = true;
    const first = insert(1);
    await settled(first);
    const eio = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    const waiting = insert(2); // gathered for the commit after the failed fdatasync
    held.shift()!.done(eio);
    await expect(first).rejects.toThrow('the store cannot be made durable (fdatasync of the WAL: EIO');
    await expect(waiting).rejects.toThrow('the store cannot be made durable');
    await expect(insert(3)).rejects.toThrow('the store cannot be made durable');
  });

  it('close() makes what is committed durable and resolves it', async () => {
    const { db, insert } = await openDb('FULL');
    holding = true;
    const first = insert(1);
    await settled(first);
    const second = insert(2);
    db.close();
    await expect(Promise.all([first, second])).resolves.toEqual([1, 2]);
  });

  it('a commit that changed nothing is answered at once, with no fdatasync', async () => {
    const { db, insert } = await openDb('FULL');
    await insert(1);
    holding = true;
    const poll = db.write(() => db.db.prepare('SELECT count(*) AS n FROM t WHERE x > 5').get());
    await expect(poll).resolves.toEqual({ n: 0 });
    expect(held).toHaveLength(0);
  });

  it('a write that needs no sync (a lease) is answered at its commit; one in the same commit that does waits', async () => {
    const { db, insert } = await openDb('FULL');
    holding = true;
    const lease = db.write(() => db.db.prepare('INSERT INTO t (x) VALUES (10)').run().changes, { sync: false });
    const deposit = insert(11);
    await expect(lease).resolves.toBe(1);
    expect(await settled(deposit)).toBe(false);
    expect(held).toHaveLength(1);
    held.shift()!.done(null);
    await expect(deposit).resolves.toBe(11);
  });

  it('a write that needs no sync still waits while an earlier commit is not on disk (what it read could vanish)', async () => {
    const { db, insert } = await openDb('FULL');
    holding = true;
    const deposit = insert(1);
    await settled(deposit);
    // Reads the row whose commit is not on disk yet: it must not be answered before it is.
    const lease = db.write(() => db.db.prepare('SELECT count(*) AS n FROM t').get(), { sync: false });
    expect(await settled(lease)).toBe(false);
    held.shift()!.done(null);
    await expect(deposit).resolves.toBe(1);
    await expect(lease).resolves.toEqual({ n: 1 });
  });

  it('checkpoints outside the commits: the database file is fdatasynced in the pool, and no commit is made until it returns', async () => {
    const { db, insert, insertMany } = await openDb('FULL');
    const rows = () => db.db.prepare('SELECT count(*) AS n FROM t').get();
    holding = true;
    const bulk = insertMany(1, CHECKPOINT_PAGES * 4);
    await settled(bulk);
    expect(held.map((h) => fileOf(h.fd))).toEqual([expect.stringMatching(/-wal$/)]);
    held.shift()!.done(null);
    await bulk;
    // The WAL is on disk, its pages copied into the database file, whose fdatasync now runs.
    expect(held.map((h) => fileOf(h.fd))).toEqual([expect.stringMatching(new RegExp(`${DATABASE_FILE}$`))]);
    const next = insert(CHECKPOINT_PAGES * 4 + 1);
    expect(await settled(next)).toBe(false);
    expect(rows()).toEqual({ n: CHECKPOINT_PAGES * 4 }); // gathered: its commit would overwrite the WAL
    held.shift()!.done(null);
    await settled(next);
    expect(rows()).toEqual({ n: CHECKPOINT_PAGES * 4 + 1 });
    expect(held.map((h) => fileOf(h.fd))).toEqual([expect.stringMatching(/-wal$/)]);
    held.shift()!.done(null);
    await expect(next).resolves.toBe(CHECKPOINT_PAGES * 4 + 1);
  });

  it('never acknowledges a write after a failed fdatasync of the database file', async () => {
    const { insert, insertMany } = await openDb('FULL');
    holding = true;
    const bulk = insertMany(1, CHECKPOINT_PAGES * 4);
    await settled(bulk);
    held.shift()!.done(null);
    await bulk;
    const waiting = insert(1_000_000);
    const eio = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    held.shift()!.done(eio);
    await expect(waiting).rejects.toThrow('the store cannot be made durable (fdatasync of the database file: EIO');
    await expect(insert(1_000_001)).rejects.toThrow('the store cannot be made durable');
  });

  it('close() during a checkpoint keeps every write: reopened, the database holds them all', async () => {
    const { db, dir, insert, insertMany } = await openDb('FULL');
    holding = true;
    const bulk = insertMany(1, CHECKPOINT_PAGES * 4);
    await settled(bulk);
    held.shift()!.done(null);
    await bulk;
    const last = insert(CHECKPOINT_PAGES * 4 + 1);
    db.close();
    await expect(last).resolves.toBe(CHECKPOINT_PAGES * 4 + 1);
    holding = false;
    const again = await SqliteDatabase.open({ dataDir: dir });
    cleanups.push(() => again.close());
    expect(again.db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: CHECKPOINT_PAGES * 4 + 1 });
  });

  it('NORMAL acknowledges at commit, without an fdatasync', async () => {
    const { insert } = await openDb('NORMAL');
    holding = true;
    await expect(insert(1)).resolves.toBe(1);
    expect(held).toHaveLength(0);
  });
});

describe('SQLite commit pacing (commitDelayMs)', () => {
  const rowsIn = (db: SqliteDatabase) => db.db.prepare('SELECT count(*) AS n FROM t').get();

  it('on a busy loop, writes made after a commit wait and share the next one', async () => {
    const { db, insert } = await openDb('NORMAL', { commitDelayMs: 300, busy: () => 1 });
    // The first commit in a while is made at once.
    await expect(insert(1)).resolves.toBe(1);
    const second = insert(2);
    expect(await settled(second)).toBe(false);
    const third = insert(3);
    expect(await settled(third)).toBe(false);
    expect(rowsIn(db)).toEqual({ n: 1 }); // gathered, not committed yet
    await expect(Promise.all([second, third])).resolves.toEqual([2, 3]);
    expect(rowsIn(db)).toEqual({ n: 3 });
  });

  it('on a calm loop, the writes of each turn commit at once', async () => {
    const { db, insert } = await openDb('NORMAL', { commitDelayMs: 300, busy: () => 0.4 });
    await insert(1);
    const second = insert(2);
    expect(await settled(second)).toBe(true);
    expect(rowsIn(db)).toEqual({ n: 2 });
  });

  it('close() commits the writes a paced commit was waiting for', async () => {
    const { db, dir, insert } = await openDb('FULL', { commitDelayMs: 1000, busy: () => 1 });
    await insert(1);
    const second = insert(2);
    expect(await settled(second)).toBe(false);
    db.close();
    await expect(second).resolves.toBe(2);
    const again = await SqliteDatabase.open({ dataDir: dir });
    cleanups.push(() => again.close());
    expect(rowsIn(again)).toEqual({ n: 2 });
  });
});
