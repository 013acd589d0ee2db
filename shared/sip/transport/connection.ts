/**
 * One stream connection (TCP, TLS or WebSocket) as the transport layer sees it: an id the upper
 * layers can name it by, its addresses, and a way to write a whole message.
 */
import type { Source, TransportName } from './types.ts';

export interface ConnectionEvents {
  /** One complete SIP message (bytes, not yet parsed). */
  message(conn: Connection, bytes: Buffer): void;
  /** The stream broke framing: answer if possible, then the connection closes. */
  framingError(conn: Connection, head: Buffer, reason: string, oversize: boolean): void;
  closed(conn: Connection): void;
}

export abstract class Connection {
  private idleTimer: NodeJS.Timeout | undefined;
  private closedNotified = false;

  constructor(
    readonly id: string,
    readonly transport: TransportName,
    readonly remoteAddress: string,
    readonly remotePort: number,
    readonly localAddress: string,
    readonly localPort: number,
    /** True when we opened it. */
    readonly outbound: boolean,
    protected readonly events: ConnectionEvents,
    private readonly idleTimeoutMs: number,
  ) {}

  abstract isOpen(): boolean;
  /** Write one serialized message; rejects when the connection is gone. */
  abstract send(bytes: Buffer): Promise<void>;
  /** Let queued writes go out, then close. */
  abstract close(): void;
  /** Close at once. */
  abstract destroy(): void;

  source(): Source {
    return {
      transport: this.transport,
      remoteAddress: this.remoteAddress,
      remotePort: this.remotePort,
      localAddress: this.localAddress,
      localPort: this.localPort,
      connectionId: this.id,
    };
  }

  /** Any traffic restarts the idle clock. */
  protected touch(): void {
    if (this.idleTimeoutMs <= 0) return;
    if (this.idleTimer) {
      this.idleTimer.refresh();
      return;
    }
    this.idleTimer = setTimeout(() => this.destroy(), this.idleTimeoutMs);
    this.idleTimer.unref();
  }

  /** Subclasses call this once the underlying socket is gone. */
  protected notifyClosed(): void {
    if (this.closedNotified) return;
    this.closedNotified = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.events.closed(this);
  }
}
