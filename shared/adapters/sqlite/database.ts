/**
 * The local default's store (docs/architecture.md "The local default"): one SQLite file in the
 * data folder, WAL, opened by one process only.
 *
 * Durability: every write goes through `write()`, which runs it inside a transaction whose commit
 * is on disk before the returned promise resolves, so a caller acknowledges (202, 201) only what
 * survives `kill -9` and a power cut. Writes arriving in the same event-loop turn share one commit
 * (group commit), each in its own savepoint so one failing write does not undo the others.
 *
 * FULL without blocking the event loop: SQLite's own `synchronous=FULL` fsyncs the WAL inside
 * COMMIT, on the only thread, and that wait was 25-50 % of the service's busy time under load.
 * Here the connection runs `synchronous=NORMAL` (WAL frames written at COMMIT, the WAL fsynced
 * before every checkpoint and the database file after it, https://sqlite.org/pragma.html#pragma_synchronous)
 * and the WAL is fdatasync'ed in libuv's thread pool after each commit; the writes of that commit
 * resolve only once that fdatasync returns. The writes that arrive while one fdatasync runs gather
 * for the next commit, made when it returns: one commit and one fdatasync per disk round trip, so
 * the batches grow with the load (fewer WAL frames, checksums and fsyncs per write) and the event
 * loop never waits. What is acknowledged is therefore exactly what FULL acknowledges. A read may see a commit whose fdatasync is still
 * running (as another connection would under NORMAL); no caller acknowledges on a read.
 *
 * Checkpoints off the event loop: SQLite's automatic checkpoint runs inside the COMMIT that
 * crosses 1000 WAL pages, on the only thread, and under NORMAL it fsyncs the WAL, copies the pages
 * into the database file and fsyncs that file there (strace of the service: fsync, pwrites, fsync
 * in one COMMIT about once a second at 1,000 SUBSCRIBEs/s, 4-24 ms each on a loaded machine, the
 * loop stopped meanwhile). Here the automatic checkpoint is off and the connection runs
 * `synchronous=OFF` (in WAL mode NORMAL syncs nothing at COMMIT either: it differs only in those
 * checkpoint syncs, https://sqlite.org/wal.html#ckpt). After about as many pages, once the WAL is
 * on disk, the store copies the pages (`wal_checkpoint(PASSIVE)`, writes to the page cache) and
 * fdatasyncs the database file in libuv's thread pool; no commit is made until that returns, since
 * the next one starts overwriting the WAL from its beginning (the WAL header's new salt): what the
 * WAL held is on disk in the database first, as SQLite's own checkpoint under NORMAL ensures.
 * Writes arriving meanwhile gather for the commit after it, as they do during an fdatasync.
 *
 * One process: the database is opened in EXCLUSIVE locking mode, so the file lock, which the
 * kernel drops when the holder dies, decides; a pid file beside it only names the holder.
 */
