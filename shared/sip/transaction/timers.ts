/**
 * SIP timer values (RFC 3261 §17 and Table 4 of Appendix A; Timer L from RFC 6026 §8.7), the
 * layer's timer queues and a small holder for a transaction's running timers.
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
 * Named timers of one transaction, kept in the layer's `TimerQueues` (no Node timer of its own);
 * a callback that throws is logged, never rethrown. A transaction runs one to three at a time
 * and there are tens of thousands of transactions: a short list, not a Map each (a Map's table
 * alone is larger than the rest of a completed transaction).
 */
const NONE: readonly (string | number)[] = Object.freeze([]);

export class TimerSet {
  /** Name, delay, handle, name, delay, handle, ... (exactly that long: most hold one timer). */
  private running: readonly (string | number)[] = NONE;

  constructor(private readonly queues: TimerQueues) {}

  set(name: string, ms: number, fire: () => void): void {
    this.clear(name);
    const delay = Math.max(0, ms);
    const handle = this.queues.add(delay, () => {
      this.remove(name);
      fire();
    });
    // Not `[...running, name, delay, handle]`: an array literal with a spread gets room for 16
    // elements (a backing store kept for the timer's life, most of a completed transaction's).
    this.running = this.running.length === 0 ? [name, delay, handle] : this.running.concat(name, delay, handle);
  }

  clear(name: string): void {
    const i = this.running.indexOf(name);
    if (i < 0) return;
    this.queues.cancel(this.running[i + 1] as number, this.running[i + 2] as number);
    this.remove(name);
  }

  has(name: string): boolean {
    return this.running.includes(name);
  }

  clearAll(): void {
    for (let i = 0; i < this.running.length; i += 3) {
      this.queues.cancel(this.running[i + 1] as number, this.running[i + 2] as number);
    }
    this.running = NONE;
  }

  private remove(name: string): void {
    const i = this.running.indexOf(name);
    if (i < 0) return;
    this.running = this.running.length === 3 ? NONE : this.running.filter((_, j) => j < i || j > i + 2);
  }
}

/**
 * Timers of one fixed duration for many items (Timer J of every completed non-INVITE server
 * transaction, 64*T1 over UDP): set in the order they expire, so an array in that order and one
 * Node timer for its head do what a timer each did (a Timeout, its closures and their contexts:
 * about 400 bytes per transaction, for 32 s, at tens of thousands of transactions). `add` returns
 * the item's handle; `cancel` with it drops the item (its slot emptied, nothing kept of it), and
 * an item not cancelled is passed to `fire`.
 */
export class FixedDelayTimers<T> {
  private items: (T | undefined)[] = [];
  private deadlines: number[] = [];
  private head = 0;
  /** The handle of `items[0]` (handles count every item ever added, so none is reused). */
  private base = 0;
  /** Items waiting, not cancelled. */
  private live = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly delayMs: number,
    private readonly fire: (item: T) => void,
    private readonly log: LogFn,
  ) {}

  /** Items waiting. */
  get size(): number {
    return this.live;
  }

  /** Add an item; returns its handle (for `cancel`). */
  add(item: T): number {
    this.items.push(item);
    this.deadlines.push(performance.now() + this.delayMs);
    this.live++;
    if (this.timer === undefined) this.arm(this.delayMs);
    return this.base + this.items.length - 1;
  }

  /** Drop the item of `handle` unfired (nothing when it fired or was dropped already). */
  cancel(handle: number): void {
    const i = handle - this.base;
    if (i < this.head || i >= this.items.length || this.items[i] === undefined) return;
    this.items[i] = undefined;
    this.live--;
  }

  /** Forget every item without firing it. */
  clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.base += this.items.length;
    this.items = [];
    this.deadlines = [];
    this.head = 0;
    this.live = 0;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.expire(), Math.max(0, ms));
  }

  private expire(): void {
    this.timer = undefined;
    const now = performance.now();
    while (this.head < this.items.length && this.deadlines[this.head]! <= now) {
      const item = this.items[this.head];
      this.items[this.head] = undefined;
      this.head++;
      if (item === undefined) continue;
      this.live--;
      try {
        this.fire(item);
      } catch (err) {
        this.log('error', 'timer callback failed', { error: String(err) });
      }
    }
    // Skip what was cancelled ahead of the next item due: no wake-up for an empty slot.
    while (this.head < this.items.length && this.items[this.head] === undefined) this.head++;
    if (this.head === this.items.length) {
      this.base += this.items.length;
      this.items = [];
      this.deadlines = [];
      this.head = 0;
      return;
    }
    // Drop the fired part once it is most of the arrays (amortised: each item is copied once at most).
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.deadlines = this.deadlines.slice(this.head);
      this.base += this.head;
      this.head = 0;
    }
    // Node's timer may run a little before performance.now() reaches the deadline: at least 1 ms.
    if (this.timer === undefined) this.arm(Math.max(1, this.deadlines[this.head]! - now));
  }
}

/**
 * Every timer of a transaction layer's transactions (RFC 3261 §17: E, F, G, H, I, L, the 2xx
 * retransmission, the 100 Trying delay), as one `FixedDelayTimers` per duration: the durations
 * are few (T1 doubling up to T2, 64*T1, T4, the Trying delay, zero), so each queue stays in
 * deadline order and one Node timer per duration serves them all. A transaction's timer is a slot
 * in its queue, freed when cleared: no Timeout object, list insertion and removal per timer set.
 */
export class TimerQueues {
  private readonly queues = new Map<number, FixedDelayTimers<() => void>>();

  constructor(private readonly log: LogFn) {}

  /** Call `fire` in `ms` (a callback that throws is logged); returns its handle for `cancel`. */
  add(ms: number, fire: () => void): number {
    let queue = this.queues.get(ms);
    if (queue === undefined) {
      queue = new FixedDelayTimers<() => void>(ms, (f) => f(), this.log);
      this.queues.set(ms, queue);
    }
    return queue.add(fire);
  }

  /** Drop the timer `add(ms, …)` returned `handle` for. */
  cancel(ms: number, handle: number): void {
    this.queues.get(ms)?.cancel(handle);
  }

  /** Drop every timer. */
  clear(): void {
    for (const queue of this.queues.values()) queue.clear();
  }

  /** Timers waiting (tests). */
  get size(): number {
    let n = 0;
    for (const queue of this.queues.values()) n += queue.size;
    return n;
  }
}
