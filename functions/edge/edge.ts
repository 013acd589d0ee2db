/**
 * The edge's composition root: SIP transports and transactions, the MSRP listener, the admin and
 * control HTTP port, and the handlers behind them: in the local default, in this process over
 * the SQLite store in DATA_DIR (./local-side.ts); in AWS (HANDLER_MODE=lambda), the deployed
 * functions (./aws-side.ts). Each side is imported only in its mode: the container never loads
 * the native SQLite module, the local default never loads the AWS SDK. `startEdge`
 * is what `npm start`, the demo, the end-to-end tests and the Fargate container run.
 */
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, controlDestinations, makeTrustCheck, type Config } from '#shared/config.ts';
import { cutListToFit } from '#shared/deferred/list-codec.ts';
import { defaultPolicy, type Policy } from '#shared/deferred/policy.ts';
import type { ChangeFeed, DeliveryQueue, EdgeGateway, HandlerInvoker } from '#shared/ports.ts';
import { TransportLayer, type Source, type TransportName } from '#shared/sip/transport/index.ts';
import type { TransportConfig } from '#shared/sip/transport/types.ts';
import { DEFAULT_TIMERS, TransactionLayer, type Timers } from '#shared/sip/transaction/index.ts';
import { MsrpListener, type MsrpRelayOptions } from '#shared/msrp/listener.ts';
import { edgeSessionOwner } from '#shared/msrp/session-owner.ts';
import { dialogIdOf } from '#shared/sip/dialog/index.ts';
import type { SqsBatchHandler } from '#shared/adapters/sqs/poller.ts';
import type { MetricBatch } from '#shared/observability/recorder.ts';
import { AdminServer, type AdminDeps } from './admin-server.ts';
import { ChangeCoalescer } from './change-coalescer.ts';
import { TransferRunner } from './transfer-runner.ts';
import { EdgeMetrics } from './edge-metrics.ts';
import { FlowTrace } from './flow-trace.ts';
import { runReadiness, type ReadinessCheck } from './health.ts';
import { loadOperatorToken } from './operator-token.ts';
import { TimeSeries } from './time-series.ts';
import { resolveEdgeId } from './edge-id.ts';
import { InDialogSender } from './in-dialog-sender.ts';
import { OverloadGate } from './overload-gate.ts';
import { RETRY_AFTER_SECONDS, SipApp } from './sip-app.ts';
import { loadTlsMaterial } from './tls-material.ts';
import { makeFailureImdnQueueHandler, makeFailureImdnSender } from './failure-imdn.ts';

export type LogFn = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, extra?: object) => void;

export interface EdgeOptions {
  config: Config;
  log?: LogFn;
  /** Overrides for tests: short SIP timers, a policy with small limits, a faster sweep. */
  timers?: Partial<Timers>;
  policy?: Partial<Policy>;
  sweepIntervalMs?: number;
  /** How often the console's time series samples the metrics (10 s). */
  seriesIntervalMs?: number;
  /** Outbound allow-list for SIP sends (default: controlDestinations(config); tests: loopback only). */
  allowDestination?: (address: string) => boolean;
}

export interface BoundPorts {
  udp?: number;
  tcp?: number;
  tls?: number;
  /** Plain TCP for TLS a load balancer ended (SIP_TLS_OFFLOAD_PORT). */
  tlsOffload?: number;
  ws?: number;
  msrp: number;
  /** MSRP over TLS ended here (MSRPS_PORT). */
  msrps?: number;
  admin: number;
}

export interface RunningEdge {
  ports: BoundPorts;
  metrics: EdgeMetrics;
  /** The operator credential for /api and the console. */
  adminToken: string;
  stop(): Promise<void>;
}

/** What stands behind the edge: who decides, the operator routes that need a store, the outbound queue. */
export interface HandlerSide {
  invoker: HandlerInvoker;
  operator?: Pick<AdminDeps, 'deposit' | 'operator'>;
  /** Readiness checks of what stands behind the edge (store, queues, functions). */
  checks: ReadinessCheck[];
  /** Messages waiting per queue, for the gauges and the console. */
  queueDepths: () => Promise<Record<string, number>>;
  /** Consume the queue where the handlers put the IMDN failure reports this edge sends. */
  consumeOutbound(handler: SqsBatchHandler): { stop(): Promise<void> };
  /**
   * Where this edge's delivery reports go for `deliver` to settle: the delivery queue (AWS), or
   * `deliver`'s report step itself when it runs in this process (local).
   */
  deliveryReports: Pick<DeliveryQueue, 'report'>;
}