import { closeSync, fdatasync, fdatasyncSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { commitSpacing, loopUtilization } from './commit-pacing.ts';
import { SCHEMA, upgrade } from './schema.ts';

export type SynchronousMode = 'FULL' | 'NORMAL';

const DEFAULT_CACHE_BYTES = 2 * 1024 ** 2;

export interface SqliteOptions {
  /** The data folder (DATA_DIR); the database is `deferred-cpm.sqlite` in it. */
  dataDir: string;
  /** FULL (default) fsyncs every commit; NORMAL only at checkpoints (benchmarks compare both). */
  synchronous?: SynchronousMode;
  /**
   * The page cache (default 2 MiB, SQLite's own default; better-sqlite3 builds SQLite with 16 MB).
   * It fills as the database grows and stays: 16 MB was a third of the service's growth at 10,000
   * subscriptions, and a page it no longer holds is read back from the OS's file cache.
   */
  cacheBytes?: number;
  /**
   * The longest a group commit waits after the one before it while the event loop is busy
   * (commit-pacing.ts); 0 (the default here) commits as soon as the turn that wrote ends. The
   * service sets SQLITE_COMMIT_DELAY (Config.sqliteCommitDelayMs).
   */
  commitDelayMs?: number;
  /** The event loop's busy share, 0-1 (default: measured, loopUtilization); tests set it. */
  busy?: () => number;
}

export interface WriteOptions {
  /**
   * False for a write whose loss in a crash is harmless, because start-up or the sweep puts
   * it right (a delivery lease, which start-up frees; a job's receive mark, which start-up
   * resets; a summary count, which the sweep recounts): it resolves at its commit, without
   * waiting for the WAL's fdatasync (a later commit's covers it), but only while no earlier
   * commit waits for one, so nothing it read can vanish in a crash. Default true.
   */
  sync?: boolean;
  /**
   * True for a write that needs no savepoint of its own in a group commit (two statements fewer):
   * it changes rows with one statement, which SQLite undoes by itself when it fails
   * (https://sqlite.org/lang_conflict.html, ABORT), or with statements each of which may stand
   * without the others (deletes of handled jobs). Default false.
   */
  noSavepoint?: boolean;
}

/** WriteOptions of a write of one statement (WriteOptions.noSavepoint). */
export const ONE_STATEMENT: WriteOptions = { noSavepoint: true };

export const DATABASE_FILE = 'deferred-cpm.sqlite';

/** WAL pages after which the store checkpoints: SQLite's own default (PRAGMA wal_autocheckpoint). */
export const CHECKPOINT_PAGES = 1000;

/**
 * A bound row limit, for prepared statements: `LIMIT ?` itself would make SQLite (built with
 * STAT4, whose plans may depend on a bound limit) prepare the statement again at every bind,
 * 8-12 µs a call instead of about 1 (the NOTIFY's list, the sweep's pages). As an expression
 * the value is read at run time and the plan stays.
 */
export const LIMIT_PARAM = 'LIMIT CAST(? AS INTEGER)';
export const PID_FILE = 'deferred-cpm.pid';

/** Another process holds the data folder. */
export class DataDirInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number | undefined,
  ) {
    super(
      `data folder ${dataDir} is in use by ${pid !== undefined ? `process ${pid}` : 'another process'} ` +
        '(another deferred-cpm on the same DATA_DIR); stop it or set a different DATA_DIR',
    );
    this.name = 'DataDirInUseError';
  }
}

interface PendingWrite {
  run: () => unknown;
  /** False: resolves at its commit, without waiting for the fdatasync (WriteOptions.sync). */
  sync: boolean;
  /** Needs no savepoint (WriteOptions.noSavepoint). */
  noSavepoint: boolean;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** A write committed (or undone in its savepoint) whose caller hears once the WAL is on disk. */
interface Committed {
  op: PendingWrite;
  ok: boolean;
  value: unknown;
}

export class SqliteDatabase {
  readonly db: Database.Database;
  readonly file: string;
  private readonly pidFile: string;
  private pending: PendingWrite[] = [];
  private scheduled = false;
  /** The paced commit's timer (commitDelayMs), cleared by close(). */
  private timer: NodeJS.Timeout | undefined;
  /** When the last commit started (performance.now()). */
  private lastCommitAt = -Infinity;
  private readonly commitDelayMs: number;
  private readonly busy: () => number;
  private closed = false;
  /** FULL: commits are acknowledged after an fdatasync of the WAL off the event loop. */
  private readonly durable: boolean;
  private walFd: number | undefined;
  /** Committed, waiting for the next fdatasync. */
  private unsynced: Committed[] = [];
  /** Committed, covered by the fdatasync running now. */
  private syncing: Committed[] | undefined;
  /** An fdatasync failed: what it covered may be lost (the kernel may have dropped the pages). */
  private broken: Error | undefined;
  private dbFd: number | undefined;
  /** fdatasyncs running in the pool per descriptor: close() leaves those descriptors to them. */
  private readonly inFlight = new Map<number, number>();
  /** Commits that wrote to the WAL, and how many of them an fdatasync of the WAL has covered. */
  private walCommits = 0;
  private walSyncedCommits = 0;
  /** Commits plus rows changed since the last checkpoint, and the WAL pages each has been worth. */
  private walUnits = 0;
  private pagesPerUnit = 2;
  /** A checkpoint is under way: no commit until the database file holds what the WAL held. */
  private checkpointing = false;
  /** Pages copied into the database file whose fdatasync has not returned yet. */
  private databaseUnsynced = false;
  private readonly begin: Database.Statement;
  private readonly commit: Database.Statement;
  private readonly rollback: Database.Statement;
  private readonly savepoint: Database.Statement;
  private readonly releaseSavepoint: Database.Statement;
  private readonly rollbackSavepoint: Database.Statement;
  /** Rows inserted, updated or deleted on this connection so far (rolled-back ones too). */
  private readonly totalChanges: Database.Statement;

