/**
 * A WebSocket connection carrying SIP (RFC 7118): each WebSocket message holds exactly one SIP
 * message (§5.1), so no stream framing is needed.
 */
import { isUtf8 } from 'node:buffer';
import type { WebSocket, RawData } from 'ws';
import { Connection } from './connection.ts';
import type { ConnectionEvents } from './connection.ts';
import type { TransportName } from './types.ts';

export interface WsConnectionOptions {
  id: string;
  transport: Extract<TransportName, 'ws' | 'wss'>;
  socket: WebSocket;
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  idleTimeoutMs: number;
  /** Its writes held unsent above which the peer is deemed not reading (UNSENT_MESSAGES × the message limit). */
  maxUnsentBytes: number;
  events: ConnectionEvents;
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

export class WsConnection extends Connection {
  private readonly ws: WebSocket;
  private readonly maxUnsentBytes: number;

  constructor(opts: WsConnectionOptions) {
    super(
      opts.id,
      opts.transport,
      opts.remoteAddress,
      opts.remotePort,
      opts.localAddress,
      opts.localPort,
      false,
      opts.events,
      opts.idleTimeoutMs,
    );
    this.ws = opts.socket;
    this.maxUnsentBytes = opts.maxUnsentBytes;
    this.ws.on('message', (data: RawData) => {
      this.touch();
      this.events.message(this, toBuffer(data));
    });
    this.ws.on('error', () => this.ws.terminate());
    this.ws.on('close', () => this.notifyClosed());
    this.touch();
  }

  isOpen(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  send(bytes: Buffer): Promise<void> {
    if (!this.isOpen()) return Promise.reject(new Error(`connection ${this.id} is closed`));
    if (this.ws.bufferedAmount > this.maxUnsentBytes) {
      // As for TCP (socket-connection.ts): a peer that does not read is dropped (RFC 3261 §17.2.4).
      this.ws.terminate();
      return Promise.reject(new Error(`connection ${this.id}: peer not reading; closed`));
    }
    this.touch();
    // RFC 7118 §5.1: SIP messages go as text frames when they are valid UTF-8; binary otherwise.
    const binary = !isUtf8(bytes);
    return new Promise((resolve, reject) => {
      this.ws.send(bytes, { binary }, (err) => (err ? reject(err) : resolve()));
    });
  }

  close(): void {
    this.ws.close(1000);
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }

  destroy(): void {
    this.ws.terminate();
  }
}