export async function startEdge(opts: EdgeOptions): Promise<RunningEdge> {
  const { config } = opts;
  const log: LogFn = opts.log ?? (() => undefined);
  const policy = defaultPolicy({
    retentionSeconds: config.retentionSeconds,
    deliveryLeaseSeconds: config.deliveryLeaseSeconds,
    maxMessagesPerUser: config.maxMessagesPerUser,
    maxBytesPerUser: config.maxBytesPerUser,
    maxStoreBytes: config.maxStoreBytes,
    ...opts.policy,
  });
  const metrics = new EdgeMetrics();
  const trace = config.flowTrace ? new FlowTrace() : undefined;
  const stops: (() => Promise<void> | void)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await Promise.resolve(stop()).catch(() => undefined);
  };
  const lambdaMode = config.handlerMode === 'lambda' && config.functions !== undefined;

  try {
    await mkdir(config.dataDir, { recursive: true });
    const aws = lambdaMode ? await import('./aws-side.ts') : undefined;
    const local = lambdaMode ? undefined : await import('./local-side.ts');
    // EMF metrics for CloudWatch (AWS mode): counted here, published once a minute.
    const emf: MetricBatch | undefined = aws?.edgeMetrics();
    // The store first: a second instance on the same DATA_DIR stops here, before binding a port.
    const store = local ? await local.openLocalStore(config) : undefined;
    if (store) stops.push(() => store.close());
    const edgeId = await resolveEdgeId(config);

    const tls = await loadTlsMaterial({
      ...(config.tlsKeyFile ? { keyFile: config.tlsKeyFile } : {}),
      ...(config.tlsCertFile ? { certFile: config.tlsCertFile } : {}),
      dataDir: config.dataDir,
      commonName: config.sipDomain,
    });
    const transport = new TransportLayer(
      {
        host: config.listen,
        udpPort: config.sipPort,
        tcpPort: config.sipTcpPort,
        tlsPort: config.sipsPort,
        wsPort: config.wsPort,
        tls,
        ...(config.tlsOffloadPort !== undefined ? { tlsOffloadPort: config.tlsOffloadPort } : {}),
        advertised: sipAdvertised(config),
        idleTimeoutMs: config.idleTimeoutSeconds * 1000,
        udpReceiveBufferBytes: config.udpReceiveBufferBytes,
        allowDestination: opts.allowDestination ?? controlDestinations(config),
        // The SIP/IP Core is not held to the per-source limit and keeps connecting under a flood.
        isKnownPeer: makeTrustCheck(config.trustedPeers),
        maxReceiveWaitMs: opts.timers?.t1 ?? DEFAULT_TIMERS.t1,
      },
      log,
    );
    const sip = await bindOrName(() => transport.start(), config.listen, {
      SIP_PORT: config.sipPort,
      SIP_TCP_PORT: config.sipTcpPort,
      SIPS_PORT: config.sipsPort,
      SIP_WS_PORT: config.wsPort,
    });
    stops.push(() => transport.stop());
    // Linux reports twice the size it accepted; less than asked means net.core.rmem_max caps it.
    const udpAccepted = (transport.udpReceiveBuffer ?? 2 * config.udpReceiveBufferBytes) / 2;
    if (udpAccepted < config.udpReceiveBufferBytes) {
      log('warn', 'SIP UDP receive buffer capped by the kernel; bursts may be dropped unanswered', {
        asked: config.udpReceiveBufferBytes,
        granted: udpAccepted,
        fix: `sysctl -w net.core.rmem_max=${config.udpReceiveBufferBytes}`,
      });
    }
    const transactions = new TransactionLayer(transport, opts.timers, {
      maxServerTransactions: config.maxTransactions,
      retryAfterSeconds: RETRY_AFTER_SECONDS,
      onRefused: () => metrics.sipShed.inc({ reason: 'transactions' }),
    });
    stops.push(() => transactions.stop());
    const gate = new OverloadGate({
      maxInFlight: config.maxInFlight,
      maxLagMs: config.maxLoopLagMs,
      // RFC 3261 §17.1.2.2: past T1 a UDP client retransmits. Half of it for the wait, half for the work.
      queueDelay: () => transport.receiveDelayMs,
      maxQueueDelayMs: (opts.timers?.t1 ?? DEFAULT_TIMERS.t1) / 2,
    });
    stops.push(() => gate.stop());

    // Several tasks behind one NLB: a client's MSRP connection may reach a task other than the
    // session's owner, which the session id names (the invite handler encodes this edge id).
    let relay: MsrpRelayOptions | undefined;
    if (config.msrpRelayAllow.length > 0) {
      const self = edgeSessionOwner(edgeId, config.msrpPort);
      if (!self) {
        throw new ConfigError(
          'MSRP_RELAY_ALLOW',
          `needs this task's IPv4 address in its edge id, not "${edgeId}" (set EDGE_ID)`,
        );
      }
      relay = {
        allow: makeTrustCheck(config.msrpRelayAllow),
        // As other tasks reach this one: the port actually bound (MSRP_PORT may be 0).
        self: {
          address: self.address,
          get port() {
            return msrp.port;
          },
        },
      };
    }
    const msrp: MsrpListener = new MsrpListener({
      host: config.listen,
      port: config.msrpPort,
      advertiseHost: config.advertiseTransports.msrp?.host ?? config.advertise,
      ...(config.msrpTlsOffloadPort !== undefined && config.advertiseTransports.msrps
        ? { tlsOffload: { port: config.msrpTlsOffloadPort, advertise: config.advertiseTransports.msrps } }
        : {}),
      ...(config.advertiseTransports.msrp ? { advertisePort: config.advertiseTransports.msrp.port } : {}),
      // RFC 4975 §15: msrps ended here, with the SIP certificate (its fingerprint goes in the SDP).
      ...(config.msrpsPort !== undefined
        ? {
            tls: {
              port: config.msrpsPort,
              key: tls.key,
              cert: tls.cert,
              ...(config.advertiseTransports.msrps ? { advertise: config.advertiseTransports.msrps } : {}),
            },
          }
        : {}),
      chunkBytes: policy.msrpChunkBytes,
      transactionTimeoutMs: policy.msrpTimeoutMs,
      connectTimeoutMs: policy.sessionConnectTimeoutMs,
      ...(relay ? { relay } : {}),
      log: {
        debug: (m, e) => log('debug', m, e),
        info: (m, e) => log('info', m, e),
        warn: (m, e) => log('warn', m, e),
      },
    });
    const msrpPort = await bindOrName(() => msrp.start(), config.listen, {
      MSRP_PORT: config.msrpPort,
      ...(config.msrpsPort !== undefined ? { MSRPS_PORT: config.msrpsPort } : {}),
    });
    stops.push(() => msrp.stop());
    /** Where clients reach MSRP over TLS, and our certificate's fingerprint when TLS ends here. */
    const msrps = msrp.secureEndpoint();

    /**
     * Our Contact on a transport (RFC 3261 §12.1.1 for the 2xx, §12.2.1.1 for NOTIFY and BYE):
     * the address clients reach that transport at (see `contactUri`).
     */
    const contactOn = (transport: TransportName, port = sip[transport] ?? sip.udp ?? sip.tcp ?? 5060): string =>
      contactUri(config, transport, port);
    const contactFor = (source: Source): string => contactOn(source.transport, source.localPort);

    // The handlers are reached through `invoker`, set once the handler side is up.
    let invoker: HandlerInvoker | undefined;
    const sender = new InDialogSender({
      transactions,
      contactFor: (transport) => contactOn(transport),
      shrinkBody: cutListToFit,
      onSubscriptionEnded: async (sub, status) => {
        metrics.subscriptionsEnded.inc({ cause: String(status) });
        await invoker?.subscribe({ type: 'notify-failed', user: sub.user, dialogId: sub.dialogId, status });
      },
      onSent: (method, status) => {
        metrics.sent(method, status);
        if (method === 'NOTIFY') emf?.notify(status);
      },
    });

    let app: SipApp | undefined;
    // The MSRP SENDs of each delivery hand-off run here, where the connection is; the reports go
    // on the delivery queue, set once the handler side is up.
    let side: HandlerSide | undefined;
    const transfers = new TransferRunner({
      send: (sessionId, message) => {
        // The ladder shows the MSRP SEND and its answer under the INVITE's Call-ID.
        const callId = trace ? app?.callIdOfSession(sessionId) : undefined;
        if (!trace || !callId) return msrp.deliver(sessionId, message);
        trace.msrp(callId, 'out', `msrp session ${sessionId}`, 'SEND', message.id);
        return msrp.deliver(sessionId, message).then((outcome) => {
          trace.msrp(callId, 'in', `msrp session ${sessionId}`, String(outcome.status), message.id);
          return outcome;
        });
      },
      // The listener sends a session's deliveries in call order, pipelined.
      pipelined: true,
      report: (report) => side!.deliveryReports.report(report),
      onError: (sessionId, err) =>
        log('warn', 'delivery report not queued: its messages go again after their lease', {
          sessionId,
          error: String(err),
        }),
    });
    const gateway: EdgeGateway = {
      send: async (_edgeId, spec) => {
        const dialogId = dialogIdOf(spec.dialog);
        // Not before the INVITE's 2xx and its ACK gate (RFC 3261 §15; SipApp.inviteAnswered).
        if (spec.method === 'BYE') await app?.inviteAnswered(spec.dialog.callId);
        // A dialog a BYE already ended gets no second one: the UA would answer 481 (RFC 3261 §15).
        if (spec.method === 'BYE' && app && !app.byeWanted(dialogId)) return { status: 481 };
        const outcome = await sender.send(spec);
        if (spec.method === 'BYE') app?.sessionEnded(dialogId);
        return outcome;
      },
      transfer: async (_edgeId, transfer) => transfers.accept(transfer),
      closeSession: async (_edgeId, sessionId) => msrp.closeSession(sessionId),
    };
    // List changes become NOTIFYs for the subscriptions this task holds, at most one a second.
    const coalescer = new ChangeCoalescer(async (user, { dialogIds, revision }) => {
      const result = await invoker!.subscribe({
        type: 'user-changed',
        user,
        edgeId,
        ...(dialogIds ? { dialogIds: [...dialogIds] } : {}),
        ...(revision !== undefined ? { revision } : {}),
      });
      await Promise.all((result.requests ?? []).map((r) => sender.send(r).catch(() => undefined)));
    }, policy.notifyMinIntervalMs);
    stops.push(() => coalescer.stop());
    const changes: ChangeFeed = { userChanged: (user) => coalescer.userChanged(user) };

    side =
      local && store
        ? local.startLocalSide({
            backend: store,
            config,
            policy,
            gateway,
            changes,
            msrpPort,
            ...(msrps ? { msrps } : {}),
            metrics,
            log,
            stops,
            ...(opts.sweepIntervalMs !== undefined ? { sweepIntervalMs: opts.sweepIntervalMs } : {}),
          })
        : aws!.startAwsSide(config, log, stops);
    if (side.operator?.operator) {
      const operator = side.operator.operator;
      metrics.setSources({
        store: async () => ({ ...(await operator.state()), bytes: await folderBytes(config.dataDir) }),
      });
    }
    invoker = side.invoker;
    // Stopping (stops run in reverse): the hand-offs report before the queues and MSRP close.
    stops.push(() => transfers.stop());

    // IMDN failure reports, queued by invite and expire (which have no SIP socket), in both
    // modes; any edge task may send one, as it is outside any dialog.
    const outbound = side.consumeOutbound(
      makeFailureImdnQueueHandler({
        send: makeFailureImdnSender({
          transactions,
          domain: config.sipDomain,
          ...(config.outboundProxy ? { outboundProxy: config.outboundProxy } : {}),
          log,
          onSent: (status) => metrics.imdnFailureReports.inc({ status: String(status) }),
        }),
        log,
      }),
    );
    stops.push(() => outbound.stop());

    app = new SipApp({
      transactions,
      invoker: side.invoker,
      sender,
      msrp,
      edgeId,
      isTrusted: makeTrustCheck(config.trustedPeers),
      isDirectClient: makeTrustCheck(config.directClients),
      contactFor,
      userChanged: (user) => coalescer.userChanged(user),
      gate,
      ackWaitMs: 64 * (opts.timers?.t1 ?? DEFAULT_TIMERS.t1),
      onRequest: (method) => {
        metrics.request(method);
        emf?.sipRequest(method);
      },
      onResponse: (method, status, elapsedMs) => {
        metrics.response(method, status, elapsedMs);
        emf?.sipResponse(method, status);
      },
      onShed: (reason) => metrics.sipShed.inc({ reason }),
      log,
    });
    const sipApp = app;
    msrp.on('closed', (sessionId: string) => sipApp.msrpSessionClosed(sessionId));
    metrics.setSources({
      msrpSessions: () => sipApp.openSessions,
      transactions: () => transactions.size,
      queues: side.queueDepths,
    });
    if (trace) {
      transport.onMessage((msg, source) => trace.sip(msg, 'in', peerOf(source)));
      transport.onSent((msg, to) => trace.sip(msg, 'out', `${to.transport} ${to.address}:${to.port}`));
    }
    const series = new TimeSeries(metrics, opts.seriesIntervalMs);
    series.start();
    stops.push(() => series.stop());

    if (emf) {
      const flush = setInterval(() => emf.flush(), 60_000);
      flush.unref();
      stops.push(() => {
        clearInterval(flush);
        emf.flush();
      });
    }

    const adminToken = await loadOperatorToken(config.dataDir, config.adminToken);
    let stopping = false;
    const admin = new AdminServer({
      metrics,
      series,
      ...(trace ? { trace } : {}),
      ...(side.operator ?? {}),
      gateway,
      gate,
      onShed: (reason) => metrics.sipShed.inc({ reason }),
      retryAfterSeconds: RETRY_AFTER_SECONDS,
      userChanged: (user, change) => coalescer.userChanged(user, change),
      // Liveness: the SIP listeners are up and the edge is not stopping (the NLB's check).
      live: () => ({ ok: !stopping, detail: { sip, msrp: msrpPort, mode: config.handlerMode } }),
      ready: () => runReadiness(side.checks),
      state: async () => ({
        ...((await metrics.storeState()) ?? {}),
        msrpSessions: sipApp.openSessions,
        queues: await side.queueDepths().catch(() => ({})),
        mode: config.handlerMode,
        flowTrace: config.flowTrace,
      }),
      adminToken,
      edgeId,
      controlToken: config.controlToken,
    });
    const adminPort = await bindOrName(() => admin.start(config.adminListen, config.adminPort), config.adminListen, {
      ADMIN_PORT: config.adminPort,
    });
    stops.push(() => admin.stop());
    // Stopping: liveness fails first, so the NLB stops sending new flows while the rest closes.
    stops.push(() => {
      stopping = true;
    });

    return {
      ports: {
        ...sip,
        msrp: msrpPort,
        ...(msrp.tlsPort !== undefined ? { msrps: msrp.tlsPort } : {}),
        admin: adminPort,
      },
      metrics,
      adminToken,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

function peerOf(source: Source): string {
  return `${source.transport} ${source.remoteAddress}:${source.remotePort}`;
}

/** Bytes under the data folder (the local store's size on disk). */
async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (!entry.isFile()) continue;
    total += (await stat(join(entry.parentPath, entry.name)).catch(() => undefined))?.size ?? 0;
  }
  return total;
}

