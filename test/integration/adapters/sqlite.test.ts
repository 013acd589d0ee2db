/**
 * What the SQLite backend adds to the store contract (test/contract): one process per data
 * folder, jobs and messages kept across a restart, group commits that keep each write's
 * outcome its own, and the sweep's repair of the per-user counts.
 */
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DATABASE_FILE,
  DataDirInUseError,
  ONE_STATEMENT,
  openSqliteBackend,
  SqliteDatabase,
  SqliteDeferredMessageStore,
  type SqliteBackend,
} from '#shared/adapters/sqlite/index.ts';
import { ALICE, NOW, message, session, tempDir } from './fixtures.ts';
import { claimOne } from '../../support/one-message.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function folder(): Promise<string> {
  const { dir, remove } = await tempDir();
  cleanups.push(remove);
  return dir;
}

async function open(dataDir: string, now = () => NOW * 1000): Promise<SqliteBackend> {
  const backend = await openSqliteBackend({ dataDir, now });
  cleanups.push(() => backend.close());
  return backend;
}

describe('SQLite backend', () => {
  it('refuses a second opener of the same data folder, naming the process that holds it', async () => {
    const dir = await folder();
    await open(dir);
    const second = openSqliteBackend({ dataDir: dir });
    await expect(second).rejects.toBeInstanceOf(DataDirInUseError);
    await expect(second).rejects.toThrow(`data folder ${dir} is in use by process ${process.pid}`);
  });

  it('the folder is free again once the holder closes', async () => {
    const dir = await folder();
    const first = await openSqliteBackend({ dataDir: dir });
    first.close();
    await open(dir);
  });

  it('keeps messages, queued jobs and jobs in flight across a restart', async () => {
    const dir = await folder();
    const m = message();
    const first = await openSqliteBackend({ dataDir: dir, now: Date.now });
    await first.ports.messages.put(m);
    await first.ports.queue.enqueue({ user: ALICE, sessionId: 'in-flight', edgeId: 'local' });
    // Taken by a worker that dies with the process: hidden for 180 s, were it still running.
    expect(await first.queues.delivery.receive(1)).toHaveLength(1);
    await first.ports.queue.enqueue({ user: ALICE, sessionId: 'queued', edgeId: 'local' });
    first.close();

    const second = await open(dir, Date.now);
    expect(await second.ports.messages.get(ALICE, m.id, NOW)).toEqual(m);
    const jobs = await second.queues.delivery.receive(10);
    expect(jobs.map((j) => JSON.parse(j.body).sessionId).sort()).toEqual(['in-flight', 'queued']);
    expect(jobs.map((j) => j.receiveCount).sort()).toEqual([1, 2]);
    expect(jobs.find((j) => j.body.includes('in-flight'))!.receiveCount).toBe(2);
  });

  it("holds the page cache it is given (2 MiB unless told), not better-sqlite3's 16 MB", async () => {
    const dir = await folder();
    const backend = await open(dir);
    expect(backend.database.db.pragma('cache_size', { simple: true })).toBe(-2048);
    backend.close();
    const larger = await openSqliteBackend({ dataDir: dir, cacheBytes: 16 * 1024 ** 2 });
    cleanups.push(() => larger.close());
    expect(larger.database.db.pragma('cache_size', { simple: true })).toBe(-16_384);
  });

  it("keeps a group commit's savepoints in memory: no temporary file is written", async () => {
    const dir = await folder();
    const db = await SqliteDatabase.open({ dataDir: dir });
    cleanups.push(() => db.close());
    db.db.exec('CREATE TABLE t (x INTEGER PRIMARY KEY, pad TEXT)');
    const insert = db.db.prepare('INSERT INTO t (x, pad) VALUES (?, ?)');
    const openFiles = () =>
      readdirSync('/proc/self/fd').flatMap((fd) => {
        try {
          return [readlinkSync(`/proc/self/fd/${fd}`)];
        } catch {
          return [];
        }
      });
    await db.write(() => {
      for (let x = 0; x < 200; x++) insert.run(x, 'p'.repeat(1000));
    });
    const before = new Set(openFiles());
    // Two writes in one commit, each in a savepoint: SQLite keeps the pages the first changes (about 40
    // of them) to roll back to, past 64 KiB in a temporary file unless told to keep them in memory.
    const first = db.write(() => db.db.prepare('DELETE FROM t WHERE x < 150').run());
    const second = db.write(() => openFiles().filter((f) => !before.has(f)));
    await first;
    expect(await second).toEqual([]);
    expect(db.db.prepare('SELECT count(*) FROM t').pluck().get()).toBe(50);
  });

  it('opens a database made before message leases and claims its messages', async () => {
    const dir = await folder();
    const m = message();
    const old = new Database(path.join(dir, DATABASE_FILE));
    old.exec(
      'CREATE TABLE messages (user TEXT NOT NULL, id TEXT NOT NULL, arrived_at TEXT NOT NULL, ' +
        'expires_at INTEGER NOT NULL, meta TEXT NOT NULL, cpim BLOB NOT NULL, UNIQUE (user, id))',
    );
    const { cpim, ...meta } = m;
    old
      .prepare('INSERT INTO messages (user, id, arrived_at, expires_at, meta, cpim) VALUES (?, ?, ?, ?, ?, ?)')
      .run(m.user, m.id, m.arrivedAt, m.expiresAt, JSON.stringify(meta), Buffer.from(cpim));
    old.close();
    const backend = await open(dir);
    expect(await claimOne(backend.ports.messages, ALICE, m.id, 's-1', NOW, 60)).toEqual(m);
    expect(await claimOne(backend.ports.messages, ALICE, m.id, 's-2', NOW, 60)).toBeUndefined();
  });

  it('opens a database whose message rows held delivery leases: the columns go, a dead claim holds nothing', async () => {
    const dir = await folder();
    const m = message();
    const old = new Database(path.join(dir, DATABASE_FILE));
    old.exec(
      'CREATE TABLE messages (user TEXT NOT NULL, id TEXT NOT NULL, arrived_at TEXT NOT NULL, ' +
        'expires_at INTEGER NOT NULL, meta TEXT NOT NULL, cpim BLOB NOT NULL, lease_holder TEXT, ' +
        'lease_until INTEGER NOT NULL DEFAULT 0, UNIQUE (user, id))',
    );
    const { cpim, ...meta } = m;
    // Claimed by a delivery of the process that made the file, far into the future.
    old
      .prepare(
        'INSERT INTO messages (user, id, arrived_at, expires_at, meta, cpim, lease_holder, lease_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(m.user, m.id, m.arrivedAt, m.expiresAt, JSON.stringify(meta), Buffer.from(cpim), 's-dead', NOW + 3600);
    old.close();
    const backend = await open(dir);
    const columns = backend.database.db.prepare("SELECT name FROM pragma_table_info('messages')").pluck().all();
    expect(columns).not.toContain('lease_holder');
    expect(columns).not.toContain('lease_until');
    expect(await claimOne(backend.ports.messages, ALICE, m.id, 's-1', NOW, 60)).toEqual(m);
  });

  it('reads rows an earlier version wrote (every field in meta) as it reads its own, to another recipient too', async () => {
    const backend = await open(await folder());
    const old = message({ messageId: 'old' });
    const own = message({ messageId: 'own', to: 'sip:alias@example.com', ageSeconds: 30 });
    const { cpim, ...meta } = old;
    backend.database.db
      .prepare('INSERT INTO messages (user, id, arrived_at, expires_at, meta, cpim) VALUES (?, ?, ?, ?, ?, ?)')
      .run(old.user, old.id, old.arrivedAt, old.expiresAt, JSON.stringify(meta), Buffer.from(cpim));
    await backend.ports.messages.put(own);
    const { messages } = backend.ports;
    expect(await messages.get(ALICE, old.id, NOW)).toEqual(old);
    expect(await messages.get(ALICE, own.id, NOW)).toEqual(own);
    expect(await messages.list(ALICE, NOW)).toEqual([old, own].map(({ cpim: _, ...entry }) => entry));
    expect(await messages.claimMany(ALICE, [own.id, old.id], 's-1', NOW, 60)).toEqual([own, old]);
  });

  it('each read of a message is its own object: changing one leaves the next read as stored', async () => {
    const backend = await open(await folder());
    const m = message();
    await backend.ports.messages.put(m);
    const [listed] = await backend.ports.messages.list(ALICE, NOW);
    Object.assign(listed!, { from: 'sip:mallory@example.com', subject: 'changed' });
    const [found] = await backend.ports.messages.getMany(ALICE, [m.id], NOW);
    expect(found).not.toBe(listed);
    expect(await backend.ports.messages.claimMany(ALICE, [m.id], 's-1', NOW, 60)).toEqual([m]);
  });

  describe("an INVITE's batch read and its delivery's claim after the NOTIFY's list (RecentLists)", () => {
    it('finds the listed rows without reading the table again', async () => {
      const backend = await open(await folder());
      const [a, b] = [message(), message()];
      for (const m of [a, b]) await backend.ports.messages.put(m);
      await backend.ports.messages.list(ALICE, NOW);
      // Changed behind the store's back (nothing in the service does): the batch read does not see it.
      backend.database.db.prepare("UPDATE messages SET meta = json_set(meta, '$.subject', 'behind')").run();
      const got = await backend.ports.messages.getMany(ALICE, [b.id, 'unknown', a.id, a.id], NOW);
      expect(got.map((m) => m.id)).toEqual([b.id, a.id]);
      expect(got.map((m) => m.subject)).toEqual([b.subject, a.subject]);
      // Without a list before it, the batch read reads the table.
      const other = await open(await folder());
      await other.ports.messages.put(a);
      other.database.db.prepare("UPDATE messages SET meta = json_set(meta, '$.subject', 'behind')").run();
      expect((await other.ports.messages.getMany(ALICE, [a.id], NOW)).map((m) => m.subject)).toEqual(['behind']);
    });

    it('the claim after the list takes the listed payloads without reading the table, each its own copy', async () => {
      const backend = await open(await folder());
      const { messages } = backend.ports;
      const [a, b] = [message(), message()];
      for (const m of [a, b]) await messages.put(m);
      await messages.list(ALICE, NOW);
      backend.database.db.prepare("UPDATE messages SET cpim = x'00'").run();
      const claimed = await messages.claimMany(ALICE, [b.id, 'unknown', a.id], 's-1', NOW, 60);
      expect(claimed).toEqual([b, a]);
      // A change to what one claim returned is not seen by the next.
      claimed[0]!.cpim.fill(0);
      claimed[0]!.subject = 'changed';
      expect(await messages.releaseMany(ALICE, [a.id, b.id], 's-1')).toEqual([a.id, b.id]);
      expect(await messages.claimMany(ALICE, [b.id], 's-2', NOW, 60)).toEqual([b]);
      // Without a list before it, the claim reads the table.
      const other = await open(await folder());
      await other.ports.messages.put(a);
      other.database.db.prepare("UPDATE messages SET cpim = x'00'").run();
      const [fromTable] = await other.ports.messages.claimMany(ALICE, [a.id], 's-1', NOW, 60);
      expect([...fromTable!.cpim]).toEqual([0]);
    });

    it('a payload over 16 KiB is not read with the list: the claim reads it from the table', async () => {
      const backend = await open(await folder());
      const { messages } = backend.ports;
      const [small, large] = [message(), message({ cpim: new Uint8Array(16 * 1024 + 1).fill(7) })];
      for (const m of [small, large]) await messages.put(m);
      await messages.list(ALICE, NOW);
      backend.database.db.prepare("UPDATE messages SET cpim = x'00'").run();
      const claimed = await messages.claimMany(ALICE, [small.id, large.id], 's-1', NOW, 60);
      expect(claimed.map((m) => [...m.cpim])).toEqual([[0], [0]]);
    });

    it('a deposit, a delete or an expiry since the list is seen by the batch read and the claim', async () => {
      const backend = await open(await folder());
      const { messages } = backend.ports;
      const [a, b, c] = [message(), message(), message({ ttl: 30 })];
      for (const m of [a, b, c]) await messages.put(m);
      await messages.list(ALICE, NOW);
      expect(await messages.deleteMany(ALICE, [a.id])).toEqual([a.id]);
      expect((await messages.getMany(ALICE, [a.id, b.id], NOW)).map((m) => m.id)).toEqual([b.id]);
      expect(await messages.claimMany(ALICE, [a.id, b.id], 's-1', NOW, 60)).toEqual([b]);
      await messages.releaseMany(ALICE, [b.id], 's-1');
      await messages.list(ALICE, NOW);
      const d = message();
      await messages.put(d);
      expect((await messages.getMany(ALICE, [d.id, b.id], NOW)).map((m) => m.id).sort()).toEqual([b.id, d.id].sort());
      expect(await messages.claimMany(ALICE, [d.id, b.id], 's-2', NOW, 60)).toEqual([d, b]);
      await messages.releaseMany(ALICE, [d.id, b.id], 's-2');
      await messages.list(ALICE, NOW);
      // c expires 30 s after NOW: gone for a read at NOW + 30.
      expect((await messages.getMany(ALICE, [b.id, c.id], NOW + 30)).map((m) => m.id)).toEqual([b.id]);
      expect(await messages.claimMany(ALICE, [b.id, c.id], 's-3', NOW + 30, 60)).toEqual([b]);
    });

    it('the lists after a delete take the rest of the list kept, without reading the table', async () => {
      const backend = await open(await folder());
      const { messages } = backend.ports;
      const [a, b, c] = [message({ ageSeconds: 30 }), message({ ageSeconds: 20 }), message({ ageSeconds: 10 })];
      for (const m of [a, b, c]) await messages.put(m);
      await messages.list(ALICE, NOW);
      expect(await messages.deleteMany(ALICE, [a.id, 'unknown'])).toEqual([a.id]);
      // Changed behind the store's back (nothing in the service does): the lists do not see it.
      backend.database.db.prepare("UPDATE messages SET meta = json_set(meta, '$.subject', 'behind')").run();
      const rest = await messages.list(ALICE, NOW);
      expect(rest.map((m) => [m.id, m.subject])).toEqual([
        [b.id, b.subject],
        [c.id, c.subject],
      ]);
      expect((await messages.list(ALICE, NOW, 1)).map((m) => m.id)).toEqual([b.id]);
      // Each list's entries are its own.
      rest[0]!.subject = 'changed';
      expect((await messages.list(ALICE, NOW))[0]!.subject).toBe(b.subject);
      // All delivered: the lists that follow are empty, still without reading the table.
      expect(await messages.deleteMany(ALICE, [b.id, c.id])).toEqual([b.id, c.id]);
      backend.database.db
        .prepare(
          "INSERT INTO messages (user, id, arrived_at, expires_at, meta, cpim) VALUES (?, 'behind', ?, ?, '{}', x'00')",
        )
        .run(ALICE, a.arrivedAt, NOW + 60);
      expect(await messages.list(ALICE, NOW)).toEqual([]);
      // Without a list before the delete, the list after it reads the table.
      const other = await open(await folder());
      for (const m of [a, b]) await other.ports.messages.put(m);
      await other.ports.messages.deleteMany(ALICE, [a.id]);
      other.database.db.prepare("UPDATE messages SET meta = json_set(meta, '$.subject', 'behind')").run();
      expect((await other.ports.messages.list(ALICE, NOW)).map((m) => m.subject)).toEqual(['behind']);
    });

    it('a deposit in the same commit as a delete, or a delete that fails, leaves the next list to the table', async () => {
      const backend = await open(await folder());
      const { messages } = backend.ports;
      const [a, b, d] = [message({ ageSeconds: 30 }), message({ ageSeconds: 20 }), message({ ageSeconds: 10 })];
      for (const m of [a, b]) await messages.put(m);
      await messages.list(ALICE, NOW);
      // Written in the same turn: one group commit, the deposit after the delete.
      const [removed, deposited] = await Promise.all([messages.deleteMany(ALICE, [a.id]), messages.put(d)]);
      expect([removed, deposited.created]).toEqual([[a.id], true]);
      expect((await messages.list(ALICE, NOW)).map((m) => m.id)).toEqual([b.id, d.id]);
      // A delete whose write fails (its summary's table gone) undoes itself: b and d are still
      // listed, read from the table (a change behind the store's back is seen: nothing kept).
      backend.database.db.exec('DROP TABLE user_summary');
      await expect(messages.deleteMany(ALICE, [b.id])).rejects.toThrow(/user_summary/);
      backend.database.db.prepare("UPDATE messages SET meta = json_set(meta, '$.subject', 'behind')").run();
      expect((await messages.list(ALICE, NOW)).map((m) => [m.id, m.subject])).toEqual([
        [b.id, 'behind'],
        [d.id, 'behind'],
      ]);
    });

    it('a delete whose commit or fdatasync fails leaves the next list to the table', async () => {
      const ioError = () => Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' });
      // The commit fails: the delete is undone, and the list reads the table.
      const backend = await open(await folder());
      const [a, b] = [message({ ageSeconds: 30 }), message({ ageSeconds: 20 })];
      for (const m of [a, b]) await backend.ports.messages.put(m);
      await backend.ports.messages.list(ALICE, NOW);
      const commit = (backend.database as unknown as { commit: { run(): unknown } }).commit;
      Object.defineProperty(backend.database, 'commit', {
        value: {
          run: () => {
            throw ioError();
          },
        },
      });
      await expect(backend.ports.messages.deleteMany(ALICE, [a.id])).rejects.toThrow('disk I/O error');
      Object.defineProperty(backend.database, 'commit', { value: commit });
      backend.database.db.prepare("UPDATE messages SET meta = json_set(meta, '$.subject', 'behind')").run();
      expect((await backend.ports.messages.list(ALICE, NOW)).map((m) => [m.id, m.subject])).toEqual([
        [a.id, 'behind'],
        [b.id, 'behind'],
      ]);
      // The WAL's fdatasync fails: the delete stands in the table but is not acknowledged; the
      // list reads the table.
      const other = await open(await folder());
      for (const m of [a, b]) await other.ports.messages.put(m);
      await other.ports.messages.list(ALICE, NOW);
      Object.defineProperty(other.database, 'poolSync', {
        value: (_fd: number, done: (err: NodeJS.ErrnoException | null) => void) => setImmediate(() => done(ioError())),
      });
      await expect(other.ports.messages.deleteMany(ALICE, [a.id])).rejects.toThrow('cannot be made durable');
      other.database.db.prepare("UPDATE messages SET meta = json_set(meta, '$.subject', 'behind')").run();
      expect((await other.ports.messages.list(ALICE, NOW)).map((m) => [m.id, m.subject])).toEqual([[b.id, 'behind']]);
    });

    it('a list cut short by its limit, or read at a later time, leaves the batch read to the table', async () => {
      const backend = await open(await folder());
      const { messages } = backend.ports;
      const stored = [message({ ageSeconds: 30 }), message({ ageSeconds: 20 }), message({ ttl: 5 })];
      for (const m of stored) await messages.put(m);
      expect(await messages.list(ALICE, NOW, 2)).toHaveLength(2);
      expect((await messages.getMany(ALICE, [stored[2]!.id], NOW)).map((m) => m.id)).toEqual([stored[2]!.id]);
      // Listed at NOW + 10, after the third expired; read at NOW, when it had not.
      await messages.list(ALICE, NOW + 10);
      expect((await messages.getMany(ALICE, [stored[2]!.id], NOW)).map((m) => m.id)).toEqual([stored[2]!.id]);
    });
  });

  it('claims and releases write nothing to disk: the WAL stays as it was', async () => {
    const backend = await open(await folder());
    const stored = [message(), message(), message()];
    for (const m of stored) await backend.ports.messages.put(m);
    const wal = `${backend.database.file}-wal`;
    const before = statSync(wal).size;
    const ids = stored.map((m) => m.id);
    expect(await backend.ports.messages.claimMany(ALICE, ids, 's-1', NOW, 60)).toEqual(stored);
    expect(await backend.ports.messages.claimMany(ALICE, ids, 's-2', NOW, 60)).toEqual([]);
    expect(await backend.ports.messages.releaseMany(ALICE, ids, 's-1')).toEqual(ids);
    expect(statSync(wal).size).toBe(before);
    // Delivered: the delete is the write, and a later claim finds nothing.
    expect(await backend.ports.messages.deleteMany(ALICE, ids)).toEqual(ids);
    expect(statSync(wal).size).toBeGreaterThan(before);
    expect(await backend.ports.messages.claimMany(ALICE, ids, 's-2', NOW, 60)).toEqual([]);
  });

  it('opens a database whose sessions were made WITHOUT ROWID: copied into the rowid table, still there', async () => {
    const dir = await folder();
    const first = await openSqliteBackend({ dataDir: dir, now: () => NOW * 1000 });
    const s = session({ sessionId: 'kept' });
    await first.ports.sessions.put(s);
    first.close();
    // The table as an earlier version made it, with the row in it.
    const older = new Database(path.join(dir, DATABASE_FILE));
    older.exec(
      'ALTER TABLE sessions RENAME TO s2; DROP INDEX sessions_by_expiry; ' +
        'CREATE TABLE sessions (session_id TEXT PRIMARY KEY, doc TEXT NOT NULL, state TEXT NOT NULL, lease_until INTEGER, ' +
        'local_cseq INTEGER NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID; INSERT INTO sessions SELECT * FROM s2; ' +
        'DROP TABLE s2; CREATE INDEX sessions_by_expiry ON sessions (expires_at);',
    );
    older.close();
    const backend = await open(dir);
    const made = backend.database.db.prepare("SELECT sql FROM sqlite_schema WHERE name = 'sessions'").pluck().get();
    expect(made).not.toMatch(/WITHOUT ROWID/i);
    expect(await backend.ports.sessions.get('kept')).toEqual(s);
    expect(await backend.ports.sessions.begin(session({ sessionId: 'new' }), NOW, 60)).toBe(1);
  });

  it('opens a database whose jobs were made with AUTOINCREMENT: the queued jobs stay, new ids follow theirs', async () => {
    const dir = await folder();
    const older = new Database(path.join(dir, DATABASE_FILE));
    older.exec(
      'CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL, body TEXT NOT NULL, ' +
        'sent_at INTEGER NOT NULL, visible_at INTEGER NOT NULL, receive_count INTEGER NOT NULL DEFAULT 0, ' +
        'first_received_at INTEGER, dead_at INTEGER); CREATE INDEX jobs_ready ON jobs (queue, dead_at, visible_at);',
    );
    const queued = JSON.stringify({ user: ALICE, sessionId: 'queued', edgeId: 'local' });
    older
      .prepare('INSERT INTO jobs (id, queue, body, sent_at, visible_at) VALUES (41, ?, ?, 0, 0)')
      .run('deliveries', queued);
    older.close();
    const backend = await open(dir, Date.now);
    const made = backend.database.db.prepare("SELECT sql FROM sqlite_schema WHERE name = 'jobs'").pluck().get();
    expect(made).not.toMatch(/AUTOINCREMENT/i);
    const [kept] = await backend.queues.delivery.receive(1);
    expect(kept).toMatchObject({ id: 41, body: queued });
    await backend.ports.queue.enqueue({ user: ALICE, sessionId: 'new', edgeId: 'local' });
    const [next] = await backend.queues.delivery.receive(1);
    expect(next!.id).toBeGreaterThan(41);
  });

  it('housekeeping forgets leases that lapsed (a delivery that never settled), not live ones', async () => {
    let nowMs = NOW * 1000;
    const backend = await open(await folder(), () => nowMs);
    const [a, b] = [message(), message()];
    for (const m of [a, b]) await backend.ports.messages.put(m);
    await backend.ports.messages.claimMany(ALICE, [a.id], 's-1', NOW, 60);
    await backend.ports.messages.claimMany(ALICE, [b.id], 's-2', NOW + 50, 60);
    const leases = (backend.ports.messages as SqliteDeferredMessageStore).leases;
    expect(leases.size).toBe(2);
    nowMs = (NOW + 61) * 1000;
    await backend.housekeeping();
    expect(leases.size).toBe(1);
    // The live one still holds.
    expect(await claimOne(backend.ports.messages, ALICE, b.id, 's-3', NOW + 61, 60)).toBeUndefined();
    expect(await claimOne(backend.ports.messages, ALICE, a.id, 's-3', NOW + 61, 60)).toEqual(a);
  });

  it('writes sharing a commit keep their own outcome: a failing one undoes only itself', async () => {
    const backend = await open(await folder());
    const [a, bad, b] = await Promise.allSettled([
      backend.ports.messages.put(message({ messageId: 'a' })),
      backend.database.write(() => {
        backend.database.db.prepare("INSERT INTO user_summary (user, pending) VALUES ('ghost', 5)").run();
        throw new Error('half-done write');
      }),
      backend.ports.messages.put(message({ messageId: 'b' })),
    ]);
    expect(a.status).toBe('fulfilled');
    expect(bad).toMatchObject({ status: 'rejected', reason: new Error('half-done write') });
    expect(b.status).toBe('fulfilled');
    expect(await backend.ports.messages.count(ALICE, NOW)).toBe(2);
    expect(await backend.ports.messages.count('ghost', NOW)).toBe(0);
  });

  it('a one-statement write without a savepoint that fails in a shared commit undoes only itself', async () => {
    const backend = await open(await folder());
    const { database } = backend;
    const insert = database.db.prepare('INSERT INTO user_summary (user, pending) VALUES (?, ?)');
    const [first, duplicate, second] = await Promise.allSettled([
      database.write(() => insert.run('one', 1), ONE_STATEMENT),
      // The same key again: the statement fails, and SQLite undoes it alone.
      database.write(() => insert.run('one', 9), ONE_STATEMENT),
      database.write(() => insert.run('two', 2), ONE_STATEMENT),
    ]);
    expect(first.status).toBe('fulfilled');
    expect(duplicate).toMatchObject({ status: 'rejected', reason: { code: 'SQLITE_CONSTRAINT_PRIMARYKEY' } });
    expect(second.status).toBe('fulfilled');
    expect(database.db.prepare('SELECT user, pending FROM user_summary ORDER BY user').all()).toEqual([
      { user: 'one', pending: 1 },
      { user: 'two', pending: 2 },
    ]);
  });

  it('the sweep repairs a per-user count that drifted from the rows', async () => {
    const backend = await open(await folder());
    for (const id of ['x', 'y', 'z']) await backend.ports.messages.put(message({ messageId: id }));
    backend.database.db.prepare('UPDATE user_summary SET pending = 40 WHERE user = ?').run(ALICE);
    expect(await backend.ports.messages.count(ALICE, NOW)).toBe(40);
    expect((await backend.housekeeping()).summariesFixed).toBe(1);
    expect(await backend.ports.messages.count(ALICE, NOW)).toBe(3);
    // A user with rows and no summary at all is counted too.
    backend.database.db.prepare('DELETE FROM user_summary').run();
    expect((await backend.housekeeping()).summariesFixed).toBe(1);
    expect(await backend.ports.messages.count(ALICE, NOW)).toBe(3);
  });

  it('the sweep repairs drifted stored bytes too, per user and in all, so the byte caps hold again', async () => {
    const backend = await open(await folder());
    const stored = [message({ messageId: 'b1' }), message({ messageId: 'b2' })];
    for (const m of stored) await backend.ports.messages.put(m);
    const size = stored[0]!.cpim.byteLength;
    const limits = { maxMessagesPerUser: 100, maxBytesPerUser: size * 3, maxStoreBytes: size * 3 };
    // As after a crash between a delivery's removals and its one summary update.
    backend.database.db.prepare('UPDATE user_summary SET bytes = ? WHERE user = ?').run(size * 3, ALICE);
    backend.database.db.prepare('UPDATE store_total SET bytes = ?').run(size * 3);
    await expect(backend.ports.messages.put(message({ messageId: 'b3' }), limits)).rejects.toMatchObject({
      name: 'StoreFullError',
    });
    expect((await backend.housekeeping()).summariesFixed).toBe(1);
    expect(backend.database.db.prepare('SELECT bytes FROM user_summary WHERE user = ?').get(ALICE)).toEqual({
      bytes: stored.reduce((sum, m) => sum + m.cpim.byteLength, 0),
    });
    expect((await backend.ports.messages.put(message({ messageId: 'b3' }), limits)).created).toBe(true);
  });

  it('the sweep removes sessions past their expiry (TTL in AWS)', async () => {
    const backend = await open(await folder());
    await backend.ports.sessions.put(session({ sessionId: 'old', expiresAt: NOW - 1 }));
    await backend.ports.sessions.put(session({ sessionId: 'live' }));
    expect((await backend.housekeeping()).sessionsPurged).toBe(1);
    const rows = backend.database.db.prepare('SELECT session_id FROM sessions').all();
    expect(rows).toEqual([{ session_id: 'live' }]);
  });
});
