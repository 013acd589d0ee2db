/**
 * The rows of users' last complete lists, for the INVITE that names them next and the delivery
 * that claims them. A client retrieves what a NOTIFY just listed: its INVITE's batch read
 * (getMany) and its delivery's claim (claimMany) find the rows here instead of reading the same
 * rows again (each of those reads was about a tenth of a pull's store time; a user's rows lie
 * in as many table pages as it has messages, since they arrived among other users'). After the
 * delivery's delete, what the list keeps less the removed rows answers the NOTIFYs that follow
 * (`forgetUntilRemoved`).
 *
 * Exact, not a cache that may lag: one process owns the database (EXCLUSIVE lock) and every
 * write to a user's messages forgets the user's list, inside the write, before any later read
 * runs. A list cut short by its limit is not kept (an id past it may exist). Bounded: the
 * `maxUsers` users listed last, lists of at most `maxRows` rows, and `maxBytes` of rows in all
 * as `weigh` counts them (the payloads a list kept).
 */
export class RecentLists<Row extends { id: string; expires_at: number }> {
  /** Insertion order is recency: the first key is the least recently listed user. */
  private readonly lists = new Map<string, { now: number; bytes: number; rows: Map<string, Row> }>();
  private bytes = 0;
  /** Lists forgotten by a removal under way, to be kept again once it committed (forgetUntilRemoved). */
  private readonly held = new Map<string, object>();

  constructor(
    private readonly maxUsers = 512,
    private readonly maxRows = 100,
    private readonly maxBytes = Number.POSITIVE_INFINITY,
    private readonly weigh: (row: Row) => number = () => 0,
  ) {}

  /** `rows`: all of the user's rows unexpired at `now` (a list not cut short). */
  remember(user: string, now: number, rows: readonly Row[]): void {
    this.forget(user);
    if (rows.length <= this.maxRows) this.keep(user, now, new Map(rows.map((r) => [r.id, r])));
  }

  private keep(user: string, now: number, rows: Map<string, Row>): void {
    let bytes = 0;
    for (const row of rows.values()) bytes += this.weigh(row);
    if (bytes > this.maxBytes) return;
    this.lists.set(user, { now, bytes, rows });
    this.bytes += bytes;
    while (this.lists.size > this.maxUsers || this.bytes > this.maxBytes) this.forget(this.lists.keys().next().value!);
  }

  /** The user's rows changed (a deposit, a removal): their last list no longer stands. */
  forget(user: string): void {
    this.held.delete(user);
    const list = this.lists.get(user);
    if (!list) return;
    this.lists.delete(user);
    this.bytes -= list.bytes;
  }

  /**
   * The rows among `ids` unexpired at `now` (each once, in the order of `ids`), or undefined when
   * the user's last list is not kept or was read at a later `now` (it left out what expired by then).
   */
  rowsOf(user: string, ids: readonly string[], now: number): Row[] | undefined {
    const list = this.lists.get(user);
    if (!list || now < list.now) return undefined;
    const rows: Row[] = [];
    const seen = new Set<string>();
    for (const id of ids) {
      const row = list.rows.get(id);
      if (row === undefined || row.expires_at <= now || seen.has(id)) continue;
      seen.add(id);
      rows.push(row);
    }
    return rows;
  }

  /** All of the user's rows unexpired at `now`, in the list's order, or undefined as for rowsOf. */
  listOf(user: string, now: number): Row[] | undefined {
    const list = this.lists.get(user);
    if (!list || now < list.now) return undefined;
    const rows: Row[] = [];
    for (const row of list.rows.values()) if (row.expires_at > now) rows.push(row);
    return rows;
  }

  /**
   * A write is about to remove some of the user's rows: forget the list now (what runs inside
   * the write reads the table) and return what keeps it again, less the ids the write removed,
   * once the write committed (undefined: it failed, and the list stays forgotten). The list is
   * then still all of the user's rows, unless another write or list of the user came in between:
   * that one forgot it, and this keeps nothing. Kept again even when empty (the NOTIFYs after a
   * delivery's delete list nothing).
   */
  forgetUntilRemoved(user: string): (removed: readonly string[] | undefined) => void {
    const list = this.lists.get(user);
    this.forget(user);
    if (!list) return () => undefined;
    const token = {};
    this.held.set(user, token);
    return (removed) => {
      if (this.held.get(user) !== token) return;
      this.held.delete(user);
      if (removed === undefined) return;
      for (const id of removed) list.rows.delete(id);
      this.keep(user, list.now, list.rows);
    };
  }

  get size(): number {
    return this.lists.size;
  }

  /** What `weigh` counts of the lists kept. */
  get keptBytes(): number {
    return this.bytes;
  }
}