/**
 * Bind, and when a port is taken say which setting asked for it: `SIP_PORT: port 5060 on
 * 127.0.0.1 is in use by another process` instead of a bare EADDRINUSE.
 */
async function bindOrName<T>(bind: () => Promise<T>, address: string, ports: Record<string, number>): Promise<T> {
  try {
    return await bind();
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { port?: number };
    if (e.code !== 'EADDRINUSE' && e.code !== 'EACCES') throw err;
    const names = Object.entries(ports).filter(([, port]) => port === e.port);
    const variable = names.length > 0 ? names.map(([name]) => name).join(' / ') : Object.keys(ports).join(' / ');
    const why = e.code === 'EADDRINUSE' ? 'is in use by another process' : 'may not be bound by this user';
    throw new ConfigError(variable, `port ${e.port ?? '?'} on ${address} ${why}`);
  }
}

/** The SIP transports' advertised sent-by addresses (SIP_ADVERTISE_UDP/TCP/TLS/WS). */
function sipAdvertised(config: Config): NonNullable<TransportConfig['advertised']> {
  const { udp, tcp, tls, ws } = config.advertiseTransports;
  return { ...(udp ? { udp } : {}), ...(tcp ? { tcp } : {}), ...(tls ? { tls } : {}), ...(ws ? { ws } : {}) };
}

/**
 * The Contact for a request that came over `transport` (RFC 3261 §8.1.1.8, §12.1.1): the address
 * the client reaches that transport at (SIP_ADVERTISE_<transport>, e.g. the NLB's listener),
 * else the advertised host and the local port. TLS, also when a load balancer ended it before
 * this process (SIP_TLS_OFFLOAD_PORT), gets sips: (RFC 3261 §26.2.2; RFC 5630 §3.1.3).
 */
export function contactUri(config: Config, transport: TransportName, localPort: number): string {
  const advertised = config.advertiseTransports[transport === 'wss' ? 'tls' : transport];
  const host = advertised?.host ?? config.advertise;
  const port = advertised?.port ?? localPort;
  const scheme = transport === 'tls' || transport === 'wss' ? 'sips' : 'sip';
  return `<${scheme}:pf@${host.includes(':') ? `[${host}]` : host}:${port};transport=${transport}>`;
}
