/**
 * Admission of new work (issue 11 item 10): decided before a request is looked at further than
 * its method and To tag, so a refused one costs its 503 and nothing else (RFC 3261 §21.5.4:
 * "The server is temporarily unable to process the request due to a temporary overloading").
 *
 * Three signals, any one refuses new work:
 * - handler calls in flight reached `maxInFlight`: bounds the queued handler work and its memory
 *   (the Lambda calls of AWS mode wait on the network; the local default's on the group commit);
 * - the request waited too long to be handled (`queueDelay` above `maxQueueDelayMs`): the local
 *   default's handlers run on the loop that reads the sockets, and when datagrams arrive faster
 *   than it handles them they queue, and their wait grows until they are answered after the
 *   client's T1 (it retransmits, adding load, RFC 3261 §17.1.2.2). The in-flight count never sees
 *   that queue. A burst the loop absorbs waits milliseconds and is served; a request that has
 *   already waited past the bound is refused, which costs a parse and a 503 and so drains the
 *   queue faster than serving it would;
 * - the loop is late right now (no tick for `maxLagMs`): one turn holding a burst of work (a
 *   stream chunk of many requests).
 *
 * Existing work keeps finishing: requests inside a dialog (BYE, refreshes) may use twice the
 * in-flight room and are not refused for a queueing delay; ACK, CANCEL and responses never come here.
 */
export interface OverloadGateOptions {
  maxInFlight: number;
  /** How late the loop may be before new work is refused (MAX_LOOP_LAG_MS). */
  maxLagMs: number;
  /** How long the request being admitted waited to be handled, ms (the transport's receive delay). */
  queueDelay?: () => number;
  /** The longest such wait at which new work is still admitted (half of T1 in the edge). */
  maxQueueDelayMs?: number;
  now?: () => number;
}

export type Refusal = 'in-flight' | 'queue-delay' | 'loop-lag';

export class OverloadGate {
  private inFlight = 0;
  private lastTick: number;
  private readonly now: () => number;
  private readonly ticker: NodeJS.Timeout;

  constructor(private readonly opts: OverloadGateOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.lastTick = this.now();
    this.ticker = setInterval(() => this.tick(), Math.max(1, Math.floor(opts.maxLagMs / 4)));
    this.ticker.unref();
  }

  /** Why a request may not start now, or undefined; `existing`: it belongs to a dialog. */
  refusal(existing: boolean): Refusal | undefined {
    if (this.inFlight >= (existing ? 2 : 1) * this.opts.maxInFlight) return 'in-flight';
    if (existing) return undefined;
    if (this.opts.queueDelay && this.opts.queueDelay() > (this.opts.maxQueueDelayMs ?? Infinity)) return 'queue-delay';
    if (this.now() - this.lastTick > this.opts.maxLagMs) return 'loop-lag';
    return undefined;
  }

  /** Handler calls running now. */
  get running(): number {
    return this.inFlight;
  }

  /** Run admitted work, counted in flight until it settles. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    this.inFlight++;
    try {
      return await work();
    } finally {
      this.inFlight--;
    }
  }

  /** The loop got round to its timers. */
  tick(): void {
    this.lastTick = this.now();
  }

  stop(): void {
    clearInterval(this.ticker);
  }
}
