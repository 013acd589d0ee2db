/**
 * The service's MSRP side (RFC 4975, RFC 6135 setup:passive): a TCP listener that waits for the
 * client announced by an accepted INVITE, binds its connection to the session on its first SEND,
 * then delivers stored messages as chunked SENDs and reports the client's status per message.
 *
 * Status contract (shared/ports.ts EdgeGateway.deliver): 200 delivered; 408 no answer within the
 * transaction timeout, no connection within the connect timeout, or the connection closed;
 * 481 unknown session; any other status as the client sent it.
 *
 * With `relay`, a connection whose first request names a session held by another task (its id
 * names the owner, session-owner.ts) is piped, byte for byte, to that task's listener.
 */
import { lookup } from 'node:dns';
import { EventEmitter } from 'node:events';
import { BlockList, connect, createServer, isIP, type AddressInfo, type Server, type Socket } from 'node:net';
import { DEFAULT_CHUNK_BYTES, splitIntoChunks } from './chunking.ts';
import { MsrpConnection, NO_RESPONSE_STATUS } from './connection.ts';
import {
  randomIdent,
  newTransactionId,
  responseTo,
  serializeRequest,
  serializeResponse,
  wantsResponse,
  type MsrpMalformed,
  type MsrpParserLimits,
  type MsrpRequest,
} from './framing.ts';
import { decodeSessionOwner, type SessionOwner } from './session-owner.ts';
import { formatMsrpUri, isValidSessionId, msrpUriEquals, parseMsrpPath, parseMsrpUri, type MsrpUri } from './uri.ts';

/** Structural logger: console and the Powertools Logger both fit. */
export interface MsrpLog {
  debug(message: string, extra?: Record<string, unknown>): void;
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
}

export interface MsrpListenerOptions {
  /** Address to bind, e.g. 127.0.0.1 or 0.0.0.0. */
  host: string;
  /** Port to bind; 0 picks a free one (start() returns it). */
  port: number;
  /** Host written into our a=path when it differs from the bind address (NLB, NAT). */
  advertiseHost?: string;
  /** Port written into our a=path when it differs from the bound one (NLB listener port). */
  advertisePort?: number;
  /**
   * MSRP over TLS that a load balancer ends (RFC 4975 §15: msrps): the plain TCP port the
   * load balancer hands those connections to, and the host and port of its TLS listener, which
   * our msrps: a=path names for sessions set up over SIP over TLS.
   */
  tlsOffload?: { port: number; advertise: { host: string; port: number } };
  /** Body bytes per SEND chunk. Default 64 KiB. */
  chunkBytes?: number;
  /** Wait for the response to each chunk (RFC 4975 §7.1: 30 s). */
  transactionTimeoutMs?: number;
  /** Wait for the client to connect and bind after expect(); also how long an unbound connection may idle. 30 s. */
  connectTimeoutMs?: number;
  /** Simultaneous TCP connections; excess ones are dropped by the server. Default 4096. */
  maxConnections?: number;
  /** Parser limits for incoming frames. */
  limits?: MsrpParserLimits;
  /**
   * Hand connections for sessions held elsewhere to their owner (several tasks behind one load
   * balancer). Only owners whose address `allow` accepts are ever connected to, so the listener
   * is no open proxy; an owner equal to `self` (this listener as other tasks reach it) never is.
   */
  relay?: MsrpRelayOptions;
  log?: MsrpLog;
}

export interface MsrpRelayOptions {
  allow: (address: string) => boolean;
  self: SessionOwner;
}

export type MsrpSessionEndReason = 'connection-closed' | 'connect-timeout' | 'closed-locally' | 'listener-stopped';

export interface MsrpListenerEvents {
  /** The client's connection is bound to the session. */
  bound: [sessionId: string];
  /** The session can deliver no more: its connection closed, it never came, or it was closed here. */
  closed: [sessionId: string, reason: MsrpSessionEndReason];
}

export interface MsrpDelivery {
  /** Our id for the stored message, for logs; the MSRP Message-ID is fresh per delivery. */
  id: string;
  cpim: Uint8Array;
}

interface MsrpSession {
  id: string;
  localUri: MsrpUri;
  localPath: string;
  clientPath: string[];
  /**
   * Who may connect for it: the addresses of the host of the client's first path URI (empty
   * until a host name resolves), and for a direct client the INVITE's source address too.
   */
  admit: { pathAddresses: string[]; clientAddress?: string };
  phase: 'waiting' | 'bound' | 'ended';
  connection?: MsrpConnection;
  connectTimer?: NodeJS.Timeout;
  /** Woken when the session binds or ends. */
  waiters: Array<() => void>;
  /** Resolves when the session ends, so an in-flight chunk stops waiting. */
  ended: Promise<void>;
  markEnded: () => void;
  /** Tail of the delivery chain: deliveries run one at a time, in call order. */
  tail: Promise<unknown>;
}

