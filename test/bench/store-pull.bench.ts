/**
 * The store's share of a full pull, without SIP or MSRP: the store calls one pull makes on the
 * local default (SQLite, FULL), in the order the handlers make them, with the real delivery
 * handler on the real job consumer and an edge that reports every message delivered at once.
 * Per pull: SUBSCRIBE (subscription put with its NOTIFY's counters, count, list), INVITE (the ids' batch
 * read, the delivery job), the job (session begin, claims, hand-off), the report (deletes,
 * watchers' NOTIFY: count, list, counters), the unsubscribe (last NOTIFY). PULLS pulls of users
 * holding 10 messages of about 700 bytes, RATE started per second (the pull bench's shape).
 *
 * Prints this process's CPU µs per pull (the store's work, the handlers' around it, the job
 * consumer), the store writes per pull (SqliteDatabase.write calls), commits and fdatasyncs per pull, and the
 * bytes sent to storage per pull (/proc/self/io write_bytes: WAL frames and checkpoints).
 * Figures from one process on a shared machine: compare runs made in the same minute.
 *
 * Run: npm run bench -- store-pull   (env: STORE_PULLS=3000 STORE_PULL_RATE=300 STORE_PULL_ROUNDS=3;
 * STORE_PULL_PROF=<file.cpuprofile> writes a CPU profile of the last round's pulls; STORE_PULL_DIR=/dev/shm
 * puts the database where an fdatasync costs nothing: as many commits as the writes allow;
 * STORE_PULL_PAGES=1 also prints the WAL pages per pull by the b-tree each belongs to, read from
 * the WAL's frame headers after each commit and SQLite's dbstat table, https://sqlite.org/walformat.html;
 * the reading makes the CPU figure meaningless)
 */
import { Session } from 'node:inspector/promises';
import fs from 'node:fs';
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteBackend, SqliteJobConsumer } from '#shared/adapters/sqlite/index.ts';
import type { DeferredMessage, DeliverySession, DialogState, Subscription } from '#shared/deferred/model.ts';
import { depositId } from '#shared/deferred/ids.ts';
import type { EdgeGateway } from '#shared/ports.ts';
import { buildDeliver } from '#functions/deliver/build.ts';

const PULLS = Number(process.env.STORE_PULLS ?? 3000);
const RATE = Number(process.env.STORE_PULL_RATE ?? 300);
const ROUNDS = Number(process.env.STORE_PULL_ROUNDS ?? 3);
const PER_USER = 10;
/** A file to write a CPU profile of the pulls to (deposits left out). */
const PROFILE = process.env.STORE_PULL_PROF;
const PAGES = process.env.STORE_PULL_PAGES === '1';
const profiler = PROFILE ? new Session() : undefined;
if (profiler) {
  profiler.connect();
  await profiler.post('Profiler.enable');
}

const dir = await mkdtemp(join(process.env.STORE_PULL_DIR ?? tmpdir(), 'bench-store-pull-'));
const backend = await openSqliteBackend({ dataDir: dir });
const { messages, subscriptions, sessions, queue } = backend.ports;
const db = backend.database;

let writes = 0;
const write = db.write.bind(db);
db.write = ((fn, options) => {
  writes++;
  return write(fn, options);
}) as typeof db.write;
let commits = 0;
const commit = db.db.prepare('COMMIT');
const commitRun = commit.run.bind(commit);
Object.defineProperty(db, 'commit', {
  value: {
    run: () => {
      commits++;
      const result = commitRun();
      if (PAGES) countPages();
      return result;
    },
  },
});

// WAL frames: a 32-byte file header, then per frame a 24-byte header (page number first, the
// header's salts at 8-15) and the page. A checkpoint restarts the WAL with new salts.
const pageSize = db.db.pragma('page_size', { simple: true }) as number;
const pagesBy = new Map<string, number>();
let owners = new Map<number, string>();
let walOffset = 32;
let walSalt = '';
function countPages(): void {
  const wal = fs.readFileSync(`${db.file}-wal`);
  const salt = wal.subarray(16, 24).toString('hex');
  if (salt !== walSalt) [walSalt, walOffset] = [salt, 32];
  for (; walOffset + 24 + pageSize <= wal.length; walOffset += 24 + pageSize) {
    if (wal.subarray(walOffset + 8, walOffset + 16).toString('hex') !== salt) break;
    const page = wal.readUInt32BE(walOffset);
    if (!owners.has(page)) {
      owners = new Map(
        db.db
          .prepare<[], { name: string; pageno: number }>('SELECT name, pageno FROM dbstat')
          .all()
          .map((r) => [r.pageno, r.name]),
      );
    }
    const name = owners.get(page) ?? '(free list)';
    pagesBy.set(name, (pagesBy.get(name) ?? 0) + 1);
  }
}

