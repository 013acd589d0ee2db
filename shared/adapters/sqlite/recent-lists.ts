/**
 * The rows of users' last complete lists, for the INVITE that names them next and the delivery
 * that claims them. A client retrieves what a NOTIFY just listed: its INVITE's batch read
 * (getMany) and its delivery's claim (claimMany) find the rows here instead of reading the same
 * rows again (each of those reads was about a tenth of a pull's store time; a user's rows lie
 * in as many table pages as it has messages, since they arrived among other users').
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

  constructor(
    private readonly maxUsers = 512,
    private readonly maxRows = 100,
    private readonly maxBytes = Number.POSITIVE_INFINITY,
    private readonly weigh: (row: Row) => number = () => 0,
  ) {}

  /** `rows`: all of the user's rows unexpired at `now` (a list not cut short). */
  remember(user: string, now: number, rows: readonly Row[]): void {
    this.forget(user);
    if (rows.length > this.maxRows) return;
    let bytes = 0;
    for (const row of rows) bytes += this.weigh(row);
    if (bytes > this.maxBytes) return;
    this.lists.set(user, { now, bytes, rows: new Map(rows.map((r) => [r.id, r])) });
    this.bytes += bytes;
    while (this.lists.size > this.maxUsers || this.bytes > this.maxBytes) this.forget(this.lists.keys().next().value!);
  }

  /** The user's rows changed (a deposit, a removal): their last list no longer stands. */
  forget(user: string): void {
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

  get size(): number {
    return this.lists.size;
  }

  /** What `weigh` counts of the lists kept. */
  get keptBytes(): number {
    return this.bytes;
  }
}
