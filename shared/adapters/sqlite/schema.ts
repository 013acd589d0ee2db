/**
 * The SQLite schema: the DynamoDB tables' shapes (shared/adapters/dynamodb/tables.ts) as
 * relational tables, plus the summary counters and the job queues the local default needs.
 * `expires_at` is epoch seconds everywhere, filtered on every read (the sweep deletes late).
 */
/**
 * Delivery sessions, in a rowid table: a session's row (its document about 1 KiB) is appended
 * after the last one, in the same leaf. Keyed by its random id in a WITHOUT ROWID table, each
 * landed in a leaf of its own and spilled into an overflow page (rows over about 1,000 bytes do
 * there: https://sqlite.org/withoutrowid.html#when_to_use_without_rowid), 4-5 pages written per
 * delivery where the id's index entry and the shared last leaf are 1-3.
 */
const SESSIONS = `
CREATE TABLE IF NOT EXISTS sessions (
  session_id TEXT PRIMARY KEY,
  doc TEXT NOT NULL,
  state TEXT NOT NULL,
  lease_until INTEGER,
  local_cseq INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions (expires_at);
`;

/**
 * Jobs, their ids given by the queue (job-queue.ts, never reused while the process runs) rather
 * than AUTOINCREMENT, whose sqlite_sequence row was one more page written at every send.
 */
const JOBS = `
CREATE TABLE IF NOT EXISTS jobs (
  id INTEGER PRIMARY KEY,
  queue TEXT NOT NULL,
  body TEXT NOT NULL,
  sent_at INTEGER NOT NULL,
  visible_at INTEGER NOT NULL,
  receive_count INTEGER NOT NULL DEFAULT 0,
  first_received_at INTEGER,
  dead_at INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (queue, dead_at, visible_at);
`;

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS messages (
  user TEXT NOT NULL,
  id TEXT NOT NULL,
  arrived_at TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  meta TEXT NOT NULL,
  cpim BLOB NOT NULL,
  -- No delivery lease here: leases live in the process's memory (message-leases.ts).
  UNIQUE (user, id)
);
CREATE INDEX IF NOT EXISTS messages_by_arrival ON messages (user, arrived_at, id);
CREATE INDEX IF NOT EXISTS messages_by_expiry ON messages (expires_at, user);

CREATE TABLE IF NOT EXISTS dedupe (
  user TEXT NOT NULL,
  sender TEXT NOT NULL,
  message_id TEXT NOT NULL,
  stored_id TEXT NOT NULL,
  stored_arrived_at TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (user, sender, message_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedupe_by_expiry ON dedupe (expires_at);

CREATE TABLE IF NOT EXISTS user_summary (
  user TEXT PRIMARY KEY,
  pending INTEGER NOT NULL,
  -- Stored CPIM bytes: the per-user byte cap.
  bytes INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- The whole store's CPIM bytes (one row): the total byte cap.
CREATE TABLE IF NOT EXISTS store_total (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  bytes INTEGER NOT NULL
);
INSERT OR IGNORE INTO store_total (id, bytes) VALUES (1, 0);

CREATE TABLE IF NOT EXISTS subscriptions (
  user TEXT NOT NULL,
  dialog_id TEXT NOT NULL,
  dialog TEXT NOT NULL,
  local_cseq INTEGER NOT NULL,
  remote_cseq INTEGER,
  version INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  state TEXT NOT NULL,
  PRIMARY KEY (user, dialog_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS subscriptions_by_expiry ON subscriptions (expires_at);

${SESSIONS}

${JOBS}`;

/** Columns added since the first schema, for databases made before them (ALTER TABLE ADD COLUMN). */
const ADDED_COLUMNS: { table: string; column: string; definition: string }[] = [
  // Summaries made before bytes were kept start at 0: the sweep's recount sets them.
  { table: 'user_summary', column: 'bytes', definition: 'INTEGER NOT NULL DEFAULT 0' },
];

/**
 * Columns dropped since, for databases made with them: the messages' delivery leases, which a
 * claim wrote into the whole row (payload and all) and which now live in memory. Dropping one
 * rewrites the table once (https://sqlite.org/lang_altertable.html#altertabdropcol).
 */
const DROPPED_COLUMNS: { table: string; column: string }[] = [
  { table: 'messages', column: 'lease_holder' },
  { table: 'messages', column: 'lease_until' },
];

/** Bring a database made by an earlier version up to SCHEMA. */
export function upgrade(db: { prepare(sql: string): { all(): unknown[] }; exec(sql: string): unknown }): void {
  // Sessions made WITHOUT ROWID: copied into the rowid table once.
  const [sessions] = db.prepare("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'sessions'").all() as {
    sql: string;
  }[];
  if (sessions && /WITHOUT\s+ROWID\s*$/i.test(sessions.sql)) {
    db.exec(
      `BEGIN; ALTER TABLE sessions RENAME TO sessions_old; DROP INDEX sessions_by_expiry; ${SESSIONS} ` +
        'INSERT INTO sessions SELECT * FROM sessions_old; DROP TABLE sessions_old; COMMIT;',
    );
  }
  // Jobs made with AUTOINCREMENT: copied into the table without it once (ids and all).
  const [jobs] = db.prepare("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'jobs'").all() as {
    sql: string;
  }[];
  if (jobs && /AUTOINCREMENT/i.test(jobs.sql)) {
    db.exec(
      `BEGIN; ALTER TABLE jobs RENAME TO jobs_old; DROP INDEX jobs_ready; ${JOBS} ` +
        'INSERT INTO jobs SELECT * FROM jobs_old; DROP TABLE jobs_old; COMMIT;',
    );
  }
  const columnsOf = (table: string) =>
    (db.prepare(`SELECT name FROM pragma_table_info('${table}')`).all() as { name: string }[]).map((c) => c.name);
  for (const { table, column, definition } of ADDED_COLUMNS) {
    if (!columnsOf(table).includes(column)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${definition}`);
  }
  for (const { table, column } of DROPPED_COLUMNS) {
    if (columnsOf(table).includes(column)) db.exec(`ALTER TABLE ${table} DROP COLUMN ${column}`);
  }
}