interface ConnectionState {
  sessions: Set<MsrpSession>;
  idleTimer?: NodeJS.Timeout;
  /** With a relay: the bytes read so far, kept until the first frame is handled. */
  capture?: { received: Buffer[]; stop: () => void };
}

const SILENT_LOG: MsrpLog = { debug() {}, info() {}, warn() {} };

export class MsrpListener extends EventEmitter<MsrpListenerEvents> {
  private readonly opts: Required<
    Omit<MsrpListenerOptions, 'advertiseHost' | 'advertisePort' | 'limits' | 'relay' | 'log' | 'tlsOffload'>
  > &
    Pick<MsrpListenerOptions, 'advertiseHost' | 'advertisePort' | 'limits' | 'relay' | 'tlsOffload'>;
  private readonly log: MsrpLog;
  private readonly sessions = new Map<string, MsrpSession>();
  private readonly connections = new Map<MsrpConnection, ConnectionState>();
  /** Both sockets of every relayed connection, so stop() ends them. */
  private readonly relayed = new Set<Socket>();
  private server: Server | undefined;
  private offloadServer: Server | undefined;
  private boundPort: number | undefined;
  private boundOffloadPort: number | undefined;

  constructor(options: MsrpListenerOptions) {
    super();
    this.opts = {
      host: options.host,
      port: options.port,
      advertiseHost: options.advertiseHost,
      advertisePort: options.advertisePort,
      chunkBytes: options.chunkBytes ?? DEFAULT_CHUNK_BYTES,
      transactionTimeoutMs: options.transactionTimeoutMs ?? 30_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 30_000,
      maxConnections: options.maxConnections ?? 4096,
      limits: options.limits,
      relay: options.relay,
      tlsOffload: options.tlsOffload,
    };
    this.log = options.log ?? SILENT_LOG;
  }

  /** The port bound by start(), or the configured one before that. */
  get port(): number {
    return this.boundPort ?? this.opts.port;
  }

  /** The plain TCP port for MSRP over TLS a load balancer ended, once bound. */
  get tlsOffloadPort(): number | undefined {
    return this.boundOffloadPort;
  }

