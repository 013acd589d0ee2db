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

/** Named timers of one transaction; a callback that throws is logged, never rethrown. */
export class TimerSet {
  private readonly running = new Map<string, NodeJS.Timeout>();

  constructor(private readonly log: LogFn) {}

  set(name: string, ms: number, fire: () => void): void {
    this.clear(name);
    const handle = setTimeout(
      () => {
        this.running.delete(name);
        try {
          fire();
        } catch (err) {
          this.log('error', `timer ${name} callback failed`, { error: String(err) });
        }
      },
      Math.max(0, ms),
    );
    this.running.set(name, handle);
  }

  clear(name: string): void {
    const handle = this.running.get(name);
    if (handle) clearTimeout(handle);
    this.running.delete(name);
  }

  has(name: string): boolean {
    return this.running.has(name);
  }

  clearAll(): void {
    for (const handle of this.running.values()) clearTimeout(handle);
    this.running.clear();
  }
}
