/**
 * The service's MSRP side (RFC 4975, RFC 6135 setup:passive): a TCP listener that waits for the
 * client announced by an accepted INVITE, binds its connection to the session on its first SEND,
 * then delivers stored messages as chunked SENDs and reports the client's status per message.
 *
 * Status contract (shared/ports.ts EdgeGateway.deliver): 200 delivered; 408 no answer within the
 * transaction timeout, no connection within the connect timeout, or the connection closed;
 * 481 unknown session; any other status as the client sent it.
 *
 * With `tls`, it also ends MSRP over TLS itself (RFC 4975 §15, msrps), asking each client for its
 * certificate so that a session whose offer named an a=fingerprint binds only a client whose
 * certificate has it (RFC 8122 §5).
 *
 * With `relay`, a connection whose first request names a session held by another task (its id
 * names the owner, session-owner.ts) is piped, byte for byte, to that task's listener behind a
 * PROXY protocol header naming the client (relay-header.ts); the owner accepts such a header only
 * from an allowed edge task and applies its checks to the client it names.
 */
import { lookup } from 'node:dns';
import { EventEmitter } from 'node:events';
import { BlockList, connect, createServer, isIP, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, TLSSocket } from 'node:tls';
import { DEFAULT_CHUNK_BYTES, splitIntoChunks } from './chunking.ts';
import { MsrpConnection, NO_RESPONSE_STATUS } from './connection.ts';
import {
  randomIdent,
  newTransactionId,
  responseTo,
  serializeRequest,
  formatResponse,
  serializeResponse,
  wantsResponse,
  type MsrpMalformed,
  type MsrpParserLimits,
  type MsrpRequest,
} from './framing.ts';
import { certificateFingerprint, matchesFingerprint, type CertificateFingerprint } from './fingerprint.ts';
import { encodeRelayHeader, readRelayHeader, type RelayedClient } from './relay-header.ts';
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
  /**
   * MSRP over TLS ended here (RFC 4975 §15, msrps): the port to bind (0 picks one), the key and
   * certificate (PEM), and where clients reach it when that differs (default: the advertised
   * host and the bound port). Takes precedence over `tlsOffload` for msrps: paths.
   */
  tls?: { port: number; key: string; cert: string; advertise?: { host: string; port: number } };
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

/** How a session's client is told apart (`expect`). */
export interface MsrpClientBinding {
  /** Our a=path is msrps: (RFC 4975 §15): only a connection that came over TLS binds. */
  secure?: boolean;
  /** A direct client: the INVITE's source address, which the connection must come from too. */
  clientAddress?: string;
  /** RFC 8122 §5: the offer's a=fingerprint; a client certificate presented must have it. */
  clientFingerprint?: CertificateFingerprint;
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
  /** [localPath]: the From-Path of our SENDs (RFC 4975 §7.1). */
  fromPath: readonly string[];
  clientPath: string[];
  /**
   * Who may connect for it: the addresses of the host of the client's first path URI (empty
   * until a host name resolves), and for a direct client the INVITE's source address too.
   */
  admit: { pathAddresses: string[]; clientAddress?: string };
  /** RFC 8122 §5: the certificate a TLS client presents must have this fingerprint. */
  clientFingerprint?: CertificateFingerprint;
  phase: 'waiting' | 'bound' | 'ended';
  connection?: MsrpConnection;
  connectTimer?: NodeJS.Timeout;
  /** Woken when the session binds or ends. */
  waiters: Array<() => void>;
  /** Deliveries asked for whose last chunk is not written yet (nor given up). */
  writing: number;
  /** Resolves once the last delivery asked for has written its last chunk (or ended): the next one's start. */
  tail: Promise<unknown>;
}

interface ConnectionState {
  sessions: Set<MsrpSession>;
  /** The client: the socket's peer, or the one an allowed edge task's relay header names. */
  client: RelayedClient;
  /** Came with a relay header: never relayed again. */
  relayed: boolean;
  idleTimer?: NodeJS.Timeout;
  /** With a relay: the bytes read so far, kept until the first frame is handled. */
  capture?: { received: Buffer[]; stop: () => void };
}

