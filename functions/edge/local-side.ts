/**
 * The local default's handler side (docs/architecture.md "The local default"): the handlers in
 * this process, built by the same functions/<name>/build.ts functions the Lambda entries call,
 * over the SQLite store in DATA_DIR; its delivery queue consumed here, the expiry sweep on a
 * timer. edge.ts imports this module only in local mode, so the AWS container never loads the
 * native SQLite module.
 */
import type { SqsBatchHandler } from '#shared/adapters/sqs/poller.ts';
import { openSqliteBackend, SqliteJobConsumer, type SqliteBackend } from '#shared/adapters/sqlite/index.ts';
import { serviceUri, type Config } from '#shared/config.ts';
import type { Policy } from '#shared/deferred/policy.ts';
import type { ChangeFeed, EdgeGateway } from '#shared/ports.ts';
import type { EdgeMetrics } from './edge-metrics.ts';
import { probeStore } from './health.ts';
import { Operator } from './operator.ts';
import type { HandlerEvents } from '#shared/service/handler-events.ts';
import { buildDeliver } from '#functions/deliver/build.ts';
import { buildDeposit } from '#functions/deposit/build.ts';
import { buildExpire } from '#functions/expire/build.ts';
import { buildInvite } from '#functions/invite/build.ts';
import type { MsrpsEndpoint } from '#functions/invite/logic.ts';
import { buildSubscribe } from '#functions/subscribe/build.ts';
import type { HandlerSide, LogFn } from './edge.ts';

export { DataDirInUseError } from '#shared/adapters/sqlite/index.ts';

/** Open (and lock) the data folder's store; first thing the edge does, before binding a port. */
export function openLocalStore(config: Config): Promise<SqliteBackend> {
  return openSqliteBackend({
    dataDir: config.dataDir,
    synchronous: config.sqliteSynchronous,
    cacheBytes: config.sqliteCacheBytes,
    commitDelayMs: config.sqliteCommitDelayMs,
  });
}

export interface LocalSideOptions {
  backend: SqliteBackend;
  config: Config;
  policy: Policy;
  gateway: EdgeGateway;
  changes: ChangeFeed;
  msrpPort: number;
  /** Where clients reach MSRP over TLS (MsrpListener.secureEndpoint), if anywhere. */
  msrps?: MsrpsEndpoint;
  metrics: EdgeMetrics;
  log: LogFn;
  sweepIntervalMs?: number;
  /** Registered stop actions, run in reverse order by the edge. */
  stops: (() => Promise<void> | void)[];
}

export function startLocalSide(opts: LocalSideOptions): HandlerSide {
  const { backend, config, policy, metrics, log, stops } = opts;
  const ports = { ...backend.ports, edge: opts.gateway, changes: opts.changes };
  const now = Date.now;
  const serviceUris = [serviceUri(config.sipDomain)];
  // The Lambda entries report the same events as EMF metrics (lambda-runtime.ts metricEvents).
  const operator = new Operator({
    messages: ports.messages,
    subscriptions: ports.subscriptions,
    outbox: ports.outbox,
    changes: opts.changes,
    onPurged: (n) => metrics.deletions.inc({ by: 'operator' }, n),
  });
  const events: Required<HandlerEvents> = {
    deposited: () => metrics.deposits.inc(),
    deleted: () => metrics.deletions.inc({ by: 'user' }),
    delivered: (ms, message) => {
      metrics.retrievals.inc();
      metrics.deliveryLatency.observe(ms);
      operator.delivered({ ...message, latencyMs: ms });
    },
    deliveryFailed: (status) => metrics.deliveryFailures.inc({ status: String(status) }),
    expired: (n) => metrics.expiries.inc(n),
  };
  const subscribe = buildSubscribe({ ports, policy, serviceUris, now });
  const invite = buildInvite({
    ports,
    policy,
    serviceUris,
    msrp: config.advertiseTransports.msrp ?? { host: config.advertise, port: opts.msrpPort },
    ...(opts.msrps ? { msrps: opts.msrps } : {}),
    ownerMsrpPort: opts.msrpPort,
    events,
    now,
  });
  const deposit = buildDeposit({
    ports,
    policy,
    warnAgent: config.sipDomain,
    servedDomain: config.sipDomain,
    events,
    now,
  });
  const deliver = buildDeliver({ ports, events, now, messageLeaseSeconds: policy.deliveryLeaseSeconds });
  const expire = buildExpire({ ports, policy, events, now });

  const deliveries = new SqliteJobConsumer({
    queue: backend.queues.delivery,
    handler: deliver,
    // Each job hands its messages to this edge's MSRP side and returns; one job per batch. A
    // handler waits for the session's lease to commit (the next group commit, 10-20 ms under
    // load), so the loops bound the deliveries' rate at about `concurrency` a commit: 64 leave it
    // to the CPU (16 held it near 450/s on one core that could do more). Four wait while there is
    // no work; the others start as it comes and end once idle (64 kept cost 1 MiB resident).
    batchSize: 1,
    concurrency: 64,
    onError: (err) => log('warn', 'delivery queue failed', { error: String(err) }),
  });
  deliveries.start();
  stops.push(() => deliveries.stop());

  const sweepTimer = setInterval(() => {
    void expire
      .sweep()
      .then(() => backend.housekeeping())
      .then(({ summariesFixed }) => {
        if (summariesFixed > 0) log('warn', 'per-user message counts repaired', { users: summariesFixed });
      })
      .catch((err: unknown) => log('warn', 'expiry sweep failed', { error: String(err) }));
  }, opts.sweepIntervalMs ?? 10_000);
  sweepTimer.unref();
  stops.push(() => clearInterval(sweepTimer));

  const queueDepths = async () => ({
    delivery: backend.queues.delivery.depth().ready,
    outbound: backend.queues.outbound.depth().ready,
  });

  return {
    invoker: { subscribe, invite, deposit: deposit.sip },
    operator: { deposit: (json) => deposit.http(json), operator },
    queueDepths,
    checks: [
      { name: 'store', run: () => probeStore(ports.sessions) },
      { name: 'queues', run: async () => JSON.stringify(await queueDepths()) },
    ],
    // The reports of this process's hand-offs are settled here at once, by the deliver handler's
    // own report step (what its queue consumer would run); one it could not settle (the store
    // failing) goes on the delivery queue, which retries it. A report is not lost either way
    // before it settles: a crash before its deletes commit leaves the messages claimed until
    // their lease ends, as a crash before a queued report's commit did.
    deliveryReports: {
      report: (report) =>
        deliver.settle(report).then(
          () => undefined,
          (err: unknown) => {
            log('warn', 'delivery report not settled at once; queued for a retry', {
              sessionId: report.sessionId,
              error: String(err),
            });
            return backend.ports.queue.report(report);
          },
        ),
    },
    consumeOutbound: (handler: SqsBatchHandler) => {
      const consumer = new SqliteJobConsumer({
        queue: backend.queues.outbound,
        handler,
        concurrency: 2,
        onError: (err) => log('warn', 'outbound queue failed', { error: String(err) }),
      });
      consumer.start();
      return consumer;
    },
  };
}
