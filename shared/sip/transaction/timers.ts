/**
 * SIP timer values (RFC 3261 §17 and Table 4 of Appendix A; Timer L from RFC 6026 §8.7) and a
 * small holder for a transaction's running timers.
 */
import type { LogFn } from '../transport/index.ts';

/** Base timers in milliseconds. */
export interface Timers {
  /** RTT estimate, default 500 ms. */
  t1: number;
  /** Maximum retransmit interval for non-INVITE requests and INVITE responses, default 4 s. */
  t2: number;
  /** Maximum time a message stays in the network, default 5 s. */
  t4: number;
}

export const DEFAULT_TIMERS: Timers = { t1: 500, t2: 4000, t4: 5000 };

/** §17.2.1: the INVITE server transaction sends 100 Trying if the TU is silent this long. */
export const TRYING_DELAY_MS = 200;

export function resolveTimers(partial?: Partial<Timers>): Timers {
  return { ...DEFAULT_TIMERS, ...partial };
}

/** Timer E, G and the 2xx retransmission of §13.3.1.4: double, but never above T2. */
export function nextInterval(current: number, timers: Timers): number {
  return Math.min(current * 2, timers.t2);
}

/**
 * Named timers of one transaction; a callback that throws is logged, never rethrown. A transaction
 * runs one to three at a time and there are tens of thousands of transactions: a short list, not a
 * Map each (a Map's table alone is larger than the rest of a completed transaction).
 */
const NONE: readonly (string | NodeJS.Timeout)[] = Object.freeze([]);

export class TimerSet {
  /** Name, handle, name, handle, ... (an array of exactly that length: most hold one timer). */
  private running: readonly (string | NodeJS.Timeout)[] = NONE;

  constructor(private readonly log: LogFn) {}

  set(name: string, ms: number, fire: () => void): void {
    this.clear(name);
    const handle = setTimeout(
      () => {
        this.remove(name);
        try {
          fire();
        } catch (err) {
          this.log('error', `timer ${name} callback failed`, { error: String(err) });
        }
      },
      Math.max(0, ms),
    );
    // Not `[...running, name, handle]`: an array literal with a spread gets room for 16 elements
    // (a 152-byte backing store kept for the timer's life, most of a completed transaction's).
    this.running = this.running.length === 0 ? [name, handle] : this.running.concat(name, handle);
  }

  clear(name: string): void {
    const handle = this.remove(name);
    if (handle) clearTimeout(handle);
  }

  has(name: string): boolean {
    return this.running.includes(name);
  }

  clearAll(): void {
    for (let i = 1; i < this.running.length; i += 2) clearTimeout(this.running[i] as NodeJS.Timeout);
    this.running = NONE;
  }

  private remove(name: string): NodeJS.Timeout | undefined {
    const i = this.running.indexOf(name);
    if (i < 0) return undefined;
    const handle = this.running[i + 1] as NodeJS.Timeout;
    this.running = this.running.length === 2 ? NONE : this.running.filter((_, j) => j !== i && j !== i + 1);
    return handle;
  }
}

/**
 * Timers of one fixed duration for many items (Timer J of every completed non-INVITE server
 * transaction, 64*T1 over UDP): set in the order they expire, so an array in that order and one
 * Node timer for its head do what a timer each did (a Timeout, its closures and their contexts:
 * about 400 bytes per transaction, for 32 s, at tens of thousands of transactions). An item's
 * timer cannot be cleared: `fire` is called for every item added, and checks whether it still
 * applies.
 */
export class FixedDelayTimers<T> {
  private items: (T | undefined)[] = [];
  private deadlines: number[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly delayMs: number,
    private readonly fire: (item: T) => void,
    private readonly log: LogFn,
  ) {}

  /** Items waiting. */
  get size(): number {
    return this.items.length - this.head;
  }

  add(item: T): void {
    this.items.push(item);
    this.deadlines.push(performance.now() + this.delayMs);
    if (this.timer === undefined) this.arm(this.delayMs);
  }

  /** Forget every item without firing it. */
  clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.items = [];
    this.deadlines = [];
    this.head = 0;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.expire(), Math.max(0, ms));
  }

  private expire(): void {
    this.timer = undefined;
    const now = performance.now();
    while (this.head < this.items.length && this.deadlines[this.head]! <= now) {
      const item = this.items[this.head] as T;
      this.items[this.head] = undefined;
      this.head++;
      try {
        this.fire(item);
      } catch (err) {
        this.log('error', 'timer callback failed', { error: String(err) });
      }
    }
    if (this.head === this.items.length) {
      this.items = [];
      this.deadlines = [];
      this.head = 0;
      return;
    }
    // Drop the fired part once it is most of the arrays (amortised: each item is copied once at most).
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.deadlines = this.deadlines.slice(this.head);
      this.head = 0;
    }
    // Node's timer may run a little before performance.now() reaches the deadline: at least 1 ms.
    if (this.timer === undefined) this.arm(Math.max(1, this.deadlines[this.head]! - now));
  }
}
