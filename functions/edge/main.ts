/**
 * `npm start`: the edge on the local default (architecture.md): everything in one process on loopback,
 * nothing to configure. Prints what it bound; stops cleanly on SIGINT/SIGTERM.
 */
import { ConfigError, loadConfig } from '#shared/config.ts';
import { createLogger } from '#shared/observability/powertools.ts';
import { startEdge, type LogFn } from './edge.ts';

// The same structured logger the handlers use (Powertools, JSON lines, `component: edge`).
const logger = createLogger('edge', { logLevel: process.env.DEBUG ? 'DEBUG' : 'INFO' });
// A debug line below the level returns here: the logger would read the environment first (per-message MSRP lines).
const debugOn = logger.getLevelName() === 'DEBUG';
const log: LogFn = (level, msg, extra) => {
  if (level === 'debug' && !debugOn) return;
  logger[level](msg, { ...extra });
};

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  // Signals are caught from the start: one that arrives while starting stops the edge once it is up.
  let stopRequested: string | undefined;
  let shutdown = (signal: string) => {
    stopRequested ??= signal;
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));

  let edge;
  try {
    edge = await startEdge({ config, log });
  } catch (err) {
    // A setting the machine refuses (a port in use) is named like a bad value: exit 2.
    if (err instanceof ConfigError) {
      process.stderr.write(`configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const p = edge.ports;
  process.stdout.write(
    [
      `deferred-cpm edge up for ${config.sipDomain} on ${config.listen}`,
      `  SIP UDP ${p.udp}  TCP ${p.tcp}  TLS ${p.tls}  WS ${p.ws}`,
      `  MSRP ${p.msrp}${p.msrps !== undefined ? `  MSRPS ${p.msrps}` : ''}`,
      `  admin http://${config.adminListen.includes(':') ? `[${config.adminListen}]` : config.adminListen}:${p.admin}/ (console, health, metrics)`,
      `  operator token ${config.adminToken ? '(ADMIN_TOKEN)' : `${edge.adminToken} (in ${config.dataDir}/admin-token)`}`,
      `  data ${config.dataDir}`,
      // Since the process started (performance's time origin), not since this module loaded.
      `  up in ${Math.round(performance.now())} ms, resident ${Math.round(process.memoryUsage.rss() / 1048576)} MiB`,
      '',
    ].join('\n'),
  );
  let stopping = false;
  shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`${signal}: stopping\n`);
    edge
      .stop()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        process.stderr.write(`stop failed: ${String(err)}\n`);
        process.exit(1);
      });
  };
  if (stopRequested) shutdown(stopRequested);
}

main().catch((err: unknown) => {
  process.stderr.write(`start failed: ${err instanceof Error ? err.message : String(err)}\n`);
  // 3: another instance holds DATA_DIR (shared/adapters/sqlite/database.ts DataDirInUseError).
  process.exit(err instanceof Error && err.name === 'DataDirInUseError' ? 3 : 1);
});
