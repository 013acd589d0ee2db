/**
 * EdgeGateway and ChangeFeed over HTTP to an edge task's private control API. The edge id is
 * the task's base URL (e.g. `http://10.0.1.23:8080`), recorded with the flow or session it owns.
 *
 *   POST /control/send          InDialogRequestSpec               -> { status, retryAfter? }
 *   POST /control/deliver       { sessionId, message: { id, cpim: base64 } } -> { status }
 *   POST /control/close         { sessionId }
 *   POST /control/user-changed  { user, dialogIds?, revision? }
 *
 * Any failure (no answer in time, connection refused, non-2xx, a malformed answer) is thrown to
 * the caller: a failed deliver must leave the message deferred, and the SQS job is retried.
 */
import type { InDialogRequestSpec } from '../events.ts';
import type { ChangeDetail, ChangeFeed, EdgeGateway, SubscriptionStore } from '../ports.ts';

export interface EdgeHttpOptions {
  /**
   * NOTIFY/BYE: the edge answers once the non-INVITE transaction ends, at most Timer F
   * = 64*T1 = 32 s later (RFC 3261 §17.1.2.2). Default 40 000 ms.
   */
  sendTimeoutMs?: number;
  /** Deliver waits up to 30 s for the client's MSRP connection, then the transfer (protocol.md). Default 60 000 ms. */
  deliverTimeoutMs?: number;
  /** close. Default 5 000 ms. */
  controlTimeoutMs?: number;
  /**
   * user-changed, the fan-out a deposit, an INVITE's deletes or a delivery ends with. A task that
   * is gone (replaced, scaled in) answers nothing at its old address: give up on it after this,
   * without retrying a timeout, so the caller's answer never waits long on a dead edge.
   * Default 1 000 ms.
   */
  fanOutTimeoutMs?: number;
  /** Further attempts after a retryable failure. Default 2. */
  retries?: number;
  /** Pause before the first retry, doubling each time. Default 200 ms. */
  retryDelayMs?: number;
  /** The edges' CONTROL_TOKEN, sent as a bearer token on every call. */
  controlToken?: string;
}

/** A control call that did not complete. */
export class EdgeControlError extends Error {
  constructor(
    message: string,
    readonly edgeId: string,
    readonly route: string,
    /** The HTTP status when the edge answered with one. */
    readonly httpStatus?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'EdgeControlError';
  }
}

interface CallSpec {
  timeoutMs: number;
  /**
   * Safe to repeat after a timeout or a dropped connection (the edge may have acted). Calls that
   * send something to a client are retried only when the edge surely did nothing: connection
   * refused, or 503.
   */
  idempotent: boolean;
}

export class EdgeHttpGateway implements EdgeGateway {
  private readonly sendTimeoutMs: number;
  private readonly deliverTimeoutMs: number;
  private readonly controlTimeoutMs: number;
  private readonly fanOutTimeoutMs: number;
  private readonly retries: number;
  private readonly retryDelayMs: number;
  private readonly headers: Record<string, string>;

  constructor(options: EdgeHttpOptions = {}) {
    this.headers = {
      'content-type': 'application/json',
      ...(options.controlToken ? { authorization: `Bearer ${options.controlToken}` } : {}),
    };
    this.sendTimeoutMs = options.sendTimeoutMs ?? 40_000;
    this.deliverTimeoutMs = options.deliverTimeoutMs ?? 60_000;
    this.controlTimeoutMs = options.controlTimeoutMs ?? 5_000;
    this.fanOutTimeoutMs = options.fanOutTimeoutMs ?? 1_000;
    this.retries = Math.max(0, options.retries ?? 2);
    this.retryDelayMs = options.retryDelayMs ?? 200;
  }

  async send(edgeId: string, request: InDialogRequestSpec): Promise<{ status: number; retryAfter?: number }> {
    const answer = await this.call(edgeId, '/control/send', request, {
      timeoutMs: this.sendTimeoutMs,
      idempotent: false,
    });
    const status = statusOf(answer, edgeId, '/control/send');
    const retryAfter = (answer as { retryAfter?: unknown }).retryAfter;
    if (typeof retryAfter === 'number' && Number.isFinite(retryAfter) && retryAfter >= 0) {
      return { status, retryAfter };
    }
    return { status };
  }

  async deliver(
    edgeId: string,
    sessionId: string,
    message: { id: string; cpim: Uint8Array },
  ): Promise<{ status: number }> {
    const body = {
      sessionId,
      message: { id: message.id, cpim: Buffer.from(message.cpim).toString('base64') },
    };
    const answer = await this.call(edgeId, '/control/deliver', body, {
      timeoutMs: this.deliverTimeoutMs,
      idempotent: false,
    });
    return { status: statusOf(answer, edgeId, '/control/deliver') };
  }

  async closeSession(edgeId: string, sessionId: string): Promise<void> {
    await this.call(edgeId, '/control/close', { sessionId }, { timeoutMs: this.controlTimeoutMs, idempotent: true });
  }

  /**
   * Tell one edge that a user's list changed (it NOTIFYs the watchers it holds), with what the
   * caller knows of the change: the watchers on that edge it read (the NOTIFYs need not list them
   * again) and the summary revision the change left (their count may be read eventually consistent).
   */
  async userChanged(edgeId: string, user: string, change: ChangeDetail = {}): Promise<void> {
    // Not retried after a timeout (idempotent: false): only a refused connection or a 503 is.
    await this.call(
      edgeId,
      '/control/user-changed',
      { user, ...change },
      {
        timeoutMs: this.fanOutTimeoutMs,
        idempotent: false,
      },
    );
  }

