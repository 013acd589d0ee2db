/**
 * `npm run demo [-- --tcp] [-- --msrps]`: starts the service on free loopback ports with a fresh data folder,
 * then plays client A through Figure 30 and prints each step with the seed's numbers.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '#shared/config.ts';
import { runDemo } from './demo-flow.ts';
import { startEdge } from './edge.ts';

const transport = process.argv.includes('--tcp') ? 'tcp' : 'udp';
const msrps = process.argv.includes('--msrps');
const dataDir = await mkdtemp(join(tmpdir(), 'deferred-demo-'));
const config = loadConfig({
  DATA_DIR: dataDir,
  SIP_PORT: '0',
  SIPS_PORT: '0',
  SIP_WS_PORT: '0',
  MSRP_PORT: '0',
  ADMIN_PORT: '0',
  // --msrps: MSRP over TLS ended by the edge, with its self-signed certificate (RFC 4975 §15).
  ...(msrps ? { MSRPS_PORT: '0' } : {}),
});
const edge = await startEdge({ config, allowDestination: (a) => a === '127.0.0.1' || a === '::1' });
let code = 0;
try {
  process.stdout.write(
    `service on 127.0.0.1 (SIP ${transport.toUpperCase()} ${edge.ports.udp}), client A = sip:alice@example.com\n\n`,
  );
  await runDemo({ transport, sipPort: (transport === 'udp' ? edge.ports.udp : edge.ports.tcp) ?? 0, msrps }, (s) => {
    process.stdout.write(`[${s.step.padEnd(8)}] ${s.what}\n`);
    for (const [k, v] of Object.entries(s.detail ?? {})) {
      const lines = Array.isArray(v) ? v : [v];
      for (const line of lines) process.stdout.write(`             ${k}: ${String(line)}\n`);
    }
  });
  process.stdout.write('\nFigure 30 done: nothing left deferred for alice.\n');
} catch (err) {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  code = 1;
} finally {
  await edge.stop();
  await rm(dataDir, { recursive: true, force: true });
}
process.exit(code);
