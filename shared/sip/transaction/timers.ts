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
    this.running = [...this.running, name, handle];
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