  private async call(edgeId: string, route: string, body: unknown, spec: CallSpec): Promise<unknown> {
    const url = edgeId.replace(/\/+$/, '') + route;
    let delay = this.retryDelayMs;
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.attempt(url, edgeId, route, body, spec);
      if (outcome.ok) return outcome.value;
      if (!outcome.retryable || attempt >= this.retries) throw outcome.error;
      await new Promise((r) => setTimeout(r, delay));
      delay *= 2;
    }
  }

  private async attempt(
    url: string,
    edgeId: string,
    route: string,
    body: unknown,
    spec: CallSpec,
  ): Promise<{ ok: true; value: unknown } | { ok: false; retryable: boolean; error: EdgeControlError }> {
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: this.headers,
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(spec.timeoutMs),
      });
    } catch (err) {
      const timedOut = err instanceof DOMException && err.name === 'TimeoutError';
      const refused = causeCode(err) === 'ECONNREFUSED';
      const what = timedOut
        ? `no answer within ${spec.timeoutMs} ms`
        : `unreachable (${causeCode(err) ?? String(err)})`;
      return {
        ok: false,
        retryable: refused || spec.idempotent,
        error: new EdgeControlError(`edge ${edgeId} ${route}: ${what}`, edgeId, route, undefined, { cause: err }),
      };
    }
    let text: string;
    try {
      text = await response.text();
    } catch (err) {
      return {
        ok: false,
        retryable: spec.idempotent,
        error: new EdgeControlError(`edge ${edgeId} ${route}: answer cut short`, edgeId, route, response.status, {
          cause: err,
        }),
      };
    }
    if (!response.ok) {
      // 503: the edge did not take the call (starting, draining, overloaded).
      const retryable =
        response.status === 503 || (spec.idempotent && (response.status === 502 || response.status === 504));
      return {
        ok: false,
        retryable,
        error: new EdgeControlError(
          `edge ${edgeId} ${route}: HTTP ${response.status}${text ? ` ${text.slice(0, 200)}` : ''}`,
          edgeId,
          route,
          response.status,
        ),
      };
    }
    if (text.trim() === '') return { ok: true, value: {} };
    try {
      return { ok: true, value: JSON.parse(text) as unknown };
    } catch (err) {
      return {
        ok: false,
        retryable: false,
        error: new EdgeControlError(`edge ${edgeId} ${route}: answer is not JSON`, edgeId, route, response.status, {
          cause: err,
        }),
      };
    }
  }
}

/** The SIP/MSRP status in an answer: an integer 100-699, or the call failed. */
function statusOf(answer: unknown, edgeId: string, route: string): number {
  const status = typeof answer === 'object' && answer !== null ? (answer as { status?: unknown }).status : undefined;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 699) {
    throw new EdgeControlError(`edge ${edgeId} ${route}: answer has no valid status`, edgeId, route, 200);
  }
  return status;
}

function causeCode(err: unknown): string | undefined {
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  return typeof cause?.code === 'string' ? cause.code : undefined;
}

export interface EdgeChangeFeedOptions {
  /** Epoch milliseconds. */
  now?: () => number;
  /**
   * The summary revisions the process's own store writes left (the DynamoDB store's
   * `revisions`): passed on with the change, so its NOTIFYs may read the count eventually consistent.
   */
  revisions?: { latest(user: string): number | undefined };
  /** An edge that could not be told. Default: a line on stderr. */
  onError?: (edgeId: string, err: unknown) => void;
}

/**
 * ChangeFeed over the edges' control API: each distinct edge holding one of the user's
 * subscription flows is told once, with the dialogs of the watchers it holds; that edge NOTIFYs
 * them (without listing the user's subscriptions again: one read per change). Best effort: an unreachable
 * edge is reported through `onError` and the others are still told, because the change itself
 * is already stored and a watcher misses at most one NOTIFY until the next change or refresh.
 */
export class EdgeChangeFeed implements ChangeFeed {
  private readonly now: () => number;
  private readonly onError: (edgeId: string, err: unknown) => void;
  private readonly revisions: EdgeChangeFeedOptions['revisions'];

  constructor(
    private readonly subscriptions: Pick<SubscriptionStore, 'listByUser'>,
    private readonly gateway: Pick<EdgeHttpGateway, 'userChanged'>,
    options: EdgeChangeFeedOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.onError = options.onError ?? ((edgeId, err) => console.warn(`user-changed to ${edgeId}: ${String(err)}`));
    this.revisions = options.revisions;
  }

  async userChanged(user: string): Promise<void> {
    const subs = await this.subscriptions.listByUser(user, Math.floor(this.now() / 1000));
    const byEdge = new Map<string, string[]>();
    for (const s of subs) {
      const held = byEdge.get(s.dialog.flow.edgeId);
      if (held) held.push(s.dialogId);
      else byEdge.set(s.dialog.flow.edgeId, [s.dialogId]);
    }
    const revision = this.revisions?.latest(user);
    await Promise.all(
      [...byEdge].map(([edgeId, dialogIds]) =>
        this.gateway
          .userChanged(edgeId, user, { dialogIds, ...(revision !== undefined ? { revision } : {}) })
          .catch((err: unknown) => this.onError(edgeId, err)),
      ),
    );
  }
}
