/**
 * DeliverySessionStore over SQLite: one row per MSRP session id. State, lease and the dialog's
 * CSeq are columns, so a claim is one conditional UPDATE (the DynamoDB adapter's condition) and
 * BYE takes its CSeq with one UPDATE ... RETURNING (RFC 3261 §12.2.1.1).
 */
import type { DeliverySession } from '#shared/deferred/model.ts';
import type { DeliverySessionStore } from '#shared/ports.ts';
import { ONE_STATEMENT, type SqliteDatabase } from './database.ts';

interface SessionRow {
  doc: string;
  state: string;
  lease_until: number | null;
  local_cseq: number;
  expires_at: number;
}

export interface SqliteSessionStoreOptions {
  /** Epoch milliseconds; reads hide sessions past `expiresAt` (the sweep deletes late). */
  now?: () => number;
}

export class SqliteDeliverySessionStore implements DeliverySessionStore {
  private readonly s;
  private readonly now: () => number;

  constructor(
    private readonly store: SqliteDatabase,
    options: SqliteSessionStoreOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    const db = store.db;
    this.s = {
      put: db.prepare(
        'INSERT OR REPLACE INTO sessions (session_id, doc, state, lease_until, local_cseq, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      get: db.prepare<[string], SessionRow>(
        'SELECT doc, state, lease_until, local_cseq, expires_at FROM sessions WHERE session_id = ?',
      ),
      setState: db.prepare('UPDATE sessions SET state = ? WHERE session_id = ?'),
      setRetrieve: db.prepare("UPDATE sessions SET doc = json_set(doc, '$.retrieve', json(?)) WHERE session_id = ?"),
      // A 'delivering' row without a lease predates leases: treat it as lapsed (as in DynamoDB).
      claim: db.prepare(
        "UPDATE sessions SET state = 'delivering', lease_until = ? WHERE session_id = ? AND expires_at > ? AND " +
          "(state = 'waiting' OR (state = 'delivering' AND (lease_until IS NULL OR lease_until < ?)))",
      ),
      release: db.prepare(
        "UPDATE sessions SET state = 'waiting', lease_until = NULL WHERE session_id = ? AND state = 'delivering' AND lease_until = ?",
      ),
      nextCSeq: db.prepare<[string], { local_cseq: number }>(
        'UPDATE sessions SET local_cseq = local_cseq + 1 WHERE session_id = ? RETURNING local_cseq',
      ),
      // Store from the job, or take the stored row: the same condition as `claim`.
      begin: db.prepare(
        "INSERT INTO sessions (session_id, doc, state, lease_until, local_cseq, expires_at) VALUES (?, ?, 'delivering', ?, ?, ?) " +
          "ON CONFLICT (session_id) DO UPDATE SET state = 'delivering', lease_until = excluded.lease_until, " +
          'local_cseq = local_cseq + 1 WHERE expires_at > ? AND ' +
          "(state = 'waiting' OR (state = 'delivering' AND (lease_until IS NULL OR lease_until < ?))) RETURNING local_cseq",
      ),
      delete: db.prepare('DELETE FROM sessions WHERE session_id = ?'),
      purge: db.prepare('DELETE FROM sessions WHERE expires_at <= ?'),
    };
  }

  async put(session: DeliverySession): Promise<void> {
    const { state, leaseUntil: _lease, ...rest } = session;
    const { localCSeq, ...dialog } = session.dialog;
    const doc = JSON.stringify({ ...rest, dialog });
    await this.store.write(
      () => this.s.put.run(session.sessionId, doc, state, session.leaseUntil ?? null, localCSeq, session.expiresAt),
      ONE_STATEMENT,
    );
  }

  async get(sessionId: string): Promise<DeliverySession | undefined> {
    const row = this.s.get.get(sessionId);
    if (!row || row.expires_at <= Math.floor(this.now() / 1000)) return undefined;
    return sessionOf(row);
  }

  async update(sessionId: string, patch: Partial<Pick<DeliverySession, 'state' | 'retrieve'>>): Promise<void> {
    if (patch.state === undefined && patch.retrieve === undefined) return;
    await this.store.write(() => {
      if (patch.state !== undefined) this.s.setState.run(patch.state, sessionId);
      if (patch.retrieve !== undefined) this.s.setRetrieve.run(JSON.stringify(patch.retrieve), sessionId);
    });
  }

  claim(sessionId: string, nowSec: number, leaseSeconds: number): Promise<boolean> {
    return this.store.write(
      () => this.s.claim.run(nowSec + leaseSeconds, sessionId, nowSec, nowSec).changes > 0,
      ONE_STATEMENT,
    );
  }

  async release(sessionId: string, leaseUntil: number): Promise<void> {
    await this.store.write(() => this.s.release.run(sessionId, leaseUntil), ONE_STATEMENT);
  }

  nextCSeq(sessionId: string): Promise<number | undefined> {
    return this.store.write(() => this.s.nextCSeq.get(sessionId)?.local_cseq, ONE_STATEMENT);
  }

  begin(session: DeliverySession, nowSec: number, leaseSeconds: number): Promise<number | undefined> {
    if (session.expiresAt <= nowSec) return Promise.resolve(undefined);
    const { state: _state, leaseUntil: _lease, ...rest } = session;
    const { localCSeq, ...dialog } = session.dialog;
    const doc = JSON.stringify({ ...rest, dialog });
    // No wait for the fdatasync: lost in a crash, the lease is gone with the process that held it,
    // the job (which carries the session) stores it again, and the deletes that follow a delivery
    // are durable only with it (one WAL, synced in order).
    return this.store.write(
      () =>
        (
          this.s.begin.get(
            session.sessionId,
            doc,
            nowSec + leaseSeconds,
            localCSeq + 1,
            session.expiresAt,
            nowSec,
            nowSec,
          ) as { local_cseq: number } | undefined
        )?.local_cseq,
      { sync: false, ...ONE_STATEMENT },
    );
  }

  async delete(sessionId: string): Promise<void> {
    await this.store.write(() => this.s.delete.run(sessionId), ONE_STATEMENT);
  }

  /** Remove sessions past their expiry (what TTL does in AWS); returns how many. */
  purgeExpired(nowSec: number): Promise<number> {
    return this.store.write(() => this.s.purge.run(nowSec).changes);
  }
}

function sessionOf(row: SessionRow): DeliverySession {
  const doc = JSON.parse(row.doc) as Omit<DeliverySession, 'state' | 'leaseUntil' | 'dialog'> & {
    dialog: Omit<DeliverySession['dialog'], 'localCSeq'>;
  };
  return {
    ...doc,
    dialog: { ...doc.dialog, localCSeq: row.local_cseq },
    state: row.state as DeliverySession['state'],
    ...(row.lease_until !== null ? { leaseUntil: row.lease_until } : {}),
  };
}