const SILENT_LOG: MsrpLog = { debug() {}, info() {}, warn() {} };

export class MsrpListener extends EventEmitter<MsrpListenerEvents> {
  private readonly opts: Required<
    Omit<MsrpListenerOptions, 'advertiseHost' | 'advertisePort' | 'limits' | 'relay' | 'log' | 'tlsOffload' | 'tls'>
  > &
    Pick<MsrpListenerOptions, 'advertiseHost' | 'advertisePort' | 'limits' | 'relay' | 'tlsOffload' | 'tls'>;
  private readonly log: MsrpLog;
  private readonly sessions = new Map<string, MsrpSession>();
  private readonly connections = new Map<MsrpConnection, ConnectionState>();
  /** Both sockets of every relayed connection, so stop() ends them. */
  private readonly relayed = new Set<Socket>();
  /** Connections from allowed edge tasks whose first bytes (a relay header or not) are awaited. */
  private readonly awaitingHeader = new Set<Socket>();
  private server: Server | undefined;
  private offloadServer: Server | undefined;
  private tlsServer: Server | undefined;
  private boundPort: number | undefined;
  private boundOffloadPort: number | undefined;
  private boundTlsPort: number | undefined;
  /** RFC 8122 §5: of our own TLS certificate, for the answer's a=fingerprint. */
  readonly fingerprint: CertificateFingerprint | undefined;

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
      tls: options.tls,
    };
    this.log = options.log ?? SILENT_LOG;
    this.fingerprint = options.tls ? certificateFingerprint(options.tls.cert) : undefined;
  }

  /** The port bound by start(), or the configured one before that. */
  get port(): number {
    return this.boundPort ?? this.opts.port;
  }

  /** The plain TCP port for MSRP over TLS a load balancer ended, once bound. */
  get tlsOffloadPort(): number | undefined {
    return this.boundOffloadPort;
  }

  /** The port of our own MSRP TLS listener, once bound. */
  get tlsPort(): number | undefined {
    return this.boundTlsPort;
  }

  /**
   * Where clients reach MSRP over TLS (what an msrps: a=path names), and the fingerprint of our
   * certificate when we end TLS ourselves; undefined without either TLS listener.
   */
  secureEndpoint(): { host: string; port: number; fingerprint?: CertificateFingerprint } | undefined {
    const where = this.secureAddress();
    if (!where) return undefined;
    return { ...where, ...(this.opts.tls && this.fingerprint ? { fingerprint: this.fingerprint } : {}) };
  }

  private secureAddress(): { host: string; port: number } | undefined {
    const tls = this.opts.tls;
    if (tls) {
      return tls.advertise ?? { host: this.opts.advertiseHost ?? this.opts.host, port: this.boundTlsPort ?? tls.port };
    }
    return this.opts.tlsOffload?.advertise;
  }

  /** Bind and listen; resolves with the bound port. */
  async start(): Promise<number> {
    if (this.server) return this.port;
    const port = await this.startMain();
    if (this.opts.tlsOffload) {
      // Connections whose TLS the load balancer ended: they count as TLS (RFC 4975 §15).
      const server = createServer((socket) => this.onSocket(socket, true));
      this.offloadServer = server;
      this.boundOffloadPort = await this.listenOn(server, this.opts.tlsOffload.port);
    }
    const tls = this.opts.tls;
    if (tls) {
      // RFC 4975 §15: TLS for msrps. The client's certificate is asked for, never required, and
      // not checked against any authority: self-signed is the norm, and its a=fingerprint, when
      // the offer has one, is what authenticates it (RFC 8122 §5, checked at binding).
      const server = createTlsServer(
        {
          key: tls.key,
          cert: tls.cert,
          requestCert: true,
          rejectUnauthorized: false,
          handshakeTimeout: this.opts.connectTimeoutMs,
        },
        (socket) => this.onSocket(socket, true),
      );
      server.on('tlsClientError', (err) => this.log.debug('msrp tls handshake failed', { error: err.message }));
      this.tlsServer = server;
      this.boundTlsPort = await this.listenOn(server, tls.port);
      this.log.info('msrp over tls listening', { host: this.opts.host, port: this.boundTlsPort });
    }
    return port;
  }

  private listenOn(server: Server, port: number): Promise<number> {
    server.maxConnections = this.opts.maxConnections;
    return new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.opts.host, () => {
        server.off('error', reject);
        server.on('error', (err) => this.log.warn('msrp listener error', { error: err.message }));
        resolve((server.address() as AddressInfo).port);
      });
    });
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
    for (const socket of [...this.relayed, ...this.awaitingHeader]) socket.destroy();
    for (const server of [this.server, this.offloadServer, this.tlsServer]) {
      if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    this.server = undefined;
    this.offloadServer = undefined;
    this.tlsServer = undefined;
  }

  /**
   * Our a=path for a session (RFC 4975 §6, §8.2): `msrp://host:port/<sessionId>;tcp`, or with
   * `secure` `msrps://` on our TLS listener or that of `tlsOffload` (§15: TLS for the session).
   * Throws TypeError when the id is not a valid session-id (RFC 4975 §9), or for `secure` without
   * either TLS listener.
   */
  localPath(sessionId: string, secure = false): string {
    if (!isValidSessionId(sessionId)) throw new TypeError(`invalid MSRP session id: ${sessionId}`);
    const tls = secure ? this.secureAddress() : undefined;
    if (secure && !tls) throw new TypeError('msrps session without an MSRP TLS listener');
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
   * from that address as well. A connection an allowed edge task relays counts as coming from
   * the client its relay header names. A `secure` session binds only a connection that came over
   * TLS, and with `clientFingerprint` only one whose client certificate, if it presented one,
   * has that fingerprint (RFC 8122 §5).
   */
  expect(sessionId: string, clientPath: string, binding: MsrpClientBinding = {}): void {
    const localPath = this.localPath(sessionId, binding.secure ?? false);
    const clientUris = parseMsrpPath(clientPath);
    if (!clientUris) throw new TypeError(`invalid MSRP client path: ${clientPath}`);
    const admit = admission(clientUris[0]!.host, binding.clientAddress);
    const existing = this.sessions.get(sessionId);
    if (existing && existing.phase !== 'ended') {
      existing.clientPath = clientPath.trim().split(/\s+/);
      existing.admit = admit;
      existing.clientFingerprint = binding.clientFingerprint;
      return;
    }
    const session: MsrpSession = {
      id: sessionId,
      localUri: parseMsrpUri(localPath)!,
      localPath,
      fromPath: [localPath],
      clientPath: clientPath.trim().split(/\s+/),
      admit,
      ...(binding.clientFingerprint ? { clientFingerprint: binding.clientFingerprint } : {}),
      phase: 'waiting',
      waiters: [],
      writing: 0,
      tail: DONE,
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
   * status for the last chunk, or the first non-200. Deliveries to a session go out in call
   * order, pipelined: one starts once the one before has written its last chunk, not once that
   * chunk is answered (RFC 4975 §7.1: each request is its own transaction, its response matched
   * by transaction id, so a sender need not wait for one before the next). With none before it
   * still writing, a delivery to a bound session writes its first chunk before this returns (the
   * SENDs of one hand-off then leave in one write, MsrpConnection.write). Never rejects; never
   * deletes anything.
   */
  deliver(sessionId: string, message: MsrpDelivery): Promise<{ status: number }> {
    const session = this.sessions.get(sessionId);
    // EdgeGateway contract: 481 for a session this edge does not know.
    if (!session) return Promise.resolve({ status: 481 });
    const ahead = session.writing > 0;
    session.writing++;
    let resolveWritten!: () => void;
    const lastChunkWritten = new Promise<void>((resolve) => (resolveWritten = resolve));
    let done = false;
    const written = () => {
      if (done) return;
      done = true;
      session.writing--;
      resolveWritten();
    };
    const run = ahead
      ? session.tail.then(() => this.deliverNow(session, message, written))
      : this.deliverNow(session, message, written);
    session.tail = lastChunkWritten;
    return run;
  }

  /** runDelivery's status as the contract's outcome; never rejects, and always lets the next delivery start. */
  private async deliverNow(
    session: MsrpSession,
    message: MsrpDelivery,
    written: () => void,
  ): Promise<{ status: number }> {
    try {
      return { status: await this.runDelivery(session, message, written) };
    } catch (err) {
      this.log.warn('msrp delivery failed', {
        sessionId: session.id,
        messageId: message.id,
        error: (err as Error).message,
      });
      return { status: NO_RESPONSE_STATUS };
    } finally {
      written();
    }
  }

  /** Forget the session and close its connection (unless another session still uses it). */
  closeSession(sessionId: string): void {
    const session = this.sessions.get(sessionId);
    if (!session) return;
    this.sessions.delete(sessionId);
    this.endSession(session, 'closed-locally');
  }

  /** `written`: called once the last chunk is on the connection (the next delivery may start). */
  private async runDelivery(session: MsrpSession, message: MsrpDelivery, written: () => void): Promise<number> {
    // Bound already: no wait (and no turn of the promise queue) before the first chunk is written.
    const connection = session.phase === 'waiting' ? await this.waitForBinding(session) : liveConnection(session);
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
        fromPath: session.fromPath,
        messageId,
        byteRange: chunk.byteRange,
        contentType: 'message/cpim',
        body: chunk.data,
        continuation: chunk.last ? '$' : '+',
      });
      // Ends with 408 if the session ends first (endSession abandons its transactions).
      const answered = connection.transact(transactionId, frame, this.opts.transactionTimeoutMs, session);
      // The chunks of one message wait for each answer (a refused chunk ends the message).
      if (chunk.last) written();
      const status = await answered;
      if (status !== 200) {
        this.log.info('msrp delivery not accepted', { sessionId: session.id, messageId: message.id, status });
        return status;
      }
    }
    this.log.debug('msrp delivered', { sessionId: session.id, messageId: message.id, chunks: chunks.length });
    return 200;
  }

  /** The session's connection once it binds, undefined if the session ends first. */
  private waitForBinding(session: MsrpSession): Promise<MsrpConnection | undefined> {
    return new Promise((resolve) => session.waiters.push(() => resolve(liveConnection(session))));
  }

  private endSession(session: MsrpSession, reason: MsrpSessionEndReason): void {
    if (session.phase === 'ended') return;
    session.phase = 'ended';
    clearTimeout(session.connectTimer);
    const waiters = session.waiters.splice(0);
    for (const wake of waiters) wake();
    const connection = session.connection;
    if (connection) {
      const state = this.connections.get(connection);
      state?.sessions.delete(session);
      // Its SENDs waiting for an answer end with 408 now (the connection may stay, for others).
      connection.abandon(session);
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
    // Every pull binds one: a debug line (at info it was a line a pull on the hot path).
    this.log.debug('msrp session bound', { sessionId: session.id, peer: connection.peer });
    this.emit('bound', session.id);
  }

  /**
   * A new connection; `tls` when it came over TLS (ours, or a load balancer's). One from an
   * allowed edge task may start with a relay header naming the client it relays; from anyone
   * else such a header is not read (it fails as MSRP framing).
   */
  private onSocket(socket: Socket, tls = false): void {
    socket.setNoDelay(true);
    const remote = bareAddress(socket.remoteAddress ?? '');
    const client: RelayedClient = { address: remote, port: socket.remotePort ?? 0, tls };
    if (socket instanceof TLSSocket) {
      // An empty object when the client presented no certificate.
      const raw = socket.getPeerCertificate().raw as Buffer | undefined;
      if (raw) client.certificate = raw;
    }
    if (!this.opts.relay?.allow(remote)) {
      this.serve(socket, client, false);
      return;
    }
    // Bytes are joined only once as many arrived as the header needs: linear in its length.
    const chunks: Buffer[] = [];
    let size = 0;
    let needed = 1;
    this.awaitingHeader.add(socket);
    const timer = setTimeout(() => socket.destroy(), this.opts.connectTimeoutMs);
    timer.unref();
    const onData = (data: Buffer) => {
      chunks.push(data);
      size += data.length;
      if (size < needed) return;
      const received = Buffer.concat(chunks.splice(0));
      chunks.push(received);
      const header = readRelayHeader(received);
      if (header.state === 'partial') {
        needed = header.needed;
        return;
      }
      stopWaiting();
      socket.pause();
      if (header.state === 'invalid') {
        this.log.warn('msrp relay header refused', { peer: `${remote}:${socket.remotePort}`, reason: header.reason });
        socket.destroy();
        return;
      }
      const rest = header.state === 'complete' ? received.subarray(header.consumed) : received;
      if (rest.length > 0) socket.unshift(rest);
      if (header.state === 'complete') {
        this.log.debug('msrp relayed connection', { relay: remote, client: header.client.address });
        this.serve(socket, { ...header.client, address: bareAddress(header.client.address) }, true);
      } else {
        this.serve(socket, client, false);
      }
      socket.resume();
    };
    const stopWaiting = () => {
      clearTimeout(timer);
      this.awaitingHeader.delete(socket);
      socket.off('data', onData);
      socket.off('error', stopWaiting);
      socket.off('close', stopWaiting);
    };
    socket.on('data', onData);
    socket.on('error', stopWaiting);
    socket.on('close', stopWaiting);
  }

  private serve(socket: Socket, client: RelayedClient, relayed: boolean): void {
    const state: ConnectionState = { sessions: new Set(), client, relayed };
    if (this.opts.relay && !relayed) {
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
    connection.write(formatResponse(responseTo(request, status, comment)));
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
    const refusal = this.refusal(session, connection);
    if (refusal) {
      // Knowing the two paths proves nothing: the connection must come from the client's host,
      // over TLS for an msrps session, with the certificate the offer named. RFC 4975 §7.3,
      // §10.3: 403, the attempted action is not allowed. The session stays waiting for its own
      // client, and this connection is never sent any of it.
      this.log.warn('msrp connection refused for session', { sessionId: session.id, peer: connection.peer, refusal });
      this.reply(connection, request, 403, `Forbidden - ${refusal}`);
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

  /**
   * Why the connection may not bind the session, or undefined when it comes from the session's
   * client (directly or relayed by an allowed edge task, whose header names the client).
   */
  private refusal(session: MsrpSession, connection: MsrpConnection): string | undefined {
    const client = this.connections.get(connection)?.client;
    if (!client) return 'connection gone';
    const { pathAddresses, clientAddress } = session.admit;
    const fromClient =
      (clientAddress === undefined || sameAddress(client.address, clientAddress)) &&
      pathAddresses.some((address) => sameAddress(client.address, address));
    if (!fromClient) return 'not the client of this session';
    // RFC 4975 §15: an msrps session runs over TLS; the same bytes in clear are not it.
    if (session.localUri.secure && !client.tls) return 'msrps session needs TLS';
    // RFC 8122 §5: the offer's fingerprint names the certificate the client presents.
    const expected = session.clientFingerprint;
    if (expected && client.certificate && !matchesFingerprint(client.certificate, expected)) {
      return 'certificate does not match a=fingerprint';
    }
    return undefined;
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
    if (!relay || this.connections.get(connection)?.relayed) return undefined;
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
    // Who the owner must check: the client as this task saw it (its address, TLS, certificate).
    const header = state
      ? encodeRelayHeader(state.client, {
          address: bareAddress(connection.socket.localAddress ?? ''),
          port: connection.socket.localPort ?? 0,
        })
      : Buffer.alloc(0);
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
      upstream.write(Buffer.concat([header, ...received]));
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
    connection.write(formatResponse(responseTo({ transactionId, toPath, fromPath }, 400)));
  }
}

/** Settled: a session's first delivery starts after it. */
const DONE: Promise<unknown> = Promise.resolve();

/** A bound session's connection while it is open. */
function liveConnection(session: MsrpSession): MsrpConnection | undefined {
  const connection = session.phase === 'bound' ? session.connection : undefined;
  return connection && !connection.closed ? connection : undefined;
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
  if (a === b) return isIP(a) !== 0;
  const family = isIP(a);
  if (family === 0 || family !== isIP(b)) return false;
  const list = new BlockList();
  list.addAddress(a, family === 4 ? 'ipv4' : 'ipv6');
  return list.check(b, family === 4 ? 'ipv4' : 'ipv6');
}
