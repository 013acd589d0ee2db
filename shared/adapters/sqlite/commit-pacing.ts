/**
 * Commit pacing (SqliteOptions.commitDelayMs): how long the next group commit waits after the
 * one before it, from how busy the event loop has been. A commit costs about the same whatever it
 * holds (BEGIN and COMMIT, the WAL frames of the pages every write touches again, an fdatasync in
 * the thread pool and the context switches around it, the replies leaving in one burst): on a
 * busy loop, fewer and fuller commits leave more of the core to the requests. An idle or lightly
 * loaded loop commits at once, so the wait is paid only when it buys capacity.
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';

/** Below this share of busy time, commits are not delayed. */
const CALM = 0.5;
/** At or above this share, they wait the whole delay. */
const SATURATED = 0.9;
/** The window over which busy time is measured (ms). */
const WINDOW_MS = 100;

/** The event loop's busy share (0-1) over the last completed window of about WINDOW_MS. */
export function loopUtilization(): () => number {
  let last: EventLoopUtilization = performance.eventLoopUtilization();
  let at = performance.now();
  let share = 0;
  return () => {
    const now = performance.now();
    if (now - at >= WINDOW_MS) {
      const current = performance.eventLoopUtilization();
      share = performance.eventLoopUtilization(current, last).utilization;
      last = current;
      at = now;
    }
    return share;
  };
}

/**
 * The delay (ms) between the start of a commit and the next one: none up to CALM busy, rising
 * linearly to `maxDelayMs` at SATURATED.
 */
export function commitSpacing(maxDelayMs: number, busy: number): number {
  if (maxDelayMs <= 0 || busy <= CALM) return 0;
  return maxDelayMs * Math.min(1, (busy - CALM) / (SATURATED - CALM));
}
