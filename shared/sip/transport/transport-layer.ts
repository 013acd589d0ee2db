/**
 * The SIP transport layer (RFC 3261 §18): UDP, TCP, TLS and WebSocket (RFC 7118) listeners,
 * the connections they hold, and sending requests and responses to the right place.
 * Nothing thrown inside a socket handler escapes: bad input becomes an error response or a log line.
 */
import dgram from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { lookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { ownCopy, parseMessage, serializeMessage } from '../messages/index.ts';
import type { SipMessage, SipRequest, SipResponse } from '../messages/index.ts';
import { Connection } from './connection.ts';
import type { ConnectionEvents } from './connection.ts';
import { readMessage, rejectHead } from './inbound.ts';
import type { InboundLimits, InboundOutcome } from './inbound.ts';
import { responseDestination } from './response-destination.ts';
import { SocketConnection, UNSENT_MESSAGES, connectSocket } from './socket-connection.ts';
import { HANDLING_SLICE_MS, TRANSPORT_DEFAULTS, defaultPort } from './types.ts';
import type { LogFn, Source, Target, TransportConfig, TransportName } from './types.ts';
import { plainAddress, stampTopVia } from './via-received.ts';
import { WsConnection } from './ws-connection.ts';
import { offersSip, pickSip, refuseHttp, refuseUpgrade } from './ws-handshake.ts';

export interface BoundPorts {
  udp?: number;
  tcp?: number;
  tls?: number;
  /** The plain TCP listener for TLS a load balancer ended (`TransportConfig.tlsOffloadPort`). */
  tlsOffload?: number;
  ws?: number;
  wss?: number;
}

export type MessageListener = (msg: SipMessage, source: Source) => void;

interface Closable {
  close(): Promise<void>;
}

const noLog: LogFn = () => {};

/** A datagram read from the UDP socket, waiting to be handled. */
interface QueuedDatagram {
  data: Buffer;
  address: string;
  port: number;
  readAt: number;
}

export class TransportLayer {
  private readonly config: TransportConfig;
  private readonly log: LogFn;
  private readonly limits: {
    maxBytes: number;
    maxHeaders: number;
    maxConnections: number;
    perSource: number;
    reserve: number;
    messageMs: number;
    idleMs: number;
    connectMs: number;
    receiveWaitMs: number;
  };
  private readonly listeners: MessageListener[] = [];
  private readonly sentListeners: ((
    msg: SipMessage,
    to: { transport: TransportName; address: string; port: number },
  ) => void)[] = [];
  private readonly closedListeners: ((connectionId: string) => void)[] = [];
  private readonly connections = new Map<string, Connection>();
  private readonly connecting = new Map<string, Promise<Connection>>();
  private readonly closables: Closable[] = [];
  private udpSocket: dgram.Socket | undefined;
  private wsServer: WebSocketServer | undefined;
  private bound: BoundPorts = {};
  private nextConnection = 1;
  private running = false;
  /** start() has bound every listener: the ports in `bound` are final. */
  private started = false;
  private readonly sentByOf = new Map<TransportName, Readonly<{ host: string; port: number }>>();
  /** Datagrams read and not yet handled, oldest first from `udpHead`, each with when it was read. */
  private udpQueue: (QueuedDatagram | undefined)[] = [];
  private udpHead = 0;
  private udpQueuedBytes = 0;
  private udpDraining = false;
  private udpOverflowing = false;
  /** When the datagram being handled now was read (undefined: none is). */
  private handlingReadAt: number | undefined;

  private readonly connectionEvents: ConnectionEvents = {
    // RFC 7118 §5.1: a WebSocket message bounds its SIP message like a datagram does.
    message: (conn, bytes) => this.receive(bytes, conn.source(), conn.transport === 'ws' || conn.transport === 'wss'),
    framingError: (conn, head, reason, oversize) => this.onFramingError(conn, head, reason, oversize),
    closed: (conn) => {
      this.connections.delete(conn.id);
      this.log('debug', 'connection closed', { connectionId: conn.id });
      for (const cb of this.closedListeners) {
        try {
          cb(conn.id);
        } catch (err) {
          this.log('error', 'connection-closed observer failed', { error: String(err) });
        }
      }
    },
  };

  /** What readMessage is given for each message (one object per framing, not one per message). */
  private readonly datagramLimits: InboundLimits;
  private readonly streamLimits: InboundLimits;

  constructor(config: TransportConfig, log?: LogFn) {
    this.config = config;
    this.log = log ?? noLog;
    this.limits = {
      maxBytes: config.maxMessageBytes ?? TRANSPORT_DEFAULTS.maxMessageBytes,
      maxHeaders: config.maxHeaders ?? TRANSPORT_DEFAULTS.maxHeaders,
      maxConnections: config.maxConnections ?? TRANSPORT_DEFAULTS.maxConnections,
      perSource: config.maxConnectionsPerSource ?? TRANSPORT_DEFAULTS.maxConnectionsPerSource,
      reserve: config.knownPeerReserve ?? TRANSPORT_DEFAULTS.knownPeerReserve,
      messageMs: config.messageTimeoutMs ?? TRANSPORT_DEFAULTS.messageTimeoutMs,
      idleMs: config.idleTimeoutMs ?? TRANSPORT_DEFAULTS.idleTimeoutMs,
      connectMs: config.connectTimeoutMs ?? TRANSPORT_DEFAULTS.connectTimeoutMs,
      receiveWaitMs: config.maxReceiveWaitMs ?? TRANSPORT_DEFAULTS.maxReceiveWaitMs,
    };
    const inbound = {
      maxBytes: this.limits.maxBytes,
      maxHeaders: this.limits.maxHeaders,
      supportedOptionTags: config.supportedOptionTags,
    };
    this.datagramLimits = { ...inbound, datagram: true };
    this.streamLimits = { ...inbound, datagram: false };
  }

  /** Bind every configured listener; resolves with the ports actually bound. */
  async start(): Promise<BoundPorts> {
    const c = this.config;
    if ((c.tlsPort !== undefined || c.wssPort !== undefined) && !c.tls) {
      throw new Error('TransportConfig.tls (key and cert) is required when tlsPort or wssPort is set');
    }
    this.running = true;
    try {
      if (c.udpPort !== undefined) this.bound.udp = await this.startUdp(c.udpPort);
      if (c.tcpPort !== undefined) {
        const server = net.createServer((socket) => this.acceptStream('tcp', socket));
        this.bound.tcp = await this.listen(server, c.tcpPort, 'tcp');
      }
      if (c.tlsOffloadPort !== undefined) {
        const server = net.createServer((socket) => this.acceptStream('tls', socket));
        this.bound.tlsOffload = await this.listen(server, c.tlsOffloadPort, 'tls');
      }
      if (c.tlsPort !== undefined && c.tls) {
        const server = tls.createServer({ key: c.tls.key, cert: c.tls.cert }, (socket) =>
          this.acceptStream('tls', socket),
        );
        server.on('tlsClientError', (err) => this.log('debug', 'TLS handshake failed', { error: err.message }));
        this.bound.tls = await this.listen(server, c.tlsPort, 'tls');
      }
      if (c.wsPort !== undefined) {
        const server = http.createServer(refuseHttp);
        server.on('upgrade', (req, socket, head) => this.onUpgrade('ws', req, socket, head));
        this.bound.ws = await this.listen(server, c.wsPort, 'ws');
      }
      if (c.wssPort !== undefined && c.tls) {
        const server = https.createServer({ key: c.tls.key, cert: c.tls.cert }, refuseHttp);
        server.on('upgrade', (req, socket, head) => this.onUpgrade('wss', req, socket, head));
        this.bound.wss = await this.listen(server, c.wssPort, 'wss');
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.sentByOf.clear();
    this.started = true;
    this.log('info', 'SIP transports listening', { host: c.host, ...this.bound });
    return { ...this.bound };
  }

  /** Close listeners and every connection. */
  async stop(): Promise<void> {
    this.running = false;
    this.started = false;
    this.sentByOf.clear();
    this.udpQueue = [];
    this.udpHead = 0;
    this.udpQueuedBytes = 0;
    for (const conn of [...this.connections.values()]) conn.destroy();
    this.connections.clear();
    const closing = this.closables.splice(0).map((c) => c.close());
    if (this.udpSocket) {
      const socket = this.udpSocket;
      this.udpSocket = undefined;
      closing.push(new Promise<void>((resolve) => socket.close(() => resolve())));
    }
    this.wsServer?.close();
    this.wsServer = undefined;
    await Promise.allSettled(closing);
  }

  /** Every message this layer sent, after it left (observers: the operator's flow ladder). */
  onSent(cb: (msg: SipMessage, to: { transport: TransportName; address: string; port: number }) => void): void {
    this.sentListeners.push(cb);
  }

  private sent(msg: SipMessage, transport: TransportName, address: string, port: number): void {
    for (const cb of this.sentListeners) {
      try {
        cb(msg, { transport, address, port });
      } catch (err) {
        this.log('error', 'sent-message observer failed', { error: String(err) });
      }
    }
  }

  /**
   * A stream connection closed (either side, or reset): the transactions whose request went over it
   * learn that no answer will come on it (RFC 3261 §18.4).
   */
  onConnectionClosed(cb: (connectionId: string) => void): void {
    this.closedListeners.push(cb);
  }

  /** Well-formed messages only; requests already carry received/rport in their top Via. */
  onMessage(cb: MessageListener): void {
    this.listeners.push(cb);
  }

  get ports(): BoundPorts {
    return { ...this.bound };
  }

  connectionOpen(connectionId: string): boolean {
    return this.connections.get(connectionId)?.isOpen() ?? false;
  }

  /** Number of open stream connections (both directions). */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** The sent-by to put in our Via for a request sent over `transport` (RFC 3261 §18.1.1). */
  sentBy(transport: TransportName): Readonly<{ host: string; port: number }> {
    // Asked for at every request sent; fixed once the listeners are bound (net.isIPv6 is a regex).
    const known = this.sentByOf.get(transport);
    if (known) return known;
    const advertised = this.config.advertised?.[transport];
    const host = advertised?.host ?? this.config.advertisedHost ?? this.config.host;
    const port = advertised?.port ?? this.bound[transport === 'udp' ? 'udp' : transport] ?? defaultPort(transport);
    const sentBy = Object.freeze({ host: net.isIPv6(host) ? `[${host}]` : host, port });
    if (this.started) this.sentByOf.set(transport, sentBy);
    return sentBy;
  }

  /**
   * Send a response where RFC 3261 §18.2.2 / RFC 3581 §4 say (see response-destination.ts).
   * Rejects when it could not be sent, so the transaction can report a transport error (§17.2.4).
   * Resolves with the response as it left, for `resendResponse`.
   */
  sendResponse(res: SipResponse, source: Source): Promise<SentResponse> {
    try {
      const dest = responseDestination(res, source);
      // Back to the request's own source needs no permission (nor a promise turn to ask);
      // anywhere else (maddr) does.
      if (plainAddress(dest.address) === plainAddress(source.remoteAddress)) {
        return this.sendResponseTo(res, source, dest, dest.address);
      }
      return this.resolveAllowed(dest.address).then((address) => this.sendResponseTo(res, source, dest, address));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private sendResponseTo(
    res: SipResponse,
    source: Source,
    dest: ReturnType<typeof responseDestination>,
    address: string,
  ): Promise<SentResponse> {
    const sent: SentResponse = {
      status: res.status,
      bytes: serializeMessage(res),
      transport: dest.transport,
      // The source's own string when it is the same address (one string per transaction, not two).
      address: address === source.remoteAddress ? source.remoteAddress : ownCopy(address),
      port: dest.port,
      ...(dest.connectionId !== undefined ? { connectionId: dest.connectionId } : {}),
    };
    return this.deliverResponse(sent, res).then(() => sent);
  }

  /**
   * The same response again, to the same place (a server transaction answering a retransmitted
   * request, RFC 3261 §17.2.1, §17.2.2): the bytes that left the first time, not rebuilt.
   */
  resendResponse(sent: SentResponse): Promise<void> {
    return this.deliverResponse(sent);
  }

  private deliverResponse(sent: SentResponse, res?: SipResponse): Promise<void> {
    const { transport, address, port, bytes } = sent;
    // Observers (the flow trace) read a message; a resent one is read back from its bytes.
    const observed = () => res ?? parsedSent(bytes);
    if (transport === 'udp') {
      const sending = this.sendDatagram(bytes, address, port);
      if (this.sentListeners.length === 0) return sending;
      return sending.then(() => this.sent(observed(), 'udp', address, port));
    }
    return this.deliverOverStream(sent, transport, observed);
  }

  private async deliverOverStream(
    sent: SentResponse,
    transport: Exclude<TransportName, 'udp'>,
    observed: () => SipMessage,
  ): Promise<void> {
    const { address, port, bytes } = sent;
    const existing = sent.connectionId === undefined ? undefined : this.connections.get(sent.connectionId);
    if (existing?.isOpen()) {
      await existing.send(bytes);
      if (this.sentListeners.length > 0) this.sent(observed(), transport, existing.remoteAddress, port);
      return;
    }
    if (transport === 'ws' || transport === 'wss') {
      // RFC 7118 §5: the server cannot open a WebSocket connection back to a client.
      throw new Error(`WebSocket connection ${sent.connectionId ?? '(none)'} is closed; the response cannot be sent`);
    }
    const conn = await this.connectTo(transport, await this.resolveAllowed(address), port, address);
    await conn.send(bytes);
    if (this.sentListeners.length > 0) this.sent(observed(), transport, conn.remoteAddress, port);
  }

  /**
   * Send a request: over `target.connectionId` when open, else over an open connection to the same
   * address and port, else a new TCP/TLS connection or a UDP datagram. WebSocket: existing only.
   * A destination refused by `allowDestination` fails before anything is sent. `bytes`: the
   * request serialized already (a client transaction's, sent again on each retransmission).
   */
  async sendRequest(req: SipRequest, target: Target, bytes: Buffer = serializeMessage(req)): Promise<Source> {
    const address = await this.resolveAllowed(target.address);
    if (target.transport === 'udp') {
      await this.sendDatagram(bytes, address, target.port);
      this.sent(req, 'udp', address, target.port);
      return {
        transport: 'udp',
        remoteAddress: address,
        remotePort: target.port,
        localAddress: this.config.host,
        localPort: this.bound.udp ?? 0,
      };
    }
    let conn = await this.streamFor({ ...target, address }, target.address);
    this.assertAllowed(conn.remoteAddress);
    try {
      await conn.send(bytes);
    } catch (err) {
      // A reused connection the peer had already reset (its close not yet seen here) is no
      // connection: open a new one to the same hop (§18.1.1). WebSocket: none can be opened.
      if (!conn.outbound || (target.transport !== 'tcp' && target.transport !== 'tls')) throw err;
      conn.destroy();
      conn = await this.connectTo(target.transport, address, target.port, target.address);
      await conn.send(bytes);
    }
    this.sent(req, target.transport, conn.remoteAddress, target.port);
    return conn.source();
  }

  // ---- receiving ---------------------------------------------------------------------------

  private receive(bytes: Buffer, source: Source, datagram: boolean): void {
    try {
      this.act(readMessage(bytes, datagram ? this.datagramLimits : this.streamLimits), source);
    } catch (err) {
      this.log('error', 'failed on received bytes', { error: String(err), ...source });
    }
  }

  private act(outcome: InboundOutcome, source: Source, then?: () => void): void {
    if (outcome.action === 'deliver') {
      const msg = outcome.message;
      // RFC 3261 §18.2.1 and RFC 3581 §4: note where the request really came from.
      if (msg.kind === 'request') stampTopVia(msg, source);
      this.emit(msg, source);
      then?.();
      return;
    }
    if (outcome.action === 'drop') {
      this.log('warn', 'dropped a received message', { reason: outcome.reason, ...source });
      then?.();
      return;
    }
    const res = outcome.response;
    stampTopVia(res, source);
    this.log('info', 'rejected a malformed request', { status: res.status, reason: res.reason, ...source });
    this.sendResponse(res, source)
      .catch((err: unknown) => this.log('warn', 'could not send an error response', { error: String(err), ...source }))
      .finally(() => then?.());
  }

  private emit(msg: SipMessage, source: Source): void {
    if (this.listeners.length === 0) this.log('debug', 'no listener for a received message', source);
    for (const listener of this.listeners) {
      try {
        listener(msg, source);
      } catch (err) {
        this.log('error', 'message listener threw', { error: String(err), ...source });
      }
    }
  }

  /** RFC 3261 §18.3: a stream whose framing is lost cannot be resynchronised: answer, then close. */
  private onFramingError(conn: Connection, head: Buffer, reason: string, oversize: boolean): void {
    let outcome: InboundOutcome;
    try {
      outcome = oversize ? rejectHead(head, 513, reason) : rejectHead(head, 400, reason);
    } catch (err) {
      outcome = { action: 'drop', reason: `${reason} (${String(err)})` };
    }
    this.log('warn', 'stream framing error; closing the connection', { reason, connectionId: conn.id });
    if (outcome.action === 'deliver') outcome = { action: 'drop', reason };
    try {
      this.act(outcome, conn.source(), () => conn.close());
    } catch (err) {
      this.log('error', 'failed to answer a framing error', { error: String(err), connectionId: conn.id });
      conn.close();
    }
  }

  // ---- listeners ---------------------------------------------------------------------------

  /**
   * The UDP socket's receive buffer as the kernel granted it (Linux reports twice the size it
   * accepted, at most twice net.core.rmem_max); undefined when UDP is not bound.
   */
  get udpReceiveBuffer(): number | undefined {
    return this.udpSocket?.getRecvBufferSize();
  }

  private startUdp(port: number): Promise<number> {
    const socket = dgram.createSocket({
      type: net.isIPv6(this.config.host) ? 'udp6' : 'udp4',
      lookup: literalLookup,
      recvBufferSize: this.config.udpReceiveBufferBytes ?? TRANSPORT_DEFAULTS.udpReceiveBufferBytes,
    });
    this.udpSocket = socket;
    socket.on('message', (data, rinfo) => this.queueDatagram(data, rinfo));
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, this.config.host, () => {
        socket.off('error', reject);
        socket.on('error', (err) => this.log('error', 'UDP socket error', { error: err.message }));
        resolve(socket.address().port);
      });
    });
  }

  /**
   * How long handling runs before the loop goes back to reading the socket. libuv reads at most
   * 32 datagrams from a socket per turn (uv__udp_io); handling them all in the turn that read them
   * would leave the rest waiting in the kernel, where their wait cannot be seen and a full buffer
   * drops them unanswered (UDP has no flow control, RFC 3261 §18.1.1). Short slices keep the
   * reads ahead of the handling, so what waits, waits here, timed.
   */
  static readonly HANDLING_SLICE_MS = HANDLING_SLICE_MS;

  /**
   * Most bytes of datagrams read and not yet handled (a kernel receive buffer's worth several
   * times over); past it a datagram is dropped as the kernel would drop it, unanswered.
   */
  static readonly MAX_QUEUED_BYTES = 8 * 1024 * 1024;

  /**
   * How long the datagram being handled now waited between its read and its handling, in ms (0
   * when none is being handled: stream messages are handled as they are read). The queueing
   * delay a request sees here is what makes its answer late: past T1 the client retransmits
   * (RFC 3261 §17.1.2.2), adding load. A burst the service absorbs waits a few milliseconds; a
   * rate above its capacity makes the wait grow. Cheap to read, for load shedding above this layer.
   */
  get receiveDelayMs(): number {
    return this.handlingReadAt === undefined ? 0 : performance.now() - this.handlingReadAt;
  }

  private queueDatagram(data: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.udpQueuedBytes + data.length > TransportLayer.MAX_QUEUED_BYTES) {
      // Once per episode: a flood would otherwise log at its own rate.
      if (!this.udpOverflowing) this.log('warn', 'UDP receive queue full; dropping datagrams until it drains');
      this.udpOverflowing = true;
      return;
    }
    this.udpQueuedBytes += data.length;
    this.udpQueue.push({ data, address: rinfo.address, port: rinfo.port, readAt: performance.now() });
    if (!this.udpDraining) {
      this.udpDraining = true;
      // The check phase runs after this turn's reads (poll phase).
      setImmediate(this.drainDatagrams);
    }
  }

  /** Handle queued datagrams, oldest first, for one slice; the rest after the next turn's reads. */
  private readonly drainDatagrams = (): void => {
    let stale = 0;
    try {
      let now = performance.now();
      const until = now + TransportLayer.HANDLING_SLICE_MS;
      while (this.udpHead < this.udpQueue.length) {
        const d = this.udpQueue[this.udpHead]!;
        this.udpQueue[this.udpHead++] = undefined;
        this.udpQueuedBytes -= d.data.length;
        if (now - d.readAt > this.limits.receiveWaitMs) {
          stale++;
          continue;
        }
        this.handlingReadAt = d.readAt;
        const source: Source = {
          transport: 'udp',
          remoteAddress: d.address,
          remotePort: d.port,
          localAddress: this.config.host,
          localPort: this.bound.udp ?? 0,
        };
        try {
          this.receive(d.data, source, true);
        } finally {
          this.handlingReadAt = undefined;
        }
        now = performance.now();
        if (now >= until) break;
      }
    } finally {
      // Whatever a handler did (even throw past receive's guard), the queue keeps draining.
      if (this.udpHead >= this.udpQueue.length) {
        this.udpQueue = [];
        this.udpHead = 0;
        this.udpDraining = false;
        this.udpOverflowing = false;
      } else {
        if (this.udpHead > 1024 && this.udpHead * 2 > this.udpQueue.length) {
          this.udpQueue = this.udpQueue.slice(this.udpHead);
          this.udpHead = 0;
        }
        setImmediate(this.drainDatagrams);
      }
    }
    if (stale > 0) this.log('warn', 'UDP datagrams dropped unhandled after waiting past T1', { count: stale });
  };

  private listen(server: net.Server, port: number, name: TransportName): Promise<number> {
    server.on('error', (err) => this.log('error', `${name} listener error`, { error: err.message }));
    this.closables.push({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.config.host, port }, () => {
        server.off('error', reject);
        const address = server.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });
  }

  /**
   * Why a new inbound connection from `address` is refused, or undefined: the total limit (known
   * peers may use the last `reserve` slots), and the per-source limit for unknown sources.
   */
  private admissionProblem(address: string): string | undefined {
    if (!this.running) return 'stopping';
    const known = this.config.isKnownPeer?.(address) ?? false;
    // The reserve never takes more than half of a small limit.
    const reserve = Math.min(this.limits.reserve, Math.floor(this.limits.maxConnections / 2));
    const room = known ? this.limits.maxConnections : this.limits.maxConnections - reserve;
    if (this.connections.size >= room) return 'connection limit reached';
    if (known) return undefined;
    let fromSource = 0;
    for (const conn of this.connections.values()) {
      if (!conn.outbound && conn.remoteAddress === address && ++fromSource >= this.limits.perSource) {
        return 'per-source connection limit reached';
      }
    }
    return undefined;
  }

  private acceptStream(transport: 'tcp' | 'tls', socket: net.Socket): void {
    socket.on('error', () => socket.destroy());
    const problem = this.admissionProblem(socket.remoteAddress ?? '');
    if (problem) {
      this.log('warn', `connection refused: ${problem}`, { transport, remoteAddress: socket.remoteAddress });
      socket.destroy();
      return;
    }
    this.register(
      new SocketConnection({
        id: this.newConnectionId(transport),
        transport,
        socket,
        outbound: false,
        maxMessageBytes: this.limits.maxBytes,
        messageTimeoutMs: this.limits.messageMs,
        idleTimeoutMs: this.limits.idleMs,
        events: this.connectionEvents,
      }),
    );
  }

  private onUpgrade(transport: 'ws' | 'wss', req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    if (!offersSip(req)) {
      // RFC 7118 §4.1: the handshake must negotiate the "sip" subprotocol.
      this.log('info', 'WebSocket handshake without the sip subprotocol refused', {
        remoteAddress: req.socket.remoteAddress,
      });
      refuseUpgrade(socket, 400, 'Bad Request', 'The "sip" WebSocket subprotocol is required (RFC 7118).');
      return;
    }
    const problem = this.admissionProblem(req.socket.remoteAddress ?? '');
    if (problem) {
      this.log('warn', `WebSocket refused: ${problem}`, { remoteAddress: req.socket.remoteAddress });
      refuseUpgrade(socket, 503, 'Service Unavailable', 'Too many connections.');
      return;
    }
    const server = this.websocketServer();
    server.handleUpgrade(req, socket, head, (ws) => {
      this.register(
        new WsConnection({
          id: this.newConnectionId(transport),
          transport,
          socket: ws,
          remoteAddress: req.socket.remoteAddress ?? '',
          remotePort: req.socket.remotePort ?? 0,
          localAddress: req.socket.localAddress ?? '',
          localPort: req.socket.localPort ?? 0,
          idleTimeoutMs: this.limits.idleMs,
          maxUnsentBytes: UNSENT_MESSAGES * this.limits.maxBytes,
          events: this.connectionEvents,
        }),
      );
    });
  }

  private websocketServer(): WebSocketServer {
    this.wsServer ??= new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      // Room above the limit so a slightly oversize message still gets its 513 (RFC 3261 §21.5.14).
      maxPayload: this.limits.maxBytes + 65_536,
      handleProtocols: pickSip,
    });
    return this.wsServer;
  }

  private register(conn: Connection): void {
    this.connections.set(conn.id, conn);
    this.log('debug', 'connection open', { ...conn.source(), outbound: conn.outbound });
  }

  private newConnectionId(transport: TransportName): string {
    return `${transport}-${this.nextConnection++}`;
  }

  // ---- sending -----------------------------------------------------------------------------

  /**
   * The IP address to send to, checked against `allowDestination`. A name is resolved first, so the
   * check sees (and the send uses) the address that would really be reached.
   */
  private async resolveAllowed(address: string): Promise<string> {
    const plain = plainAddress(address);
    if (net.isIP(plain) !== 0) {
      this.assertAllowed(plain);
      return plain;
    }
    const resolved = plainAddress((await lookup(plain)).address);
    this.assertAllowed(resolved);
    return resolved;
  }

  private assertAllowed(address: string): void {
    const allow = this.config.allowDestination;
    if (allow && !allow(plainAddress(address))) {
      this.log('warn', 'send refused by allowDestination', { address });
      throw new Error(`destination ${address} is not allowed`);
    }
  }

  private sendDatagram(bytes: Buffer, address: string, port: number): Promise<void> {
    const socket = this.udpSocket;
    if (!socket) return Promise.reject(new Error('the UDP transport is not started'));
    return new Promise((resolve, reject) => {
      try {
        socket.send(bytes, port, plainAddress(address), (err) => (err ? reject(err) : resolve()));
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /** `target.address` is already resolved; `name` is what the caller asked for (TLS server name). */
  private async streamFor(target: Target, name: string): Promise<Connection> {
    if (target.connectionId !== undefined) {
      const named = this.connections.get(target.connectionId);
      if (named?.isOpen()) return named;
    }
    const wanted = plainAddress(target.address);
    for (const conn of this.connections.values()) {
      if (
        conn.transport === target.transport &&
        conn.remotePort === target.port &&
        plainAddress(conn.remoteAddress) === wanted &&
        conn.isOpen()
      ) {
        return conn;
      }
    }
    if (target.transport === 'ws' || target.transport === 'wss') {
      throw new Error(`no open WebSocket connection to ${target.address}:${target.port}`);
    }
    if (target.transport !== 'tcp' && target.transport !== 'tls')
      throw new Error(`not a stream transport: ${target.transport}`);
    return this.connectTo(target.transport, target.address, target.port, name);
  }

  private connectTo(transport: 'tcp' | 'tls', address: string, port: number, name = address): Promise<Connection> {
    const key = `${transport}|${plainAddress(address)}|${port}`;
    const pending = this.connecting.get(key);
    if (pending) return pending;
    const attempt = this.openConnection(transport, plainAddress(address), port, name).finally(() =>
      this.connecting.delete(key),
    );
    this.connecting.set(key, attempt);
    return attempt;
  }

  private async openConnection(
    transport: 'tcp' | 'tls',
    address: string,
    port: number,
    name: string,
  ): Promise<Connection> {
    if (!this.running) throw new Error('the transport layer is stopped');
    if (this.connections.size >= this.limits.maxConnections) throw new Error('connection limit reached');
    const socket = await connectSocket({
      transport,
      address,
      port,
      name: plainAddress(name),
      ca: this.config.tls?.ca,
      timeoutMs: this.limits.connectMs,
    });
    if (!this.running) {
      socket.destroy();
      throw new Error('the transport layer is stopped');
    }
    const conn = new SocketConnection({
      id: this.newConnectionId(transport),
      transport,
      socket,
      outbound: true,
      maxMessageBytes: this.limits.maxBytes,
      idleTimeoutMs: this.limits.idleMs,
      events: this.connectionEvents,
    });
    this.register(conn);
    return conn;
  }
}

/**
 * A response as it left the transport: its bytes and where they went. A server transaction keeps
 * only this after its final response (RFC 3261 §17.2.2: Timer J, 64*T1 over UDP, only absorbs
 * retransmissions), not the parsed request and response.
 */
export interface SentResponse {
  readonly status: number;
  /**
   * Its bytes, as they left: sent again as they are. Tens of thousands of completed transactions
   * over UDP keep theirs outside V8's heap (CompletedResponses); elsewhere a transaction holds
   * them only until it ends (Timer J is zero over a stream; an INVITE's 2xx until its ACK).
   */
  readonly bytes: Buffer;
  readonly transport: TransportName;
  readonly address: string;
  readonly port: number;
  /** The stream connection it went over first (§18.2.2: "using the existing connection"). */
  readonly connectionId?: string;
}

/**
 * The UDP socket's address lookup: every datagram is sent to an IP address (resolveAllowed has
 * resolved any name), which is its own answer, given at once; dns.lookup would answer it on the
 * next tick, one deferral per datagram sent.
 */
function literalLookup(
  address: string,
  // Node 20 passes the socket's family as a number; its types say options.
  options: LookupOneOptions | number,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const literal = net.isIP(address);
  if (literal !== 0) callback(null, address, literal);
  else dnsLookup(address, typeof options === 'number' ? { family: options } : options, callback);
}

function parsedSent(bytes: Buffer): SipMessage {
  const parsed = parseMessage(bytes, { datagram: true });
  if (!parsed.ok) throw new Error(`a sent response does not parse back: ${parsed.reason}`);
  return parsed.message;
}