  /** Bind and listen; resolves with the bound port. */
  async start(): Promise<number> {
    if (this.server) return this.port;
    const port = await this.startMain();
    if (this.opts.tlsOffload) {
      // The same handling: what tells the two apart is the session's msrps: path (To-Path).
      const server = createServer((socket) => this.onSocket(socket));
      server.maxConnections = this.opts.maxConnections;
      this.offloadServer = server;
      this.boundOffloadPort = await new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.opts.tlsOffload!.port, this.opts.host, () => {
          server.off('error', reject);
          server.on('error', (err) => this.log.warn('msrp listener error', { error: err.message }));
          resolve((server.address() as AddressInfo).port);
        });
      });
    }
    return port;
  }

  private startMain(): Promise<number> {
    const server = createServer((socket) => this.onSocket(socket));
    server.maxConnections = this.opts.maxConnections;
    this.server = server;
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => {
        this.server = undefined;
        reject(err);
      };
      server.once('error', onError);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', onError);
        server.on('error', (err) => this.log.warn('msrp listener error', { error: err.message }));
        this.boundPort = (server.address() as AddressInfo).port;
        this.log.info('msrp listening', { host: this.opts.host, port: this.boundPort });
        resolve(this.boundPort);
      });
    });
  }

  /** End every session (waiting deliveries get 408), close every connection, stop listening. */
  async stop(): Promise<void> {
    for (const session of [...this.sessions.values()]) this.endSession(session, 'listener-stopped');
    this.sessions.clear();
    for (const connection of [...this.connections.keys()]) connection.close('listener stopped');
    for (const socket of [...this.relayed]) socket.destroy();
    for (const server of [this.server, this.offloadServer]) {
      if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    this.server = undefined;
    this.offloadServer = undefined;
  }

  /**
   * Our a=path for a session (RFC 4975 §6, §8.2): `msrp://host:port/<sessionId>;tcp`, or with
   * `secure` `msrps://` on the TLS listener of `tlsOffload` (§15: TLS for sessions whose SIP was).
   * Throws TypeError when the id is not a valid session-id (RFC 4975 §9), or for `secure` without
   * `tlsOffload`.
   */
  localPath(sessionId: string, secure = false): string {
    if (!isValidSessionId(sessionId)) throw new TypeError(`invalid MSRP session id: ${sessionId}`);
    if (secure && !this.opts.tlsOffload) throw new TypeError('msrps session without an MSRP TLS listener');
    const tls = secure ? this.opts.tlsOffload!.advertise : undefined;
    return formatMsrpUri({
      secure,
      host: tls?.host ?? this.opts.advertiseHost ?? this.opts.host,
      port: tls?.port ?? this.opts.advertisePort ?? this.port,
      sessionId,
      transport: 'tcp',
      params: [],
    });
  }

  /**
   * Announce a session after the INVITE's 200: the client whose a=path is `clientPath` will
   * connect and bind within the connect timeout. Announcing a known session again updates its
   * client path (and restarts the wait when it had ended). Throws TypeError for an invalid
   * session id or client path; both come from our own validated SDP, never from the wire directly.
   *
   * Only a connection from the host of the client's first path URI (the hop that connects to us,
   * RFC 4975 §6) may bind it; with `clientAddress` (a direct client: the INVITE's source) only one
   * from that address as well; with a relay, also one from an allowed edge task.
   */
  expect(sessionId: string, clientPath: string, secure = false, clientAddress?: string): void {
    const localPath = this.localPath(sessionId, secure);
    const clientUris = parseMsrpPath(clientPath);
    if (!clientUris) throw new TypeError(`invalid MSRP client path: ${clientPath}`);
    const admit = admission(clientUris[0]!.host, clientAddress);
    const existing = this.sessions.get(sessionId);
    if (existing && existing.phase !== 'ended') {
      existing.clientPath = clientPath.trim().split(/\s+/);
      existing.admit = admit;
      return;
    }
    let markEnded!: () => void;
    const ended = new Promise<void>((resolve) => (markEnded = resolve));
    const session: MsrpSession = {
      id: sessionId,
      localUri: parseMsrpUri(localPath)!,
      localPath,
      clientPath: clientPath.trim().split(/\s+/),
      admit,
      phase: 'waiting',
      waiters: [],
      ended,
      markEnded,
      tail: Promise.resolve(),
    };
    // RFC 6135 / protocol.md: the client must connect within the connect timeout, or the session ends.
    session.connectTimer = setTimeout(() => {
      if (session.phase === 'waiting') {
        this.log.info('msrp client never connected', { sessionId });
        this.endSession(session, 'connect-timeout');
      }
    }, this.opts.connectTimeoutMs);
    session.connectTimer.unref();
    this.sessions.set(sessionId, session);
  }

  isBound(sessionId: string): boolean {
    return this.sessions.get(sessionId)?.phase === 'bound';
  }

  /**
   * Deliver one message: wait for the binding (connect timeout), send it as SEND chunks
   * (`message/cpim`, Byte-Range, fresh Message-ID, a transaction per chunk) and resolve with the
   * status for the last chunk, or the first non-200. Deliveries to a session run one at a time in
   * call order. Never rejects; never deletes anything.
   */
  deliver(sessionId: string, message: MsrpDelivery): Promise<{ status: number }> {
    const session = this.sessions.get(sessionId);
    // EdgeGateway contract: 481 for a session this edge does not know.
    if (!session) return Promise.resolve({ status: 481 });
    const run = session.tail
      .then(() => this.runDelivery(session, message))
      .catch((err: Error) => {
        this.log.warn('msrp delivery failed', { sessionId, messageId: message.id, error: err.message });
        return NO_RESPONSE_STATUS;
      });
    session.tail = run;
    return run.then((status) => ({ status }));
  }

  /** Forget the session and close its connection (unless another session still uses it). */
  closeSession(sessionId: string): void {
    const session = this.sessions.get(sessionId);
    if (!session) return;
    this.sessions.delete(sessionId);
    this.endSession(session, 'closed-locally');
  }

  private async runDelivery(session: MsrpSession, message: MsrpDelivery): Promise<number> {
    const connection = await this.waitForBinding(session);
    if (!connection) return NO_RESPONSE_STATUS;
    const messageId = randomIdent(20);
    const chunks = splitIntoChunks(message.cpim, this.opts.chunkBytes);
    for (const chunk of chunks) {
      if (session.phase !== 'bound') return NO_RESPONSE_STATUS;
      const transactionId = newTransactionId(chunk.data);
      // RFC 4975 §7.1.1: Success-Report absent (no), Failure-Report absent (yes): every chunk is answered.
      const frame = serializeRequest({
        transactionId,
        method: 'SEND',
        toPath: session.clientPath,
        fromPath: [session.localPath],
        messageId,
        byteRange: chunk.byteRange,
        contentType: 'message/cpim',
        body: chunk.data,
        continuation: chunk.last ? '$' : '+',
      });
      const status = await Promise.race([
        connection.transact(transactionId, frame, this.opts.transactionTimeoutMs),
        session.ended.then(() => NO_RESPONSE_STATUS),
      ]);
      if (status !== 200) {
        this.log.info('msrp delivery not accepted', { sessionId: session.id, messageId: message.id, status });
        return status;
      }
    }
    this.log.debug('msrp delivered', { sessionId: session.id, messageId: message.id, chunks: chunks.length });
    return 200;
  }

  private waitForBinding(session: MsrpSession): Promise<MsrpConnection | undefined> {
    const current = () =>
      session.phase === 'bound' && session.connection && !session.connection.closed ? session.connection : undefined;
    if (session.phase !== 'waiting') return Promise.resolve(current());
    return new Promise((resolve) => session.waiters.push(() => resolve(current())));
  }

  private endSession(session: MsrpSession, reason: MsrpSessionEndReason): void {
    if (session.phase === 'ended') return;
    session.phase = 'ended';
    clearTimeout(session.connectTimer);
    session.markEnded();
    const waiters = session.waiters.splice(0);
    for (const wake of waiters) wake();
    const connection = session.connection;
    if (connection) {
      const state = this.connections.get(connection);
      state?.sessions.delete(session);
      // A connection carries only our sessions; with none left it has no purpose (RFC 4975 §5.4).
      if (state && state.sessions.size === 0 && reason !== 'connection-closed') connection.close('session closed');
    }
    this.emit('closed', session.id, reason);
  }

  private bind(session: MsrpSession, connection: MsrpConnection): void {
    const state = this.connections.get(connection);
    if (!state) return;
    session.phase = 'bound';
    session.connection = connection;
    clearTimeout(session.connectTimer);
    clearTimeout(state.idleTimer);
    state.sessions.add(session);
    const waiters = session.waiters.splice(0);
    for (const wake of waiters) wake();
    this.log.info('msrp session bound', { sessionId: session.id, peer: connection.peer });
    this.emit('bound', session.id);
  }

  private onSocket(socket: Socket): void {
    socket.setNoDelay(true);
    const state: ConnectionState = { sessions: new Set() };
    if (this.opts.relay) {
      // Registered before the connection's own reader, so when the first request is parsed
      // every byte it came in (and any after it in the same read) is already here.
      const received: Buffer[] = [];
      const keep = (data: Buffer) => received.push(data);
      socket.on('data', keep);
      state.capture = { received, stop: () => socket.off('data', keep) };
    }
    const connection: MsrpConnection = new MsrpConnection(
      socket,
      {
        onRequest: (request) => this.onRequest(connection, request),
        onMalformed: (frame) => this.onMalformed(connection, frame),
        onClose: (reason) => this.onConnectionClosed(connection, reason),
      },
      this.opts.limits,
    );
    this.connections.set(connection, state);
    // A connection that binds nothing within the connect timeout only holds a socket.
    state.idleTimer = setTimeout(() => {
      if (state.sessions.size === 0) connection.close('no session bound in time');
    }, this.opts.connectTimeoutMs);
    state.idleTimer.unref();
    this.log.debug('msrp connection', { peer: connection.peer });
  }

  private onConnectionClosed(connection: MsrpConnection, reason: string): void {
    const state = this.connections.get(connection);
    this.connections.delete(connection);
    if (!state) return;
    clearTimeout(state.idleTimer);
    this.log.debug('msrp connection closed', { peer: connection.peer, reason });
    for (const session of [...state.sessions]) this.endSession(session, 'connection-closed');
  }

  private reply(connection: MsrpConnection, request: MsrpRequest, status: number, comment?: string): void {
    if (!wantsResponse(request, status)) return;
    connection.write(serializeResponse(responseTo(request, status, comment)));
  }

  /** RFC 4975 §7.3: requests addressed to us. */
  private onRequest(connection: MsrpConnection, request: MsrpRequest): void {
    const capture = this.endCapture(connection);
    if (capture) {
      const owner = this.relayOwner(connection, request);
      if (owner) {
        this.relayTo(owner, connection, capture.received, request);
        return;
      }
    }
    // RFC 4975 §7.1.2: REPORTs never get a response; the client's reports need nothing from us.
    if (request.method === 'REPORT') {
      this.log.debug('msrp report ignored', { peer: connection.peer, messageId: request.messageId });
      return;
    }
    const session = this.sessionFor(request);
    if (!session) {
      // RFC 4975 §7.3, §10.8: 481 when the To-Path names no session of ours.
      this.reply(connection, request, 481);
      return;
    }
    if (!this.admits(session, connection)) {
      // Knowing the two paths proves nothing: the connection must come from the client's host.
      // RFC 4975 §7.3, §10.3: 403, the attempted action is not allowed. The session stays
      // waiting for its own client, and this connection is never sent any of it.
      this.log.warn('msrp connection refused for session', { sessionId: session.id, peer: connection.peer });
      this.reply(connection, request, 403, 'Forbidden');
      return;
    }
    if (request.method !== 'SEND') {
      this.reply(connection, request, 501);
      return;
    }
    if (session.phase === 'bound' && session.connection !== connection) {
      // RFC 4975 §10.10: the session is already bound to another connection.
      this.reply(connection, request, 506);
      return;
    }
    if (session.phase === 'waiting') this.bind(session, connection);
    // We are send-only (a=sendonly): the body of a client SEND, if any, is acknowledged and dropped.
    this.reply(connection, request, 200);
  }

  /**
   * The live session a request belongs to, or undefined. RFC 4975 §6.1: the To-Path URI must equal
   * our a=path for the session; the sender's session-id (last From-Path URI) must be the one the
   * client announced. Host and port of the sender are not compared: an active client's a=path
   * usually carries a placeholder (port 9), not its ephemeral port.
   */
  private sessionFor(request: MsrpRequest): MsrpSession | undefined {
    const target = parseMsrpUri(request.toPath[0] ?? '');
    if (!target?.sessionId) return undefined;
    const session = this.sessions.get(target.sessionId);
    if (!session || session.phase === 'ended') return undefined;
    if (!msrpUriEquals(target, session.localUri)) return undefined;
    const sender = parseMsrpUri(request.fromPath[request.fromPath.length - 1] ?? '');
    const announced = parseMsrpUri(session.clientPath[session.clientPath.length - 1] ?? '');
    if (!sender || !announced || sender.sessionId !== announced.sessionId) return undefined;
    return session;
  }

  /** The connection comes from the session's client (or an allowed edge task relaying it). */
  private admits(session: MsrpSession, connection: MsrpConnection): boolean {
    const remote = bareAddress(connection.socket.remoteAddress ?? '');
    if (this.opts.relay?.allow(remote)) return true;
    const { pathAddresses, clientAddress } = session.admit;
    if (clientAddress !== undefined && !sameAddress(remote, clientAddress)) return false;
    return pathAddresses.some((address) => sameAddress(remote, address));
  }

  /** Stop keeping the connection's bytes (its first frame is being handled); what was kept. */
  private endCapture(connection: MsrpConnection): ConnectionState['capture'] {
    const state = this.connections.get(connection);
    const capture = state?.capture;
    if (!state || !capture) return undefined;
    state.capture = undefined;
    capture.stop();
    return capture;
  }

  /**
   * The task to hand this connection to: its first request names (To-Path, RFC 4975 §7.3) a
   * session we do not hold, whose id names an owner that is allowed and is not us.
   */
  private relayOwner(connection: MsrpConnection, request: MsrpRequest): SessionOwner | undefined {
    const relay = this.opts.relay;
    if (!relay) return undefined;
    const sessionId = parseMsrpUri(request.toPath[0] ?? '')?.sessionId;
    if (!sessionId || this.sessions.has(sessionId)) return undefined;
    const owner = decodeSessionOwner(sessionId);
    if (!owner) return undefined;
    // Never to ourselves, as configured or as this very socket was reached: that would loop.
    const local = bareAddress(connection.socket.localAddress ?? '');
    const self = relay.self;
    if (
      (owner.address === self.address && owner.port === self.port) ||
      (owner.address === local && owner.port === this.port)
    ) {
      return undefined;
    }
    if (!relay.allow(owner.address)) {
      this.log.warn('msrp relay refused', {
        sessionId,
        owner: `${owner.address}:${owner.port}`,
        peer: connection.peer,
      });
      return undefined;
    }
    return owner;
  }

  /**
   * Pipe the client's connection to the owner's listener: the bytes read so far first, then
   * both ways unchanged, so the owner sees the client's own frames (RFC 4975 §5.4 binding,
   * §6.1 URI checks) and the client the owner's. Closing either side closes the other. When
   * the owner cannot be reached, the pending request gets 481 (RFC 4975 §7.3: no such session
   * here) and the connection closes.
   */
  private relayTo(owner: SessionOwner, connection: MsrpConnection, received: Buffer[], request: MsrpRequest): void {
    const state = this.connections.get(connection);
    if (state) clearTimeout(state.idleTimer);
    this.connections.delete(connection);
    const peer = connection.peer;
    const client = connection.release();
    client.pause();
    const upstream = connect({ host: owner.address, port: owner.port });
    this.relayed.add(client);
    this.relayed.add(upstream);
    const target = `${owner.address}:${owner.port}`;
    let piped = false;
    // The client gives up on its request after the transaction timeout (RFC 4975 §7.1) anyway.
    const connectTimer = setTimeout(
      () => upstream.destroy(new Error(`connect timed out after ${this.opts.transactionTimeoutMs} ms`)),
      this.opts.transactionTimeoutMs,
    );
    connectTimer.unref();

    upstream.once('connect', () => {
      clearTimeout(connectTimer);
      if (client.destroyed) return;
      piped = true;
      upstream.setNoDelay(true);
      upstream.write(Buffer.concat(received));
      client.pipe(upstream);
      upstream.pipe(client);
      this.log.info('msrp connection relayed', { peer, owner: target });
    });
    upstream.on('error', (err) => {
      clearTimeout(connectTimer);
      if (piped || client.destroyed) return;
      this.log.warn('msrp relay failed', { peer, owner: target, error: err.message });
      if (wantsResponse(request, 481)) client.end(serializeResponse(responseTo(request, 481)), () => client.destroy());
      else client.destroy();
    });
    upstream.on('close', () => {
      clearTimeout(connectTimer);
      this.relayed.delete(upstream);
      if (piped) closeAfterFlush(client);
    });
    client.on('error', () => upstream.destroy());
    client.on('close', () => {
      this.relayed.delete(client);
      if (piped) closeAfterFlush(upstream);
      else upstream.destroy();
    });
  }

  private onMalformed(connection: MsrpConnection, frame: MsrpMalformed): void {
    this.endCapture(connection);
    this.log.warn('msrp malformed frame', { peer: connection.peer, reason: frame.reason });
    if (!frame.isRequest || frame.method === 'REPORT') return;
    if (!frame.toPath?.length || !frame.fromPath?.length) {
      // Without both paths no response can be addressed (RFC 4975 §7.2); the peer is broken.
      connection.close(`unaddressable malformed request: ${frame.reason}`);
      return;
    }
    if (!wantsResponse({ failureReport: frame.failureReport }, 400)) return;
    const { transactionId, toPath, fromPath } = frame;
    connection.write(serializeResponse(responseTo({ transactionId, toPath, fromPath }, 400)));
  }
}

