/**
 * Issue 11 "Done when": messages lost and duplicated over 100 `kill -9` during pulls (goal 0
 * and 0). The service runs as `npm start` runs it, on one data folder with the default SQLite
 * store (synchronous FULL), killed at a random moment after each run's first MSRP delivery and
 * restarted on the same folder; pull clients reconnect and pull again. Definitions in
 * test/support/crash-pulls.ts (a duplicate is a delivery after the service processed the
 * client's 200, read from the store; a re-send of one whose 200 it never processed is allowed).
 *
 * Run: npm run bench -- crash   (env: CRASH_KILLS=100 CRASH_USERS=8 CRASH_PULLERS=3
 * CRASH_MESSAGES=40 CRASH_MAX_DELAY_MS=400)
 */
import { cpus } from 'node:os';
import { runCrashPulls } from '../support/crash-pulls.ts';

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const options = {
  kills: env('CRASH_KILLS', 100),
  users: env('CRASH_USERS', 8),
  pullersPerUser: env('CRASH_PULLERS', 3),
  messagesPerUser: env('CRASH_MESSAGES', 40),
  refillBelow: env('CRASH_MESSAGES', 40) / 2,
  maxKillDelayMs: env('CRASH_MAX_DELAY_MS', 400),
  idsPerPull: 5,
  drainMs: 30_000,
};
console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, node ${process.version}`);
console.log(
  `${options.kills} kill -9 during pulls: ${options.users} users x ${options.pullersPerUser} concurrent pull clients, ` +
    `${options.messagesPerUser} messages per user (topped up below ${options.refillBelow}), 1-${options.idsPerPull} ids per INVITE, ` +
    `kill 0-${options.maxKillDelayMs} ms after a run's first delivery`,
);
const r = await runCrashPulls({ ...options, log: (line) => console.log(`  ${line}`) });
console.log(`deposited:                 ${r.deposited}`);
console.log(
  `delivered (unique):        ${r.delivered}  (${r.deliveries} deliveries, ${r.pulls.completed} pulls completed, ${r.pulls.interrupted} interrupted)`,
);
console.log(
  `still stored:              ${r.stored}  (of which delivered but 200 never processed: ${r.deliveredStillStored})`,
);
console.log(`lost:                      ${r.lost.length}${r.lost.length ? `  ${r.lost.slice(0, 10).join(' ')}` : ''}`);
console.log(
  `duplicated:                ${r.duplicated.length}${r.duplicated.length ? `  ${JSON.stringify(r.duplicated.slice(0, 5))}` : ''}`,
);
console.log(
  `200s written in pulls a kill cut short (maybe processed): ${r.cutShort.processed + r.cutShort.notProcessed}, ` +
    `of which the store shows ${r.cutShort.processed} processed, ${r.cutShort.notProcessed} not`,
);
console.log(`re-sends (200 never processed, allowed): ${r.resends}`);
console.log(`kills done:                ${r.kills}  in ${r.seconds.toFixed(0)} s`);
if (r.unidentified) console.log(`deliveries without imdn.Message-ID: ${r.unidentified}`);
process.exit(r.lost.length === 0 && r.duplicated.length === 0 && r.kills === options.kills ? 0 : 1);
