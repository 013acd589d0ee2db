/**
 * The edge's composition root: SIP transports and transactions, the MSRP listener, the admin and
 * control HTTP port, and the handlers behind them: in the local default, in this process over
 * dynalite and local-aws-sqs; in AWS (HANDLER_MODE=lambda), the deployed functions. `startEdge`
 * is what `npm start`, the demo, the end-to-end tests and the Fargate container run.
 */
import { mkdir } from 'node:fs/promises';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { awsSqsClient, LONG_POLL_TIMEOUTS } from '#shared/adapters/clients.ts';
import { ConfigError, makeTrustCheck, serviceUri, type Config } from '#shared/config.ts';
import { defaultPolicy, type Policy } from '#shared/deferred/policy.ts';
import type { ChangeFeed, EdgeGateway, HandlerInvoker } from '#shared/ports.ts';
import { TransportLayer, type Source } from '#shared/sip/transport/index.ts';
import type { TransportConfig, TransportName } from '#shared/sip/transport/types.ts';
import { TransactionLayer, type Timers } from '#shared/sip/transaction/index.ts';
import { MsrpListener, type MsrpRelayOptions } from '#shared/msrp/listener.ts';
import { edgeSessionOwner } from '#shared/msrp/session-owner.ts';
import { startLocalBackend } from '#shared/adapters/local/index.ts';
import { SqsPoller } from '#shared/adapters/sqs/poller.ts';
import { LambdaInvoker } from '#shared/adapters/lambda-invoker.ts';
import { MetricBatch } from '#shared/observability/recorder.ts';
import { createMetrics } from '#shared/observability/powertools.ts';
import { AdminServer, type AdminDeps } from './admin-server.ts';
import { ChangeCoalescer } from './change-coalescer.ts';
import { Counters } from './counters.ts';
import { resolveEdgeId } from './edge-id.ts';
import { InDialogSender } from './in-dialog-sender.ts';
import { makeLocalHandlers } from './local-handlers.ts';
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
  /** Outbound allow-list for SIP sends (tests: loopback only). */
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
interface HandlerSide {
  invoker: HandlerInvoker;
  operator?: Pick<AdminDeps, 'deposit' | 'listUser'>;
  /** Where the handlers queue the IMDN failure reports this edge sends. */
  outbound: { client: SQSClient; queueUrl: string };
}

