/**
 * The edge's composition root: SIP transports and transactions, the MSRP listener, the admin and
 * control HTTP port, and the handlers behind them: in the local default, in this process over
 * the SQLite store in DATA_DIR (./local-side.ts); in AWS (HANDLER_MODE=lambda), the deployed
 * functions (./aws-side.ts). Each side is imported only in its mode: the container never loads
 * the native SQLite module, the local default never loads the AWS SDK. `startEdge`
 * is what `npm start`, the demo, the end-to-end tests and the Fargate container run.
 */
import { mkdir } from 'node:fs/promises';
import { ConfigError, controlDestinations, makeTrustCheck, type Config } from '#shared/config.ts';
import { cutListToFit } from '#shared/deferred/list-codec.ts';
import { defaultPolicy, type Policy } from '#shared/deferred/policy.ts';
import type { ChangeFeed, EdgeGateway, HandlerInvoker } from '#shared/ports.ts';
import { TransportLayer, type Source, type TransportName } from '#shared/sip/transport/index.ts';
import type { TransportConfig } from '#shared/sip/transport/types.ts';
import { TransactionLayer, type Timers } from '#shared/sip/transaction/index.ts';
import { MsrpListener, type MsrpRelayOptions } from '#shared/msrp/listener.ts';
import { edgeSessionOwner } from '#shared/msrp/session-owner.ts';
import type { SqsBatchHandler } from '#shared/adapters/sqs/poller.ts';
import type { MetricBatch } from '#shared/observability/recorder.ts';
import { AdminServer, type AdminDeps } from './admin-server.ts';
import { ChangeCoalescer } from './change-coalescer.ts';
import { Counters } from './counters.ts';
import { resolveEdgeId } from './edge-id.ts';
import { InDialogSender } from './in-dialog-sender.ts';
import { SipApp } from './sip-app.ts';
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
  admin: number;
}

export interface RunningEdge {
  ports: BoundPorts;
  counters: Counters;
  stop(): Promise<void>;
}

/** What stands behind the edge: who decides, the operator routes that need a store, the outbound queue. */
export interface HandlerSide {
  invoker: HandlerInvoker;
  operator?: Pick<AdminDeps, 'deposit' | 'listUser'>;
  /** Consume the queue where the handlers put the IMDN failure reports this edge sends. */
  consumeOutbound(handler: SqsBatchHandler): { stop(): Promise<void> };
}

export async function startEdge(opts: EdgeOptions): Promise<RunningEdge> {
  const { config } = opts;
  const log: LogFn = opts.log ?? (() => undefined);
  const policy = defaultPolicy({
    retentionSeconds: config.retentionSeconds,
    deliveryLeaseSeconds: config.deliveryLeaseSeconds,
    ...opts.policy,
  });
  const counters = new Counters();
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
        allowDestination: opts.allowDestination ?? controlDestinations(config),
        // The SIP/IP Core is not held to the per-source limit and keeps connecting under a flood.
        isKnownPeer: makeTrustCheck(config.trustedPeers),
      },
      log,
    );
    const sip = await transport.start();
    stops.push(() => transport.stop());
    const transactions = new TransactionLayer(transport, opts.timers);
    stops.push(() => transactions.stop());

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
    const msrpPort = await msrp.start();
    stops.push(() => msrp.stop());

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
        counters.inc('subscriptions_ended_total', { cause: String(status) });
        await invoker?.subscribe({ type: 'notify-failed', user: sub.user, dialogId: sub.dialogId, status });
      },
      onSent: (method, status) => {
        counters.inc('sip_requests_sent_total', { method, class: `${Math.floor(status / 100)}xx` });
        if (method === 'NOTIFY') emf?.notify(status);
      },
    });

    let app: SipApp | undefined;
    const gateway: EdgeGateway = {
      send: async (_edgeId, spec) => {
        const outcome = await sender.send(spec);
        if (spec.method === 'BYE')
          app?.sessionEnded(`${spec.dialog.callId};${spec.dialog.localTag};${spec.dialog.remoteTag}`);
        return outcome;
      },
      deliver: (_edgeId, sessionId, message) => msrp.deliver(sessionId, message),
      closeSession: async (_edgeId, sessionId) => msrp.closeSession(sessionId),
    };
    // List changes become NOTIFYs for the subscriptions this task holds, at most one a second.
    const coalescer = new ChangeCoalescer(async (user) => {
      const result = await invoker!.subscribe({ type: 'user-changed', user, edgeId });
      await Promise.all((result.requests ?? []).map((r) => sender.send(r).catch(() => undefined)));
    }, policy.notifyMinIntervalMs);
    stops.push(() => coalescer.stop());
    const changes: ChangeFeed = { userChanged: (user) => coalescer.userChanged(user) };

    const side: HandlerSide =
      local && store
        ? local.startLocalSide({
            backend: store,
            config,
            policy,
            gateway,
            changes,
            msrpPort,
            counters,
            log,
            stops,
            ...(opts.sweepIntervalMs !== undefined ? { sweepIntervalMs: opts.sweepIntervalMs } : {}),
          })
        : aws!.startAwsSide(config, log, stops);
    invoker = side.invoker;

    // IMDN failure reports, queued by invite and expire (which have no SIP socket), in both
    // modes; any edge task may send one, as it is outside any dialog.
    const outbound = side.consumeOutbound(
      makeFailureImdnQueueHandler({
        send: makeFailureImdnSender({
          transactions,
          domain: config.sipDomain,
          ...(config.outboundProxy ? { outboundProxy: config.outboundProxy } : {}),
          log,
          onSent: (status) => counters.inc('imdn_failure_reports_total', { status: String(status) }),
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
      maxInFlight: config.maxInFlight,
      ackWaitMs: 64 * (opts.timers?.t1 ?? 500),
      onRequest: (method) => {
        counters.inc('sip_requests_total', { method });
        emf?.sipRequest(method);
      },
      onResponse: (method, status) => {
        counters.inc('sip_responses_total', { method, class: `${Math.floor(status / 100)}xx` });
        emf?.sipResponse(method, status);
      },
      log,
    });
    const sipApp = app;
    msrp.on('closed', (sessionId: string) => sipApp.msrpSessionClosed(sessionId));
    counters.gauge('msrp_sessions_open', () => sipApp.openSessions);
    counters.gauge('sip_server_transactions', () => transactions.size.server);
    counters.gauge('sip_client_transactions', () => transactions.size.client);
    counters.gauge('process_resident_memory_bytes', () => process.memoryUsage.rss());
    counters.gauge('nodejs_heap_used_bytes', () => process.memoryUsage().heapUsed);

    if (emf) {
      const flush = setInterval(() => emf.flush(), 60_000);
      flush.unref();
      stops.push(() => {
        clearInterval(flush);
        emf.flush();
      });
    }

    const admin = new AdminServer({
      counters,
      ...(side.operator ?? {}),
      gateway,
      userChanged: (user) => coalescer.userChanged(user),
      health: () => ({ ok: true, detail: { sip, msrp: msrpPort, mode: config.handlerMode } }),
      edgeId,
      controlToken: config.controlToken,
    });
    const adminPort = await admin.start(config.adminListen, config.adminPort);
    stops.push(() => admin.stop());

    return {
      ports: { ...sip, msrp: msrpPort, admin: adminPort },
      counters,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
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
