/**
 * One MSRP TCP connection (RFC 4975 §5.4, §7): frames bytes with MsrpParser, writes frames,
 * and tracks the requests we sent until their transaction response arrives.
 * Shared by the service's listener and the test/demo client.
 */
import type { Socket } from 'node:net';
import { FixedDelayTimers } from '#shared/sip/transaction/timers.ts';
import {
  MsrpParser,
  type MsrpMalformed,
  type MsrpParserLimits,
  type MsrpRequest,
  type MsrpResponse,
} from './framing.ts';

export interface MsrpConnectionHandlers {
  onRequest(request: MsrpRequest): void;
  onMalformed(frame: MsrpMalformed): void;
  /** A frame error or a socket error/close; fired once. */
  onClose(reason: string): void;
}

/** Settles with the peer's status, or 408 on timeout or closed connection. */
interface PendingTransaction {
  transactionId: string;
  resolve(status: number): void;
  /** What it was sent for (abandon). */
  owner: object | undefined;
}

/** RFC 4975 §10.4: 408, what a transaction without a response (or without a connection) ends with. */
export const NO_RESPONSE_STATUS = 408;

/** Frames a turn queued up to this many bytes are copied into one buffer; more go as they are. */
const OUTBOX_JOIN_BYTES = 64 * 1024;

/** Connections with frames queued this turn, flushed together. */
const flushQueue: MsrpConnection[] = [];
let flushScheduled = false;

/**
 * The flush runs as a tick queued by a promise job: after every promise job of the turn (a job
 * queued meanwhile runs first: V8 drains the whole queue before Node's next ticks), so SENDs
 * that promises release in a chain still leave with the frames written before them; no
 * immediate, no extra turn of the loop.
 */
function queueFlush(connection: MsrpConnection): void {
  flushQueue.push(connection);
  if (!flushScheduled) {
    flushScheduled = true;
    queueMicrotask(scheduleFlush);
  }
}

function scheduleFlush(): void {
  process.nextTick(flushQueued);
}

function flushQueued(): void {
  flushScheduled = false;
  // A flush queues nothing (writes complete later), so the queue is final here.
  for (let i = 0; i < flushQueue.length; i++) flushQueue[i]!.flush();
  flushQueue.length = 0;
}

export class MsrpConnection {
  private readonly parser: MsrpParser;
  private readonly pending = new Map<string, PendingTransaction>();
  /**
   * The transactions' timeouts, by duration (one in practice: a listener's or a client's): one
   * Node timer for all the SENDs in flight, not one set and cleared per SEND. Each expiry checks
   * that its transaction is still the one waiting; all go with the connection.
   */
  private readonly timeouts = new Map<number, FixedDelayTimers<PendingTransaction>>();
  private closedReason: string | undefined;
  /** Frames written this turn, sent together by flush(). */
  private outbox: Array<Buffer | string> = [];
  private readonly socketListeners = {
    data: (data: Buffer) => this.onData(data),
    end: () => this.onEnd(),
    error: (err: Error) => this.shutdown(`socket error: ${err.message}`),
    close: () => this.shutdown('connection closed'),
  };