export async function startEdge(opts: EdgeOptions): Promise<RunningEdge> {
  const { config } = opts;
  const log: LogFn = opts.log ?? (() => undefined);
  const policy = defaultPolicy({ retentionSeconds: config.retentionSeconds, ...opts.policy });
  const counters = new Counters();
  // EMF metrics for CloudWatch (AWS mode): counted here, published once a minute.
  const emf = config.handlerMode === 'lambda' ? new MetricBatch(createMetrics()) : undefined;
  const stops: (() => Promise<void> | void)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await Promise.resolve(stop()).catch(() => undefined);
  };

  try {
    await mkdir(config.dataDir, { recursive: true });
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
        ...(opts.allowDestination ? { allowDestination: opts.allowDestination } : {}),
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

    const contactFor = (source: Source): string => contactUri(config, source.transport, source.localPort);

    // The handlers are reached through `invoker`, set once the handler side is up.
    let invoker: HandlerInvoker | undefined;
    const sender = new InDialogSender({
      transactions,
      contact: contactUri(config, sip.udp !== undefined ? 'udp' : 'tcp', sip.udp ?? sip.tcp ?? 5060),
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

    let side: HandlerSide;
    if (config.handlerMode === 'lambda' && config.functions) {
      // AWS: the functions decide; deliver and expire run from SQS and the TTL stream, not here.
      if (!config.outboundQueueUrl) throw new ConfigError('OUTBOUND_QUEUE_URL', 'required with HANDLER_MODE=lambda');
      // Region and credentials from the task role, as the Lambda client's.
      // The outbound queue is long-polled: the request timeout covers the 20 s wait.
      const sqs = awsSqsClient(LONG_POLL_TIMEOUTS);
      stops.push(() => sqs.destroy());
      side = {
        invoker: new LambdaInvoker({
          functions: config.functions,
          timeoutMs: config.handlerTimeoutMs,
          traceSampleRate: config.traceSampleRate,
        }),
        outbound: { client: sqs, queueUrl: config.outboundQueueUrl },
      };
    } else {
      side = await startLocalSide();
    }
    invoker = side.invoker;

    // IMDN failure reports, queued by invite and expire (which have no SIP socket), in both
    // modes; any edge task may send one, as it is outside any dialog.
    const outboundPoller = new SqsPoller({
      client: side.outbound.client,
      queueUrl: side.outbound.queueUrl,
      handler: makeFailureImdnQueueHandler({
        send: makeFailureImdnSender({
          transactions,
          domain: config.sipDomain,
          ...(config.outboundProxy ? { outboundProxy: config.outboundProxy } : {}),
          log,
          onSent: (status) => counters.inc('imdn_failure_reports_total', { status: String(status) }),
        }),
        log,
      }),
      // A batch's reports go out side by side; two loops keep the idle long polls cheap.
      concurrency: 2,
      onError: (err) => log('warn', 'outbound queue poll failed', { error: String(err) }),
    });
    outboundPoller.start();
    stops.push(() => outboundPoller.stop());

    async function startLocalSide(): Promise<HandlerSide> {
      // The local default's AWS: dynalite persisted under DATA_DIR, local-aws-sqs, both on loopback.
      const backend = await startLocalBackend({ dataDir: config.dataDir, host: '127.0.0.1' });
      stops.push(() => backend.stop());
      const { ports } = backend;
      const handlers = makeLocalHandlers({
        ports,
        edge: gateway,
        changes,
        policy,
        serviceUris: [serviceUri(config.sipDomain)],
        msrp: config.advertiseTransports.msrp ?? { host: config.advertise, port: msrpPort },
        warnAgent: config.sipDomain,
        counters: {
          delivered: (ms) => {
            counters.inc('retrievals_total');
            counters.observe('delivery_latency_ms', ms);
          },
          failed: (status) => counters.inc('delivery_failures_total', { status: String(status) }),
          expired: (n) => counters.inc('expiries_total', {}, n),
        },
      });

      const poller = new SqsPoller({
        client: backend.clients.sqs,
        queueUrl: backend.queues.queueUrl,
        handler: handlers.deliver,
        // Each job waits for its client's MSRP connection: many in flight, one job per batch.
        batchSize: 1,
        concurrency: 16,
        onError: (err) => log('warn', 'delivery queue poll failed', { error: String(err) }),
      });
      poller.start();
      stops.push(() => poller.stop());

      const sweepTimer = setInterval(() => {
        void handlers.sweep().catch((err: unknown) => log('warn', 'expiry sweep failed', { error: String(err) }));
      }, opts.sweepIntervalMs ?? 10_000);
      sweepTimer.unref();
      stops.push(() => clearInterval(sweepTimer));

      return {
        invoker: handlers.invoker,
        outbound: { client: backend.clients.sqs, queueUrl: backend.queues.outbound.queueUrl },
        operator: {
          deposit: async (json) => {
            const result = await handlers.depositHttp(json);
            if (result.statusCode === 201) counters.inc('deposits_total');
            return result;
          },
          listUser: async (user) => {
            const nowSec = Math.floor(Date.now() / 1000);
            const list = await ports.messages.list(user, nowSec, policy.notifyMaxEntries);
            return {
              user,
              total: await ports.messages.count(user, nowSec),
              entries: list.map(({ cpim: _payload, ...meta }) => meta),
            };
          },
        },
      };
    }

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
        if (method === 'MESSAGE' && status === 202) counters.inc('deposits_total');
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