// fdatasyncs (the store's, of the WAL and at checkpoints): each costs the loop a hand-off to
// libuv's thread pool and the kernel its flush.
let fdatasyncs = 0;
const fdatasync = fs.fdatasync;
fs.fdatasync = ((fd: number, cb: fs.NoParamCallback) => {
  fdatasyncs++;
  fdatasync(fd, cb);
}) as typeof fs.fdatasync;
syncBuiltinESMExports();

const writeBytes = async () => Number(/write_bytes:\s+(\d+)/.exec(await readFile('/proc/self/io', 'utf8'))?.[1]);

function dialogOf(user: string, tag: string): DialogState {
  return {
    callId: `${tag}@bench`,
    localTag: `srv-${tag}`,
    remoteTag: `cli-${tag}`,
    localUri: user,
    remoteUri: user,
    remoteTarget: 'sip:client@127.0.0.1:5070',
    routeSet: [],
    localCSeq: 0,
    flow: { edgeId: 'local', transport: 'udp', remoteAddress: '127.0.0.1', remotePort: 5070 },
  };
}

function messageOf(user: string, n: number, nowSec: number): DeferredMessage {
  const from = 'sip:sender@example.com';
  const messageId = `m-${user}-${n}`;
  const text = 'x'.repeat(450);
  const cpim = Buffer.from(
    `From: <${from}>\r\nTo: <${user}>\r\nDateTime: ${new Date().toISOString()}\r\nNS: imdn <urn:ietf:params:imdn>\r\n` +
      `imdn.Message-ID: ${messageId}\r\nimdn.Disposition-Notification: positive-delivery\r\n\r\n` +
      `Content-Type: text/plain;charset=UTF-8\r\nContent-Length: ${text.length}\r\n\r\n${text}`,
  );
  return {
    user,
    id: depositId(user, from, messageId),
    messageId,
    from,
    to: user,
    date: new Date().toISOString(),
    contentType: 'text/plain;charset=UTF-8',
    size: text.length,
    dispositionNotification: 'positive-delivery',
    cpim: new Uint8Array(cpim),
    arrivedAt: new Date().toISOString(),
    expiresAt: nowSec + 86_400,
  };
}

const done = new Map<string, () => void>();
const edge: EdgeGateway = {
  async send() {
    return { status: 200 };
  },
  async transfer(_edgeId, transfer) {
    if (!transfer.final) return;
    // The edge SENDs in the background and reports once the client answered the last one.
    setImmediate(() => {
      void queue.report({
        type: 'delivery-report',
        user: transfer.user,
        sessionId: transfer.sessionId,
        edgeId: transfer.edgeId,
        dialog: transfer.dialog,
        byeCSeq: transfer.byeCSeq,
        results: transfer.messages.map((m) => ({
          id: m.id,
          status: 200,
          sent: true,
          arrivedAt: m.arrivedAt,
          from: m.from,
          bytes: m.bytes,
        })),
      });
    });
  },
  async closeSession() {},
};

const watchers = new Map<string, Subscription>();
/** The watchers' NOTIFY after a change: the count, the list, the dialog's counters. */
async function notify(user: string): Promise<void> {
  const nowSec = Math.floor(Date.now() / 1000);
  await messages.count(user, nowSec);
  await messages.list(user, nowSec, 50);
  const sub = watchers.get(user);
  if (sub) await subscriptions.nextNotify(user, sub.dialogId);
}

const deliver = buildDeliver({
  ports: {
    messages,
    sessions,
    edge,
    changes: {
      userChanged: async (user) => {
        await notify(user);
        done.get(user)?.();
      },
    },
  },
  now: Date.now,
});
const consumer = new SqliteJobConsumer({
  queue: backend.queues.delivery,
  handler: deliver,
  batchSize: 1,
  concurrency: 16,
});
consumer.start();

