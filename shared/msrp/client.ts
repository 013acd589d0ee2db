/**
 * A small MSRP endpoint for tests and the demo, playing the client of protocol.md step 14:
 * it connects to the service's a=path (RFC 6135 setup:active), binds with a bodiless SEND
 * (RFC 4975 §5.4, §7.1.1), answers every chunk it receives and emits each reassembled message.
 */
import { EventEmitter } from 'node:events';
import { connect, isIP, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { MessageReassembler } from './chunking.ts';
import { MsrpConnection } from './connection.ts';
import { matchesFingerprint, type CertificateFingerprint } from './fingerprint.ts';
import {
  newTransactionId,
  randomIdent,
  responseTo,
  serializeRequest,
  formatResponse,
  wantsResponse,
  type MsrpMalformed,
  type MsrpParserLimits,
  type MsrpRequest,
} from './framing.ts';
import { MSRP_DEFAULT_PORT, parseMsrpPath } from './uri.ts';

export interface MsrpClientOptions {
  /** The client's own a=path (its SDP offer): our From-Path. */
  localPath: string;
  /** The service's a=path from the SDP answer: our To-Path, and where we connect. */
  remotePath: string;
  /**
   * Status to answer each received chunk with; default 200. Return null to leave the chunk
   * unanswered (to exercise the sender's transaction timeout).
   */
  respond?: (request: MsrpRequest) => number | null;
  /** Connect here instead of the host and port of the first URI of `remotePath`. */
  connectTo?: { host: string; port: number };
  /**
   * Called with each reassembled message. Set here rather than with on('message') when messages
   * may already be waiting: the service can send right after its 200 to the binding SEND.
   */
  onMessage?: (message: ReceivedMsrpMessage) => void;
  /**
   * For an msrps: `remotePath` (RFC 4975 §15): our certificate and key (PEM) to present, whose
   * fingerprint our offer's a=fingerprint names (RFC 8122 §5), and how to authenticate the
   * service: by the a=fingerprint of its answer when given (RFC 8122 §5, a self-signed
   * certificate is fine), otherwise by `ca` (or the system's authorities) and its host name.
   */
  tls?: { key?: string; cert?: string; ca?: string; serverFingerprint?: CertificateFingerprint };
  /** How long to wait for the connection and the 200 to the binding SEND. Default 5 s. */
  bindTimeoutMs?: number;
  limits?: MsrpParserLimits;
}

export interface ReceivedMsrpMessage {
  messageId: string;
  contentType: string;
  body: Buffer;
}

export interface MsrpClientEvents {
  /** A whole message, once its last chunk arrived and every chunk was answered 200 (or not at all). */
  message: [ReceivedMsrpMessage];
  /** Every SEND chunk as it arrives, before it is answered. */
  chunk: [MsrpRequest];
  closed: [reason: string];
}

export class MsrpClient extends EventEmitter<MsrpClientEvents> {
  private readonly reassembler = new MessageReassembler();
  /** Messages with a chunk we refused: later chunks are answered but nothing is emitted. */
  private readonly refused = new Set<string>();
  private connection: MsrpConnection | undefined;
  private closedWith: string | undefined;
  /** Every message received so far, in arrival order. */
  readonly received: ReceivedMsrpMessage[] = [];

  readonly localPath: string[];
  readonly remotePath: string[];
  private readonly respond: (request: MsrpRequest) => number | null;

  /** Use connectMsrp(), which also connects and binds. */
  constructor(options: MsrpClientOptions) {
    super();
    this.localPath = options.localPath.trim().split(/\s+/);
    this.remotePath = options.remotePath.trim().split(/\s+/);
    this.respond = options.respond ?? (() => 200);
    if (options.onMessage) this.on('message', options.onMessage);
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  /** Take over a connected socket (connectMsrp does this before binding). */
  attach(socket: Socket, limits?: MsrpParserLimits): MsrpConnection {
    this.connection = new MsrpConnection(
      socket,
      {
        onRequest: (request) => this.onRequest(request),
        onMalformed: (frame) => this.onMalformed(frame),
        onClose: (reason) => {
          this.closedWith = reason;
          this.emit('closed', reason);
        },
      },
      limits,
    );
    return this.connection;
  }

  /** Close the connection; resolves once the socket is gone. */
  close(): Promise<void> {
    const connection = this.connection;
    if (!connection || connection.closed) return Promise.resolve();
    return new Promise((resolve) => {
      connection.socket.once('close', () => resolve());
      connection.close('closed by client');
    });
  }

  private onRequest(request: MsrpRequest): void {
    if (request.method === 'REPORT') return;
    if (request.method !== 'SEND') {
      this.answer(request, 501);
      return;
    }
    this.emit('chunk', request);
    const status = this.respond(request);
    if (status !== null) this.answer(request, status);
    const messageId = request.messageId;
    if (messageId === undefined) return;
    if (status !== null && status !== 200) {
      this.refused.add(messageId);
      this.reassembler.discard(messageId);
    }
    if (this.refused.has(messageId)) {
      if (request.continuation !== '+') this.refused.delete(messageId);
      return;
    }
    const result = this.reassembler.add(request);
    if (result.state === 'complete') {
      const message = { messageId: result.messageId, contentType: result.contentType, body: result.body };
      this.received.push(message);
      this.emit('message', message);
    }
  }

  private onMalformed(frame: MsrpMalformed): void {
    if (!frame.isRequest || frame.method === 'REPORT' || !frame.toPath?.length || !frame.fromPath?.length) return;
    if (!wantsResponse({ failureReport: frame.failureReport }, 400)) return;
    const { transactionId, toPath, fromPath } = frame;
    this.connection?.write(formatResponse(responseTo({ transactionId, toPath, fromPath }, 400)));
  }

  private answer(request: MsrpRequest, status: number): void {
    if (!wantsResponse(request, status)) return;
    this.connection?.write(formatResponse(responseTo(request, status)));
  }
}

/**
 * Connect to the service and bind: resolves with the client once the service answered 200 to
 * the bodiless SEND; rejects with an Error naming the status (or the failure) otherwise.
 */
export async function connectMsrp(options: MsrpClientOptions): Promise<MsrpClient> {
  const remote = parseMsrpPath(options.remotePath);
  const local = parseMsrpPath(options.localPath);
  if (!remote) throw new TypeError(`invalid MSRP remote path: ${options.remotePath}`);
  if (!local) throw new TypeError(`invalid MSRP local path: ${options.localPath}`);
  const target = options.connectTo ?? { host: remote[0]!.host, port: remote[0]!.port ?? MSRP_DEFAULT_PORT };
  const timeoutMs = options.bindTimeoutMs ?? 5_000;
  const client = new MsrpClient(options);

  const secure = remote[0]!.secure;
  const tls = options.tls ?? {};
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = secure
      ? connectTls({
          host: target.host,
          port: target.port,
          ...(isIP(remote[0]!.host) ? {} : { servername: remote[0]!.host }),
          ...(tls.key && tls.cert ? { key: tls.key, cert: tls.cert } : {}),
          ...(tls.ca ? { ca: tls.ca } : {}),
          // With a fingerprint to compare, no authority is needed (RFC 8122 §5, checked below).
          ...(tls.serverFingerprint ? { rejectUnauthorized: false } : {}),
        })
      : connect({ host: target.host, port: target.port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`MSRP connect to ${target.host}:${target.port} timed out`));
    }, timeoutMs);
    s.once(secure ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      s.off('error', onError);
      const expected = tls.serverFingerprint;
      const raw = 'getPeerCertificate' in s ? (s.getPeerCertificate().raw as Buffer | undefined) : undefined;
      if (expected && (!raw || !matchesFingerprint(raw, expected))) {
        s.destroy();
        reject(new Error(`MSRP connect to ${target.host}:${target.port}: certificate does not match a=fingerprint`));
        return;
      }
      resolve(s);
    });
    const onError = (err: Error) => {
      clearTimeout(timer);
      reject(new Error(`MSRP connect to ${target.host}:${target.port} failed: ${err.message}`));
    };
    s.once('error', onError);
  });
  socket.setNoDelay(true);
  const connection = client.attach(socket, options.limits);

  // RFC 4975 §5.4 / §7.1.1: the active side opens with a SEND (bodiless is allowed) so the
  // passive side can bind the connection to the session.
  const transactionId = newTransactionId();
  const frame = serializeRequest({
    transactionId,
    method: 'SEND',
    toPath: client.remotePath,
    fromPath: client.localPath,
    messageId: randomIdent(20),
    byteRange: { start: 1, end: 0, total: 0 },
  });
  const status = await connection.transact(transactionId, frame, timeoutMs);
  if (status !== 200) {
    await client.close();
    throw new Error(`MSRP bind refused with status ${status}`);
  }
  return client;
}
