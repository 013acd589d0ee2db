/**
 * Issue 12's bench: pulls through Kamailio (test/interop/kamailio.cfg: record_route, PAI) to the
 * service (`npm start`'s entry as a separate process), per transport. A pull: one deferred message
 * stored; SUBSCRIBE (Expires: 0) through the proxy, the NOTIFY with the list, INVITE retrieving it,
 * ACK, the message over MSRP, the service's BYE. Reports failures (goal 0) and pull latency
 * (SUBSCRIBE sent to BYE received) p50/p99.
 * Run: npx tsx test/bench/interop.bench.ts [pulls=1000] [concurrency=8] [transports=udp,tcp,ws]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CpmClient } from '#functions/edge/cpm-client.ts';
import { decodeList } from '#shared/deferred/list-codec.ts';
import { connectMsrp } from '#shared/msrp/client.ts';
import { parseMsrpOffer } from '#shared/sdp/msrp-sdp.ts';
import { ADMIN_AUTH, depositHttp, spawnEdge } from '../e2e/support.ts';
import { Kamailio } from '../interop/kamailio.ts';

const pulls = Number(process.argv[2] ?? 1000);
const concurrency = Number(process.argv[3] ?? 8);
const transports = (process.argv[4] ?? 'udp,tcp,ws').split(',') as ('udp' | 'tcp' | 'ws')[];

const pct = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};

async function pull(transport: 'udp' | 'tcp' | 'ws', proxyPort: number, user: string): Promise<number> {
  const c = await CpmClient.connect({ transport, server: { host: '127.0.0.1', port: proxyPort }, user });
  try {
    const t0 = performance.now();
    const sub = await c.subscribe({ expires: 0 });
    if (sub.response.status !== 200) throw new Error(`SUBSCRIBE ${sub.response.status}`);
    const list = decodeList((await c.nextNotify(sub.dialog)).body.toString('utf8'));
    if (!list.ok || list.entries.length !== 1) throw new Error('NOTIFY without the stored message');
    const inv = await c.invite([{ id: list.entries[0]!.id, action: 'retrieve' }]);
    const answer = parseMsrpOffer(inv.response.body.toString('utf8'));
    if (!answer.ok) throw new Error(`INVITE ${inv.response.status}`);
    let done: () => void = () => undefined;
    const got = new Promise<void>((resolve) => (done = resolve));
    const msrp = await connectMsrp({ localPath: inv.msrpPath, remotePath: answer.path, onMessage: () => done() });
    try {
      await got;
      await c.nextBye(inv.dialog, 20_000);
    } finally {
      msrp.close();
    }
    return performance.now() - t0;
  } finally {
    c.close();
  }
}

const dataDir = await mkdtemp(join(tmpdir(), 'deferred-interop-bench-'));
const edge = await spawnEdge({ DATA_DIR: dataDir, MAX_IN_FLIGHT: '5000' });
const adminUrl = `http://127.0.0.1:${edge.ports.admin}`;
const proxy = await Kamailio.start({ service: { udp: edge.ports.udp!, tcp: edge.ports.tcp! } });
try {
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, node ${process.version}`);
  console.log(`${pulls} pulls per transport through Kamailio, ${concurrency} at a time`);
  for (const transport of transports) {
    for (let i = 0; i < pulls; i++) {
      const r = await depositHttp(adminUrl, {
        to: `sip:b-${transport}-${i}@example.com`,
        from: 'sip:bob@example.net',
        body: `m ${i}`,
      });
      if (r.status !== 201) throw new Error(`deposit ${i}: ${r.status}`);
    }
    const latencies: number[] = [];
    const failures: string[] = [];
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < pulls; i = next++) {
          try {
            latencies.push(await pull(transport, proxy.ports.main, `sip:b-${transport}-${i}@example.com`));
          } catch (err) {
            failures.push(String(err));
          }
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    console.log(
      `${transport}: ${latencies.length} ok, ${failures.length} failed in ${seconds.toFixed(1)} s; ` +
        `pull p50 ${pct(latencies, 0.5).toFixed(1)} ms, p99 ${pct(latencies, 0.99).toFixed(1)} ms`,
    );
    for (const f of [...new Set(failures)].slice(0, 5)) console.log(`  failure: ${f}`);
    // The service's side of it: requests it shed for load and the 5xx it answered (a proxy turns
    // a 503 into a 500 upstream, RFC 3261 §16.7), counted since it started.
    const metrics = await (await fetch(`${adminUrl}/metrics`, { headers: ADMIN_AUTH })).text();
    const shed = [...metrics.matchAll(/^sip_shed_total\{reason="([^"]+)"\} (\d+)/gm)].map((m) => `${m[1]} ${m[2]}`);
    const errors = [...metrics.matchAll(/^\w*sip_responses\w*\{method="(\w+)",status_class="5xx"\} (\d+)/gim)];
    const proxyErrors = proxy.output.split('\n').filter((l) => /ERROR|WARN|CRIT/.test(l));
    for (const l of [...new Set(proxyErrors)].slice(0, 8)) console.log(`  proxy: ${l.slice(0, 300)}`);
    console.log(
      `  service so far: shed ${shed.join(', ') || 'none'}; 5xx ${errors.map((m) => `${m[1]} ${m[2]}`).join(', ') || 'none'}`,
    );
  }
} finally {
  await proxy.stop();
  edge.child.kill('SIGTERM');
  await new Promise((resolve) => edge.child.once('exit', resolve));
  await rm(dataDir, { recursive: true, force: true });
}