  private constructor(
    db: Database.Database,
    readonly dataDir: string,
    durable: boolean,
    pacing: Pick<SqliteOptions, 'commitDelayMs' | 'busy'>,
  ) {
    this.db = db;
    this.durable = durable;
    this.commitDelayMs = pacing.commitDelayMs ?? 0;
    this.busy = pacing.busy ?? (this.commitDelayMs > 0 ? loopUtilization() : () => 0);
    this.file = db.name;
    this.pidFile = path.join(dataDir, PID_FILE);
    this.begin = db.prepare('BEGIN IMMEDIATE');
    this.commit = db.prepare('COMMIT');
    this.rollback = db.prepare('ROLLBACK');
    this.savepoint = db.prepare('SAVEPOINT op');
    this.releaseSavepoint = db.prepare('RELEASE op');
    this.rollbackSavepoint = db.prepare('ROLLBACK TO op');
    this.totalChanges = db.prepare('SELECT total_changes()').pluck();
  }

  static async open(options: SqliteOptions): Promise<SqliteDatabase> {
    const dataDir = path.resolve(options.dataDir);
    await mkdir(dataDir, { recursive: true });
    const file = path.join(dataDir, DATABASE_FILE);
    const db = new Database(file, { timeout: 0 });
    try {
      // Before WAL is entered: no shared-memory file, and the lock is held until close.
      db.pragma('locking_mode = EXCLUSIVE');
      try {
        db.pragma('journal_mode = WAL');
        // Take the write lock now, so a second instance fails here and not at its first write.
        db.exec('BEGIN IMMEDIATE; COMMIT');
      } catch (err) {
        if (isBusy(err)) throw new DataDirInUseError(dataDir, readPid(path.join(dataDir, PID_FILE)));
        throw err;
      }
      // FULL is kept by an fdatasync of the WAL before each acknowledgement, and the checkpoints'
      // syncs are the store's own, in the thread pool (see above).
      db.pragma('synchronous = OFF');
      db.pragma('wal_autocheckpoint = 0');
      db.pragma('foreign_keys = OFF');
      // A group commit runs each write in a savepoint, and SQLite keeps the pages a savepoint
      // changes to roll back to: past 64 KiB in a temporary file (two pwrites a page, 40 of the 63
      // a pull made), in memory with this (https://sqlite.org/pragma.html#pragma_temp_store).
      db.pragma('temp_store = MEMORY');
      // A negative cache_size is in KiB (https://sqlite.org/pragma.html#pragma_cache_size).
      db.pragma(`cache_size = -${Math.max(1, Math.ceil((options.cacheBytes ?? DEFAULT_CACHE_BYTES) / 1024))}`);
      db.exec(SCHEMA);
      upgrade(db);
    } catch (err) {
      db.close();
      throw err;
    }
    const store = new SqliteDatabase(db, dataDir, (options.synchronous ?? 'FULL') === 'FULL', options);
    writeFileSync(store.pidFile, `${process.pid}\n`);
    return store;
  }

  /** Run a read now: it sees every write whose promise has resolved. */
  read<T>(fn: () => T): T {
    return fn();
  }

  /**
   * Run `fn` (synchronous, touching only this database) in the next group commit; resolves
   * with its result once the commit is on disk, rejects with its error (its changes undone).
   */
  write<T>(fn: () => T, options: WriteOptions = {}): Promise<T> {
    if (this.closed) return Promise.reject(new Error('the store is closed'));
    if (this.broken) return Promise.reject(this.broken);
    return new Promise<T>((resolve, reject) => {
      this.pending.push({
        run: fn,
        sync: options.sync ?? true,
        noSavepoint: options.noSavepoint ?? false,
        resolve: resolve as (v: unknown) => void,
        reject,
      });
      // While an fdatasync or a checkpoint runs, writes gather for the commit that follows it.
      if (!this.scheduled && !this.syncing && !this.checkpointing) this.schedule();
    });
  }

