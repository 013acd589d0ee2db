/**
 * Issue 11 "Done when", the crash part in small (test/bench/crash.bench.ts runs 100 kills):
 * `kill -9` of the service at random moments during concurrent pulls, restarted each time on the
 * same data folder. Nothing deposited is lost, and no message is delivered again once the
 * service processed the client's 200 for it (test/support/crash-pulls.ts reads that from the
 * store after each restart); re-sends of a message whose 200 was never processed are allowed.
 */
import { describe, expect, it } from 'vitest';
import { runCrashPulls } from '../support/crash-pulls.ts';

describe('kill -9 during pulls, five times', () => {
  it('loses nothing and delivers nothing again after its 200 was processed', async () => {
    const r = await runCrashPulls({
      kills: 5,
      users: 3,
      pullersPerUser: 2,
      messagesPerUser: 6,
      refillBelow: 3,
      maxKillDelayMs: 300,
      idsPerPull: 3,
      drainMs: 15_000,
    });
    expect(r.kills).toBe(5);
    expect(r.unidentified).toBe(0);
    expect(r.lost).toEqual([]);
    expect(r.duplicated).toEqual([]);
    // Every deposited message was delivered or is still stored, and pulls did run across the kills.
    expect(r.delivered + r.stored - r.deliveredStillStored).toBe(r.deposited);
    expect(r.delivered).toBeGreaterThan(0);
  }, 120_000);
});