async function pull(user: string, ids: string[]): Promise<void> {
  const nowSec = Math.floor(Date.now() / 1000);
  const d = dialogOf(user, `sub-${user}`);
  const sub: Subscription = {
    user,
    dialogId: `${d.callId};${d.localTag};${d.remoteTag}`,
    dialog: d,
    version: 0,
    expiresAt: nowSec + 600,
    state: 'active',
  };
  // The SUBSCRIBE's put takes its first NOTIFY's counters (functions/subscribe/logic.ts).
  await subscriptions.put({ ...sub, version: 1, dialog: { ...sub.dialog, localCSeq: 1 } });
  watchers.set(user, sub);
  await messages.count(user, nowSec);
  await messages.list(user, nowSec, 50);
  const found = await messages.getMany(user, ids, nowSec);
  const inv = dialogOf(user, `inv-${user}`);
  const session: DeliverySession = {
    user,
    sessionId: `s-${user}`,
    dialogId: `${inv.callId};${inv.localTag};${inv.remoteTag}`,
    dialog: inv,
    retrieve: found.map((m) => m.id),
    clientPath: 'msrp://127.0.0.1:9/c;tcp',
    localPath: `msrp://127.0.0.1:2855/s-${user};tcp`,
    state: 'waiting',
    createdAt: new Date().toISOString(),
    expiresAt: nowSec + 3600,
  };
  const settled = new Promise<void>((resolve) => done.set(user, resolve));
  await queue.enqueue({ user, sessionId: session.sessionId, edgeId: 'local', session });
  await settled;
  done.delete(user);
  watchers.delete(user);
  await subscriptions.endNotify(user, sub.dialogId);
}

console.log(`store share of full pulls of ${PER_USER} messages: SQLite FULL, ${RATE} pulls/s started`);
console.log('  round  pulls  CPU µs/pull  writes/pull  commits/pull  fdatasyncs/pull  disk KiB/pull  wall s');
try {
  for (let round = 0; round <= ROUNDS; round++) {
    const nowSec = Math.floor(Date.now() / 1000);
    const users = Array.from({ length: PULLS }, (_, u) => `sip:r${round}-u${u}@example.com`);
    const ids: string[][] = [];
    for (let u = 0; u < users.length; u += 50) {
      await Promise.all(
        users.slice(u, u + 50).map(async (user) => {
          const stored: string[] = [];
          for (let n = 0; n < PER_USER; n++) stored.push((await messages.put(messageOf(user, n, nowSec))).message.id);
          ids[users.indexOf(user)] = stored;
        }),
      );
    }
    if (profiler && round > 0) await profiler.post('Profiler.start');
    const before = {
      cpu: process.cpuUsage(),
      writes,
      commits,
      fdatasyncs,
      disk: await writeBytes(),
      at: performance.now(),
    };
    pagesBy.clear();
    const pulls: Promise<void>[] = [];
    for (let u = 0; u < users.length; u++) {
      const due = before.at + (u * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      pulls.push(pull(users[u]!, ids[u]!));
    }
    await Promise.all(pulls);
    const cpu = process.cpuUsage(before.cpu);
    if (profiler && round > 0)
      await profiler.post('Profiler.stop').then(({ profile }) => writeFile(PROFILE!, JSON.stringify(profile)));
    const disk = (await writeBytes()) - before.disk;
    const n = users.length;
    // Round 0 warms the JIT up: not printed.
    if (round === 0) continue;
    console.log(
      `${String(round).padStart(7)} ${String(n).padStart(6)} ${((cpu.user + cpu.system) / n).toFixed(0).padStart(12)} ` +
        `${((writes - before.writes) / n).toFixed(1).padStart(12)} ${((commits - before.commits) / n).toFixed(2).padStart(13)} ` +
        `${((fdatasyncs - before.fdatasyncs) / n).toFixed(2).padStart(16)} ` +
        `${(disk / 1024 / n).toFixed(1).padStart(14)} ${((performance.now() - before.at) / 1000).toFixed(1).padStart(7)}`,
    );
    if (PAGES) {
      const all = [...pagesBy.values()].reduce((a, b) => a + b, 0);
      const by = [...pagesBy].sort((a, b) => b[1] - a[1]).map(([name, k]) => `${name} ${(k / n).toFixed(2)}`);
      console.log(`         WAL pages/pull ${(all / n).toFixed(2)}: ${by.join(', ')}`);
    }
  }
} finally {
  await consumer.stop();
  backend.close();
  await rm(dir, { recursive: true, force: true });
}