  private schedule(): void {
    this.scheduled = true;
    // A busy loop: the commit waits its turn after the last one, gathering what arrives meanwhile.
    const wait =
      this.commitDelayMs > 0
        ? this.lastCommitAt + commitSpacing(this.commitDelayMs, this.busy()) - performance.now()
        : 0;
    if (wait >= 1) {
      this.timer = setTimeout(() => this.flush(), wait);
      return;
    }
    // setImmediate, not a microtask: the writes of every request read in this I/O turn join.
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    this.timer = undefined;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    this.lastCommitAt = performance.now();
    const committed: Committed[] = [];
    const changesBefore = this.totalChanges.get() as number;
    try {
      this.begin.run();
      if (batch.length === 1) {
        // Alone in its commit: the transaction is its savepoint (two statements fewer).
        const op = batch[0]!;
        try {
          committed.push({ op, ok: true, value: op.run() });
        } catch (err) {
          this.rollback.run();
          op.reject(err);
          return;
        }
      } else {
        for (const op of batch) {
          const own = !op.noSavepoint;
          if (own) this.savepoint.run();
          try {
            const value = op.run();
            if (own) this.releaseSavepoint.run();
            committed.push({ op, ok: true, value });
          } catch (err) {
            // SQLite rolled the whole transaction back (an I/O error, a full disk): none of the batch stands.
            if (!this.db.inTransaction) throw err;
            if (own) {
              this.rollbackSavepoint.run();
              this.releaseSavepoint.run();
            }
            committed.push({ op, ok: false, value: err });
          }
        }
      }
      this.commit.run();
    } catch (err) {
      if (this.db.inTransaction) this.rollback.run();
      for (const op of batch) op.reject(err);
      return;
    }
    const changes = (this.totalChanges.get() as number) - changesBefore;
    if (changes > 0) {
      // A commit that changed no row wrote nothing to the WAL.
      this.walCommits++;
      this.walUnits += 1 + changes;
    }
    if (!this.durable) {
      settle(committed);
      return this.maybeCheckpoint();
    }
    // With every earlier commit on disk, what this one read is durable: a commit that changed no
    // row (a job poll finding none, a claim lost) wrote nothing to the WAL and needs no sync, and
    // writes that do not need one (WriteOptions.sync) are answered now.
    if (!this.syncing && this.unsynced.length === 0) {
      if (changes === 0) return settle(committed);
      const now = committed.filter((c) => !c.op.sync);
      if (now.length > 0) {
        settle(now);
        if (now.length === committed.length) return this.maybeCheckpoint();
        for (const c of committed) if (c.op.sync) this.unsynced.push(c);
        return this.sync();
      }
    }
    for (const c of committed) this.unsynced.push(c);
    this.sync();
  }

  /** One fdatasync of the WAL at a time, in libuv's thread pool; it covers every commit before it. */
  private sync(): void {
    if (this.syncing || this.unsynced.length === 0) return;
    const covered = (this.syncing = this.unsynced);
    this.unsynced = [];
    const through = this.walCommits;
    this.poolSync(this.wal(), (err) => {
      this.syncing = undefined;
      if (err) return this.fail(`fdatasync of the WAL: ${err.message}`, covered);
      this.walSyncedCommits = Math.max(this.walSyncedCommits, through);
      settle(covered);
      this.sync();
      if (this.syncing) return;
      this.maybeCheckpoint();
      // What arrived during the fdatasync: one commit (and one fdatasync) for all of it.
      if (!this.checkpointing && !this.scheduled && this.pending.length > 0) this.schedule();
    });
  }

