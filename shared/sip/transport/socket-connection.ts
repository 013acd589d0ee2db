/**
 * A TCP or TLS connection carrying SIP (RFC 3261 §18.3): Content-Length framing through
 * `StreamFramer`, CRLF keep-alive pongs (RFC 5626 §3.5.1), idle close.
 */
import net from 'node:net';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import { Connection } from './connection.ts';
import type { ConnectionEvents } from './connection.ts';
import { StreamFramer } from './stream-framer.ts';
import type { TransportName } from './types.ts';

const PONG = Buffer.from('\r\n');

export interface SocketConnectionOptions {
  id: string;
  transport: Extract<TransportName, 'tcp' | 'tls'>;
  socket: Socket;
  outbound: boolean;
  maxMessageBytes: number;
  idleTimeoutMs: number;
  /** A message begun must be complete this soon, or the connection closes (0 = no deadline). */
  messageTimeoutMs?: number;
  events: ConnectionEvents;
}

/** Largest messages' worth of writes a connection may hold unsent (16 × 64 KiB = 1 MiB by default). */
export const UNSENT_MESSAGES = 16;

export class SocketConnection extends Connection {
  private readonly socket: Socket;
  private readonly framer: StreamFramer;
  private readonly messageTimeoutMs: number;
  /** Bytes written but not yet taken by the kernel above which the peer is deemed not reading. */
  private readonly maxUnsentBytes: number;
  /** Armed while a message is incomplete; not restarted by its trickling bytes (slowloris). */
  private messageDeadline: NodeJS.Timeout | undefined;

  constructor(opts: SocketConnectionOptions) {
    const s = opts.socket;
    super(
      opts.id,
      opts.transport,
      s.remoteAddress ?? '',
      s.remotePort ?? 0,
      s.localAddress ?? '',
      s.localPort ?? 0,
      opts.outbound,
      opts.events,
      opts.idleTimeoutMs,
    );
    this.socket = s;
    this.framer = new StreamFramer(opts.maxMessageBytes);
    this.messageTimeoutMs = opts.messageTimeoutMs ?? 0;
    this.maxUnsentBytes = UNSENT_MESSAGES * opts.maxMessageBytes;
    s.setNoDelay(true);
    s.on('data', (chunk: Buffer) => this.onData(chunk));
    s.on('error', () => s.destroy());
    s.on('close', () => {
      if (this.messageDeadline) clearTimeout(this.messageDeadline);
      this.notifyClosed();
    });
    this.touch();
  }

  isOpen(): boolean {
    return !this.socket.destroyed && this.socket.writable;
  }

  send(bytes: Buffer): Promise<void> {
    if (!this.isOpen()) return Promise.reject(new Error(`connection ${this.id} is closed`));
    if (this.socket.writableLength > this.maxUnsentBytes) {
      // A peer that does not read its responses would have them held here without end: its
      // connection is dropped, a transport error for the transactions using it (RFC 3261 §17.2.4).
      this.socket.destroy();
      return Promise.reject(
        new Error(`connection ${this.id}: peer not reading (${this.socket.writableLength} bytes unsent); closed`),
      );
    }
    this.touch();
    return new Promise((resolve, reject) => {
      this.socket.write(bytes, (err) => (err ? reject(err) : resolve()));
    });
  }

  close(): void {
    this.socket.end();
    // A peer that never closes its side must not hold the socket open.
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.touch();
    for (const event of this.framer.push(chunk)) {
      if (event.kind === 'message') this.events.message(this, event.bytes);
      else if (event.kind === 'ping') {
        if (this.isOpen()) this.socket.write(PONG);
      } else {
        this.socket.pause();
        this.events.framingError(this, event.head, event.reason, event.oversize);
      }
    }
    this.watchIncomplete();
  }

  private watchIncomplete(): void {
    if (this.messageTimeoutMs <= 0) return;
    if (this.framer.pending === 0) {
      if (this.messageDeadline) clearTimeout(this.messageDeadline);
      this.messageDeadline = undefined;
    } else if (!this.messageDeadline) {
      this.messageDeadline = setTimeout(() => this.socket.destroy(), this.messageTimeoutMs);
      this.messageDeadline.unref();
    }
  }
}

/**
 * Open a TCP or TLS connection (RFC 3261 §18.1.1 / §18.2.2 when no connection can be reused).
 * TLS checks the peer certificate against `ca` (or the system roots) and `name`.
 */
export function connectSocket(opts: {
  transport: 'tcp' | 'tls';
  address: string;
  port: number;
  /** What the caller asked for before resolution: the TLS server name when it is not an IP. */
  name: string;
  ca?: string | Buffer | Array<string | Buffer>;
  timeoutMs: number;
}): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const { transport, address, port } = opts;
    const socket =
      transport === 'tls'
        ? tls.connect({ host: address, port, ca: opts.ca, servername: net.isIP(opts.name) ? undefined : opts.name })
        : net.connect({ host: address, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect to ${address}:${port} timed out`));
    }, opts.timeoutMs);
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
    socket.once(transport === 'tls' ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
  });
}