/** Close a relay side once what was piped into it is written, so a last response is not lost. */
function closeAfterFlush(socket: Socket): void {
  if (!socket.destroyed) socket.end(() => socket.destroy());
}

/**
 * Who may connect for a session: `host` (the client's first path URI), resolved when it is a
 * name (until then, and when it does not resolve, nobody), and `clientAddress` when given.
 */
function admission(host: string, clientAddress: string | undefined): MsrpSession['admit'] {
  const admit: MsrpSession['admit'] = {
    pathAddresses: isIP(host) ? [host] : [],
    ...(clientAddress !== undefined ? { clientAddress: bareAddress(clientAddress) } : {}),
  };
  if (!isIP(host)) {
    lookup(host, { all: true }, (err, addresses) => {
      if (!err) admit.pathAddresses = addresses.map((a) => a.address);
    });
  }
  return admit;
}

/** An IPv4 address as a dual-stack socket reports it (::ffff:a.b.c.d) in its plain form. */
function bareAddress(address: string): string {
  return address.replace(/^::ffff:(?=\d+\.)/i, '');
}

/** Two addresses are the same address (IPv6 spellings differ: compare as addresses). */
function sameAddress(a: string, b: string): boolean {
  const family = isIP(a);
  if (family === 0 || family !== isIP(b)) return false;
  const list = new BlockList();
  list.addAddress(a, family === 4 ? 'ipv4' : 'ipv6');
  return list.check(b, family === 4 ? 'ipv4' : 'ipv6');
}
