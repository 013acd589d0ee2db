/**
 * A TCP or TLS connection carrying SIP (RFC 3261 §18.3): Content-Length framing through
 * `StreamFramer`, CRLF keep-alive pongs (RFC 5626 §3.5.1), idle close.
 *
 * One read can hold hundreds of messages (libuv reads up to 32 x 64 KiB per wake-up after the
 * loop was away): they are handled in slices of HANDLING_SLICE_MS, as datagrams are, the socket
 * paused in between, so the answers whose commit became durable meanwhile go out between slices
 * instead of after the whole read, and what waits, waits in the peer's send buffer (TCP flow
 * control). The writes of one loop turn leave in one writev (corked until the turn's check
 * phase): a SUBSCRIBE's 200 and its NOTIFY, and those of every commit made durable in the same
 * turn, are one syscall and one wake-up of the peer, not two per flow.
 */
import net from 'node:net';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import { Connection } from './connection.ts';
import type { ConnectionEvents } from './connection.ts';
import { StreamFramer } from './stream-framer.ts';
import type { FramerEvent } from './stream-framer.ts';
import { HANDLING_SLICE_MS } from './types.ts';
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
  /** Framed and not yet handled, from `head` on; the socket is paused while any wait. */
  private framed: FramerEvent[] = [];
  private head = 0;
  private draining = false;
  /** The stream broke framing: reading stays paused for good. */
  private stopped = false;
  /** Writes are being gathered for one writev in this turn's check phase. */
  private corked = false;

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
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      // In this turn's check phase: after the handlers and the promise jobs of what was read.
      setImmediate(this.uncork);
    }
    return new Promise((resolve, reject) => {
      this.socket.write(bytes, (err) => (err ? reject(err) : resolve()));
    });
  }

  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

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
    for (const event of this.framer.push(chunk)) this.framed.push(event);
    this.watchIncomplete();
    if (!this.draining) this.drain();
  }

  /** Handle framed messages, oldest first, for one slice; the rest after the loop turns. */
  private readonly drain = (): void => {
    const until = performance.now() + HANDLING_SLICE_MS;
    while (this.head < this.framed.length) {
      const event = this.framed[this.head]!;
      this.framed[this.head++] = undefined as unknown as FramerEvent;
      if (event.kind === 'message') this.events.message(this, event.bytes);
      else if (event.kind === 'ping') {
        if (this.isOpen()) this.socket.write(PONG);
      } else {
        this.stopped = true;
        this.socket.pause();
        this.events.framingError(this, event.head, event.reason, event.oversize);
      }
      if (performance.now() >= until) break;
    }
    if (this.head < this.framed.length) {
      if (!this.draining) {
        this.draining = true;
        this.socket.pause();
      }
      setImmediate(this.drain);
      return;
    }
    this.framed = [];
    this.head = 0;
    if (this.draining) {
      this.draining = false;
      if (!this.stopped) this.socket.resume();
    }
  };

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