  /**
   * Checkpoint once the WAL holds about CHECKPOINT_PAGES pages and all its commits are answered:
   * preferably when no write waits, at twice that in any case.
   */
  private maybeCheckpoint(): void {
    if (this.checkpointing || this.syncing || this.unsynced.length > 0 || this.scheduled) return;
    if (this.closed || this.broken) return;
    const pages = this.walUnits * this.pagesPerUnit;
    if (pages < CHECKPOINT_PAGES || (this.pending.length > 0 && pages < 2 * CHECKPOINT_PAGES)) return;
    this.checkpointing = true;
    // The WAL is on disk before its pages are copied (a crash while copying is repaired from it);
    // under FULL it is unless a write needing no sync was the last to commit.
    if (this.walSyncedCommits === this.walCommits) return this.copyPages();
    const through = this.walCommits;
    this.poolSync(this.wal(), (err) => {
      if (err) return this.fail(`fdatasync of the WAL: ${err.message}`);
      this.walSyncedCommits = Math.max(this.walSyncedCommits, through);
      this.copyPages();
    });
  }

  /** The checkpoint's copy (on the loop: page-cache writes), then the database file's fdatasync (pool). */
  private copyPages(): void {
    try {
      const [result] = this.db.pragma('wal_checkpoint(PASSIVE)') as { log: number }[];
      // What the WAL pages per commit and row changed were, for the next estimate.
      if (result && result.log > 0 && this.walUnits > 0) this.pagesPerUnit = Math.max(0.1, result.log / this.walUnits);
    } catch (err) {
      return this.fail(`checkpoint: ${String(err)}`);
    }
    this.walUnits = 0;
    this.databaseUnsynced = true;
    this.poolSync(this.database(), (err) => {
      if (err) return this.fail(`fdatasync of the database file: ${err.message}`);
      this.databaseUnsynced = false;
      this.checkpointing = false;
      if (!this.scheduled && this.pending.length > 0) this.schedule();
    });
  }

  /** An fdatasync failed: nothing it (or a later one) covered is acknowledged, and no write is taken. */
  private fail(what: string, covered: Committed[] = []): void {
    this.broken = new Error(`the store cannot be made durable (${what})`);
    for (const c of [...covered, ...this.unsynced]) c.op.reject(this.broken);
    for (const op of this.pending) op.reject(this.broken);
    this.unsynced = [];
    this.pending = [];
  }

  /**
   * fdatasync in libuv's thread pool. After close() the callback is not run (close() synced and
   * settled everything); the last one running on a descriptor closes it.
   */
  private poolSync(fd: number, done: (err: NodeJS.ErrnoException | null) => void): void {
    this.inFlight.set(fd, (this.inFlight.get(fd) ?? 0) + 1);
    fdatasync(fd, (err) => {
      const left = this.inFlight.get(fd)! - 1;
      if (left > 0) this.inFlight.set(fd, left);
      else this.inFlight.delete(fd);
      if (this.closed) {
        if (left === 0) closeSync(fd);
        return;
      }
      done(err);
    });
  }

  /** The WAL's descriptor, opened at the first commit (SQLite has written the file by then). */
  private wal(): number {
    this.walFd ??= openSync(`${this.file}-wal`, 'r');
    return this.walFd;
  }

  /** The database file's descriptor, for the checkpoints' fdatasync. */
  private database(): number {
    this.dbFd ??= openSync(this.file, 'r');
    return this.dbFd;
  }

  /** Commit what is queued, then close and give the data folder up. */
  close(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    // The next commit overwrites the WAL: the pages a checkpoint copied must be on disk first.
    if (this.databaseUnsynced && this.dbFd !== undefined) fdatasyncSync(this.dbFd);
    this.databaseUnsynced = false;
    this.flush();
    const waiting = [...(this.syncing ?? []), ...this.unsynced];
    if (this.walFd !== undefined && waiting.length > 0 && !this.broken) fdatasyncSync(this.walFd);
    this.closed = true;
    settle(waiting);
    // An fdatasync still running closes its descriptor when it returns.
    for (const fd of [this.walFd, this.dbFd]) if (fd !== undefined && !this.inFlight.has(fd)) closeSync(fd);
    // SQLite checkpoints at close and deletes the WAL: with its own syncs (NORMAL), so what the
    // WAL held is in the database file on disk before the WAL is gone.
    this.db.pragma('synchronous = NORMAL');
    this.db.close();
    try {
      if (readPid(this.pidFile) === process.pid) rmSync(this.pidFile, { force: true });
    } catch {
      // Nothing to give back.
    }
  }
}

function settle(committed: Committed[]): void {
  for (const { op, ok, value } of committed) {
    if (ok) op.resolve(value);
    else op.reject(value);
  }
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
