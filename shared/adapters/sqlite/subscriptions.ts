/**
 * SubscriptionStore over SQLite: one row per dialog. The NOTIFY counters (`version`, the
 * dialog's `local_cseq`) are columns taken by one UPDATE ... RETURNING, so CSeq strictly
 * increases within a dialog (RFC 3261 §12.1.1); `remote_cseq` is set with a refresh (§12.2.2).
 */
import type { Flow, Subscription } from '#shared/deferred/model.ts';
import { lastTurn, type NotifyTurn, type SubscriptionStore } from '#shared/ports.ts';
import { LIMIT_PARAM, ONE_STATEMENT, type SqliteDatabase } from './database.ts';

interface SubscriptionRow {
  user: string;
  dialog_id: string;
  dialog: string;
  local_cseq: number;
  remote_cseq: number | null;
  version: number;
  expires_at: number;
  state: string;
}

export class SqliteSubscriptionStore implements SubscriptionStore {
  private readonly s;

  constructor(private readonly store: SqliteDatabase) {
    const db = store.db;
    this.s = {
      put: db.prepare(
        'INSERT OR REPLACE INTO subscriptions (user, dialog_id, dialog, local_cseq, remote_cseq, version, expires_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      get: db.prepare<[string, string], SubscriptionRow>(
        'SELECT * FROM subscriptions WHERE user = ? AND dialog_id = ?',
      ),
      byUser: db.prepare<[string, number], SubscriptionRow>(
        "SELECT * FROM subscriptions WHERE user = ? AND expires_at > ? AND state = 'active'",
      ),
      delete: db.prepare('DELETE FROM subscriptions WHERE user = ? AND dialog_id = ?'),
      renew: db.prepare('UPDATE subscriptions SET expires_at = ? WHERE user = ? AND dialog_id = ?'),
      // The refresh's flow replaces the dialog's (JSON) flow in the same statement.
      rebind: db.prepare(
        "UPDATE subscriptions SET expires_at = ?, remote_cseq = coalesce(?, remote_cseq), dialog = json_set(dialog, '$.flow', json(?)) WHERE user = ? AND dialog_id = ?",
      ),
      renewWithCSeq: db.prepare(
        'UPDATE subscriptions SET expires_at = ?, remote_cseq = ? WHERE user = ? AND dialog_id = ?',
      ),
      nextNotify: db.prepare<[string, string], SubscriptionRow>(
        'UPDATE subscriptions SET version = version + 1, local_cseq = local_cseq + 1 WHERE user = ? AND dialog_id = ? RETURNING *',
      ),
      end: db.prepare<[string, string], SubscriptionRow>(
        'DELETE FROM subscriptions WHERE user = ? AND dialog_id = ? RETURNING *',
      ),
      active: db.prepare<[number], { n: number }>(
        "SELECT count(*) AS n FROM subscriptions WHERE expires_at > ? AND state = 'active'",
      ),
      expired: db.prepare<[number, number], SubscriptionRow>(
        `SELECT * FROM subscriptions WHERE expires_at <= ? ORDER BY expires_at ${LIMIT_PARAM}`,
      ),
    };
  }

  async put(sub: Subscription): Promise<void> {
    const { localCSeq, remoteCSeq, ...dialog } = sub.dialog;
    await this.store.write(
      () =>
        this.s.put.run(
          sub.user,
          sub.dialogId,
          JSON.stringify(dialog),
          localCSeq,
          remoteCSeq ?? null,
          sub.version,
          sub.expiresAt,
          sub.state,
        ),
      ONE_STATEMENT,
    );
  }

  async get(user: string, dialogId: string, now: number): Promise<Subscription | undefined> {
    const row = this.s.get.get(user, dialogId);
    return row && row.expires_at > now ? subscriptionOf(row) : undefined;
  }

  async countActive(now: number): Promise<number> {
    return this.s.active.get(now)?.n ?? 0;
  }

  async listByUser(user: string, now: number): Promise<Subscription[]> {
    return this.s.byUser.all(user, now).map(subscriptionOf);
  }

  async delete(user: string, dialogId: string): Promise<void> {
    await this.store.write(() => this.s.delete.run(user, dialogId), ONE_STATEMENT);
  }

  renew(user: string, dialogId: string, expiresAt: number, remoteCSeq?: number, flow?: Flow): Promise<boolean> {
    return this.store.write(
      () =>
        (flow !== undefined
          ? this.s.rebind.run(expiresAt, remoteCSeq ?? null, JSON.stringify(flow), user, dialogId)
          : remoteCSeq === undefined
            ? this.s.renew.run(expiresAt, user, dialogId)
            : this.s.renewWithCSeq.run(expiresAt, remoteCSeq, user, dialogId)
        ).changes > 0,
      ONE_STATEMENT,
    );
  }

  async nextNotify(user: string, dialogId: string): Promise<NotifyTurn | undefined> {
    const row = await this.store.write(() => this.s.nextNotify.get(user, dialogId), ONE_STATEMENT);
    // `version` counts NOTIFYs from 0 (protocol.md): the value before this increment is this NOTIFY's.
    return row ? { cseq: row.local_cseq, version: row.version - 1, subscription: subscriptionOf(row) } : undefined;
  }

  async endNotify(user: string, dialogId: string): Promise<NotifyTurn | undefined> {
    const row = await this.store.write(() => this.s.end.get(user, dialogId), ONE_STATEMENT);
    // The turn nextNotify would have taken, from the row as it was (protocol.md's `version`).
    return row ? lastTurn(subscriptionOf(row)) : undefined;
  }

  async listExpired(now: number, limit: number): Promise<Subscription[]> {
    if (limit <= 0) return [];
    return this.s.expired.all(now, limit).map(subscriptionOf);
  }
}

function subscriptionOf(row: SubscriptionRow): Subscription {
  const dialog = JSON.parse(row.dialog) as Omit<Subscription['dialog'], 'localCSeq' | 'remoteCSeq'>;
  return {
    user: row.user,
    dialogId: row.dialog_id,
    dialog: {
      ...dialog,
      localCSeq: row.local_cseq,
      ...(row.remote_cseq !== null ? { remoteCSeq: row.remote_cseq } : {}),
    } as Subscription['dialog'],
    version: row.version,
    expiresAt: row.expires_at,
    state: row.state as Subscription['state'],
  };
}