  constructor(
    readonly socket: Socket,
    private readonly handlers: MsrpConnectionHandlers,
    limits: MsrpParserLimits = {},
  ) {
    this.parser = new MsrpParser(limits);
    socket.on('data', this.socketListeners.data);
    socket.on('end', this.socketListeners.end);
    socket.on('error', this.socketListeners.error);
    socket.on('close', this.socketListeners.close);
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  /** `host:port` of the peer, for logs. */
  get peer(): string {
    return `${this.socket.remoteAddress}:${this.socket.remotePort}`;
  }

  /**
   * Queue a frame; false when the connection is already gone. The frames of one turn (a session's
   * pipelined SENDs with the 200 to the SEND that bound it, the answers to one read) leave
   * together, in one write, once the turn's callbacks and promise jobs are done (RFC 4975 §7.1
   * allows any number of transactions in flight). A string is written as UTF-8.
   */
  write(frame: Buffer | string): boolean {
    if (this.closed || this.socket.destroyed) return false;
    if (this.outbox.length === 0) queueFlush(this);
    this.outbox.push(frame);
    return true;
  }

  /** Write what the turn queued, in one write (several only above OUTBOX_JOIN_BYTES). */
  flush(): void {
    const frames = this.outbox;
    if (frames.length === 0) return;
    this.outbox = [];
    const socket = this.socket;
    if (socket.destroyed) return;
    if (frames.length === 1) {
      socket.write(frames[0]!);
      return;
    }
    let size = 0;
    let text = true;
    for (const frame of frames) {
      if (typeof frame === 'string') size += Buffer.byteLength(frame);
      else {
        size += frame.length;
        text = false;
      }
    }
    if (text) {
      socket.write(frames.join(''));
    } else if (size > OUTBOX_JOIN_BYTES) {
      // Large chunks: handed over as they are (one writev), not copied.
      socket.cork();
      for (const frame of frames) socket.write(frame);
      socket.uncork();
    } else {
      const joined = Buffer.allocUnsafe(size);
      let at = 0;
      for (const frame of frames) {
        if (typeof frame === 'string') at += joined.write(frame, at);
        else {
          joined.set(frame, at);
          at += frame.length;
        }
      }
      socket.write(joined);
    }
  }

  /**
   * Send a request and wait for its transaction response (RFC 4975 §7.1): resolves with the
   * response's status, or 408 when none arrives within `timeoutMs`, the connection closes or
   * `owner` (what it is sent for) is abandoned.
   */
  transact(transactionId: string, frame: Buffer, timeoutMs: number, owner?: object): Promise<number> {
    return new Promise((resolve) => {
      if (!this.write(frame)) {
        resolve(NO_RESPONSE_STATUS);
        return;
      }
      const entry: PendingTransaction = { transactionId, resolve, owner };
      this.pending.set(transactionId, entry);
      this.timeoutsOf(timeoutMs).add(entry);
    });
  }

  /**
   * End with 408 every transaction sent for `owner` still waiting (its session ended: whatever
   * answer comes later is not waited for, RFC 4975 §7.1); the connection stays.
   */
  abandon(owner: object): void {
    for (const [id, entry] of this.pending) if (entry.owner === owner) this.settle(id, NO_RESPONSE_STATUS);
  }

  private timeoutsOf(ms: number): FixedDelayTimers<PendingTransaction> {
    let timers = this.timeouts.get(ms);
    if (!timers) {
      timers = new FixedDelayTimers<PendingTransaction>(
        ms,
        (entry) => {
          if (this.pending.get(entry.transactionId) === entry) this.settle(entry.transactionId, NO_RESPONSE_STATUS);
        },
        () => undefined,
      );
      this.timeouts.set(ms, timers);
    }
    return timers;
  }

  /** Stop every timeout (the connection is done with; what waited has been settled). */
  private stopTimeouts(): void {
    for (const timers of this.timeouts.values()) timers.clear();
    this.timeouts.clear();
  }

  /**
   * Stop reading frames from the socket and hand it over, open (the listener's relay pipes it
   * on to the session's owner). No further frame is handled, not even the rest of the current
   * read; pending transactions end with 408; `onClose` is not called.
   */
  release(): Socket {
    this.flush();
    if (this.closedReason === undefined) {
      this.closedReason = 'released';
      for (const id of [...this.pending.keys()]) this.settle(id, NO_RESPONSE_STATUS);
    }
    this.stopTimeouts();
    this.socket.off('data', this.socketListeners.data);
    this.socket.off('end', this.socketListeners.end);
    this.socket.off('error', this.socketListeners.error);
    this.socket.off('close', this.socketListeners.close);
    return this.socket;
  }

  /** Close the socket once what was written is handed to it; pending transactions end with 408. */
  close(reason = 'closed locally'): void {
    if (this.closedReason === undefined) this.flush();
    this.shutdown(reason);
  }

  private settle(transactionId: string, status: number): boolean {
    const entry = this.pending.get(transactionId);
    if (!entry) return false;
    this.pending.delete(transactionId);
    entry.resolve(status);
    return true;
  }

  private onData(data: Buffer): void {
    const { items, error } = this.parser.push(data);
    try {
      for (const item of items) {
        if (this.closed) return;
        if (item.kind === 'response') this.onResponse(item);
        else if (item.kind === 'request') this.handlers.onRequest(item);
        else this.handlers.onMalformed(item);
      }
    } catch (err) {
      // Nothing may escape a socket event handler; a failing handler costs the connection.
      this.shutdown(`handler failure: ${(err as Error).message}`);
      return;
    }
    if (error) this.shutdown(`framing error (${error.code}): ${error.message}`);
  }

  /**
   * The peer closed its side. MSRP has no use for a half-closed connection (RFC 4975 §5.4: the
   * sessions of a connection that ends have failed), so ours closes now, not after a shutdown of
   * our side and a turn of the loop for it. Frames queued are written first; if the socket cannot take them at once, it ends
   * the usual way once they are out.
   */
  private onEnd(): void {
    if (this.closed) return;
    this.flush();
    if (this.socket.writableLength > 0) {
      this.socket.end();
      return;
    }
    this.shutdown('connection closed');
  }

  private onResponse(response: MsrpResponse): void {
    // Responses match our requests by transaction id (RFC 4975 §7.2); late or unknown ones are dropped.
    this.settle(response.transactionId, response.status);
  }

  private shutdown(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    for (const id of [...this.pending.keys()]) this.settle(id, NO_RESPONSE_STATUS);
    this.stopTimeouts();
    if (!this.socket.destroyed) this.socket.destroy();
    this.handlers.onClose(reason);
  }
}
