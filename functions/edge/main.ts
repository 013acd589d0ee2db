/**
 * `npm start`: the edge on the local default (architecture.md): everything in one process on loopback,
 * nothing to configure. Prints what it bound; stops cleanly on SIGINT/SIGTERM.
 */
import { ConfigError, loadConfig } from '#shared/config.ts';
import { startEdge, type LogFn } from './edge.ts';

const log: LogFn = (level, msg, extra) => {
  if (level === 'debug' && !process.env.DEBUG) return;
  const line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...extra });
  (level === 'error' || level === 'warn' ? process.stderr : process.stdout).write(`${line}\n`);
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

  const edge = await startEdge({ config, log });
  const p = edge.ports;
  process.stdout.write(
    [
      `deferred-cpm edge up for ${config.sipDomain} on ${config.listen}`,
      `  SIP UDP ${p.udp}  TCP ${p.tcp}  TLS ${p.tls}  WS ${p.ws}`,
      `  MSRP ${p.msrp}`,
      `  admin http://${config.adminListen.includes(':') ? `[${config.adminListen}]` : config.adminListen}:${p.admin}/ (health, metrics, dashboard)`,
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
