/**
 * Issue 3's figures, on loopback against `npm start`'s entry as a separate process:
 * - full pulls per second (each user with 10 deferred messages: SUBSCRIBE to final NOTIFY, all 10
 *   delivered over MSRP) and p50/p99 from SUBSCRIBE to the first NOTIFY;
 * - deposits per second (SIP MESSAGE over UDP, 202 each);
 * - resident memory of the service process holding 10,000 active subscriptions.
 * Run: npx tsx test/bench/pull.bench.ts [users=20] [deposits=2000] [subscriptions=10000]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { CpmClient } from '#functions/edge/cpm-client.ts';
import { spawnEdge } from '../e2e/support.ts';
import { depositMany, pct } from './cpm-load.ts';
import { PullLoad } from './pull-load.ts';

const [users = 20, deposits = 2000, subscriptions = 10_000] = process.argv.slice(2).map(Number);

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
}

const dataDir = await mkdtemp(join(tmpdir(), 'deferred-bench-'));
const edge = await spawnEdge({ DATA_DIR: dataDir, MAX_IN_FLIGHT: '5000' });
const port = edge.ports.udp!;
try {
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, node ${process.version}`);

  const dps = await depositMany(port, (i) => `sip:dep${i % 100}@example.com`, deposits);
  console.log(`deposits: ${deposits} SIP MESSAGE over UDP, ${dps.toFixed(0)} /s`);

  await depositMany(port, (i) => `sip:pull${Math.floor(i / 10)}@example.com`, users * 10);
  const load = await PullLoad.open({ host: '127.0.0.1', port });
  const t0 = performance.now();
  const latencies = await Promise.all(
    Array.from({ length: users }, async (_, u) => (await load.pull(`sip:pull${u}@example.com`)).toFirstNotify),
  ).finally(() => load.close());
  const seconds = (performance.now() - t0) / 1000;
  console.log(
    `full pulls: ${users} users x 10 messages in ${seconds.toFixed(2)} s = ${(users / seconds).toFixed(1)} pulls/s`,
  );
  console.log(
    `SUBSCRIBE -> first NOTIFY: p50 ${pct(latencies, 0.5).toFixed(1)} ms, p99 ${pct(latencies, 0.99).toFixed(1)} ms`,
  );

  const before = await rssOf(edge.child.pid!);
  const holders = await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      CpmClient.connect({ transport: 'udp', server: { host: '127.0.0.1', port }, user: `sip:sub${i}@example.com` }),
    ),
  );
  let n = 0;
  await Promise.all(
    holders.map(async (c) => {
      while (n < subscriptions) {
        n++;
        const s = await c.subscribe({ expires: 3600 });
        if (s.response.status !== 200) throw new Error(`subscribe ${s.response.status}`);
      }
    }),
  );
  const after = await rssOf(edge.child.pid!);
  const gauge = async (name: string) => {
    const text = await (await fetch(`http://127.0.0.1:${edge.ports.admin}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return Number(line?.slice(name.length + 1) ?? NaN);
  };
  console.log(
    `resident memory: ${before.toFixed(0)} MiB before, ${after.toFixed(0)} MiB holding ${subscriptions} active subscriptions`,
  );
  console.log(
    `  right after: ${await gauge('sip_transactions{side="server"}')} SIP transactions alive, heap used ${((await gauge('nodejs_heap_size_used_bytes')) / 2 ** 20).toFixed(0)} MiB`,
  );
  // Completed transactions linger for Timer J (64*T1 over UDP, RFC 3261 §17.2.2); after it only the subscriptions remain.
  await new Promise((resolve) => setTimeout(resolve, 40_000));
  console.log(
    `  40 s later: ${(await rssOf(edge.child.pid!)).toFixed(0)} MiB resident, ${await gauge('sip_transactions{side="server"}')} transactions, heap used ${((await gauge('nodejs_heap_size_used_bytes')) / 2 ** 20).toFixed(0)} MiB`,
  );
  for (const c of holders) c.close();
} finally {
  edge.child.kill('SIGTERM');
  await new Promise((resolve) => edge.child.once('exit', resolve));
  await rm(dataDir, { recursive: true, force: true });
}
