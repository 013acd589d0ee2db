/**
 * The edge's HTTP port (ADMIN_PORT): health (liveness and readiness), Prometheus metrics, the
 * operator console and its API (/api/*, behind the operator token), and the private control API
 * through which handlers reach this task (architecture.md: NOTIFY/BYE sending, MSRP delivery,
 * list changes).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { InDialogRequestSpec } from '#shared/events.ts';
import type { ChangeDetail, EdgeGateway } from '#shared/ports.ts';
import { consoleHtml, consoleScript } from './console/serve.ts';
import type { EdgeMetrics } from './edge-metrics.ts';
import type { FlowTrace } from './flow-trace.ts';
import type { OverloadGate, Refusal } from './overload-gate.ts';
import type { CheckOutcome } from './health.ts';
import { Operator, OperatorError } from './operator.ts';
import { authorized } from './operator-token.ts';
import type { TimeSeries } from './time-series.ts';

export interface AdminDeps {
  metrics: EdgeMetrics;
  series: TimeSeries;
  /** The flow ladder's ring; absent when FLOW_TRACE is off. */
  trace?: FlowTrace;
  /** Deposit over HTTP (the deposit handler's HTTP entry); absent in AWS, where the deposit function's URL serves it. */
  deposit?: (json: unknown) => Promise<{ statusCode: number; body: string; changedUsers: string[] }>;
  /** Admission of deposits, the same gate as SIP's handler work; absent: every deposit runs. */
  gate?: Pick<OverloadGate, 'refusal' | 'run'>;
  /** A deposit refused with 503 + Retry-After for load. */
  onShed?: (reason: Refusal) => void;
  /** Seconds a refused client is asked to wait (Retry-After). */
  retryAfterSeconds?: number;
  /** Operator reads and purges over the store; absent in AWS mode (the edge holds no store). */
  operator?: Operator;
  gateway: EdgeGateway;
  /** `change`: what the change fan-out knows of it (the watchers on this task, the summary revision). */
  userChanged: (user: string, change?: ChangeDetail) => Promise<void>;
  live: () => { ok: boolean; detail: Record<string, unknown> };
  ready: () => Promise<{ ok: boolean; checks: Record<string, CheckOutcome> }>;
  /** Current state for the console: store numbers, sessions, queue depths. */
  state: () => Promise<Record<string, unknown>>;
  /** The operator credential /api/* asks for (`Authorization: Bearer <token>`). */
  adminToken: string;
  edgeId: string;
  /** The bearer token /control/* calls must carry (CONTROL_TOKEN). */
  controlToken: string;
  maxBodyBytes?: number;
}

/** Constant-time comparison of an Authorization header with the expected bearer token. */
function bearerMatches(header: string | undefined, token: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return header !== undefined && timingSafeEqual(digest(header), digest(`Bearer ${token}`));
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpError(413, `body over ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new HttpError(400, 'empty body: JSON expected');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpError(400, 'body is not JSON');
  }
}

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = typeof body === 'string' && type !== 'application/json' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(text);
}

function field<T>(json: unknown, name: string, check: (v: unknown) => v is T): T {
  const value = (json as Record<string, unknown> | null)?.[name];
  if (!check(value)) throw new HttpError(400, `"${name}" missing or of the wrong type`);
  return value;
}
/** A field that may be absent; present, it must pass `check` (400 naming it otherwise). */
function optionalField<T>(json: unknown, name: string, check: (v: unknown) => v is T): T | undefined {
  const value = (json as Record<string, unknown> | null)?.[name];
  return value === undefined ? undefined : field(json, name, check);
}
const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

export class AdminServer {
  private server?: Server;

  constructor(private readonly deps: AdminDeps) {}

  async start(host: string, port: number): Promise<number> {
    this.server = createServer((req, res) => {
      this.route(req, res).catch((err: unknown) => {
        const status = err instanceof HttpError || err instanceof OperatorError ? err.status : 500;
        send(res, status, { error: err instanceof Error ? err.message : String(err) });
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => resolve());
    });
    return (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://edge');
    const limit = this.deps.maxBodyBytes ?? 1_048_576;
    const key = `${req.method} ${url.pathname}`;
    // The control API makes this task send SIP and deliver messages: only the handlers may call it.
    if (url.pathname.startsWith('/control/') && !bearerMatches(req.headers.authorization, this.deps.controlToken)) {
      res.setHeader('www-authenticate', 'Bearer realm="control"');
      throw new HttpError(401, 'control API: missing or wrong bearer token');
    }
    const q = url.searchParams;
    if (url.pathname.startsWith('/api/') && !authorized(req.headers.authorization, this.deps.adminToken)) {
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer realm="deferred-cpm"' });
      res.end(
        JSON.stringify({
          error: 'operator token required: Authorization: Bearer <token> (printed at start, in DATA_DIR/admin-token)',
        }),
      );
      return;
    }
    switch (key) {
      case 'GET /':
      case 'GET /console':
        return send(res, 200, consoleHtml(), 'text/html; charset=utf-8');
      case 'GET /console.js':
        return send(res, 200, await consoleScript(), 'text/javascript; charset=utf-8');
      case 'GET /health':
      case 'GET /health/live': {
        const h = this.deps.live();
        return send(res, h.ok ? 200 : 503, { status: h.ok ? 'ok' : 'stopping', edgeId: this.deps.edgeId, ...h.detail });
      }
      case 'GET /health/ready': {
        const r = await this.deps.ready();
        return send(res, r.ok ? 200 : 503, {
          status: r.ok ? 'ready' : 'not ready',
          edgeId: this.deps.edgeId,
          checks: r.checks,
        });
      }
      case 'GET /metrics':
        return send(res, 200, await this.deps.metrics.text(), this.deps.metrics.contentType);
      case 'GET /api/stats':
        return send(res, 200, await this.deps.state());
      case 'GET /api/series':
        return send(res, 200, this.deps.series.get());
      case 'GET /api/messages': {
        const op = this.operator();
        const user = requiredParam(q, 'user');
        const limitParam = q.get('limit');
        const pageLimit = limitParam === null ? undefined : Number(limitParam);
        const cursor = q.get('cursor') ?? undefined;
        return send(
          res,
          200,
          await op.list(user, {
            ...(pageLimit !== undefined ? { limit: pageLimit } : {}),
            ...(cursor ? { cursor } : {}),
          }),
        );
      }
      case 'GET /api/user':
        return send(res, 200, await this.operator().user(requiredParam(q, 'user')));
      case 'POST /api/purge': {
        const json = await readJson(req, limit);
        const user = field(json, 'user', isString);
        const id = (json as Record<string, unknown>).id;
        if (id !== undefined && !isString(id))
          throw new HttpError(400, '"id" must be a message id (or absent to purge all)');
        const all = (json as Record<string, unknown>).all === true;
        if (id === undefined && !all) throw new HttpError(400, '"id" missing: name one message, or set "all": true');
        return send(res, 200, await this.operator().purge(user, id));
      }
      case 'GET /api/flows': {
        if (!this.deps.trace) throw new HttpError(404, 'flow trace is off (FLOW_TRACE=on to keep one)');
        const callId = q.get('callId');
        return send(
          res,
          200,
          callId ? { callId, messages: this.deps.trace.flow(callId) } : { calls: this.deps.trace.calls() },
        );
      }
      case 'POST /api/deposit': {
        const deposit = this.deps.deposit;
        if (!deposit) throw new HttpError(404, 'deposits go to the deposit function URL in this deployment');
        // Issue 11 item 10: refused before the body is read or the store is touched; RFC 9110
        // §15.6.4 / §10.2.3: 503 with Retry-After, as SIP's 503 (RFC 3261 §21.5.4).
        const refusal = this.deps.gate?.refusal(false);
        if (refusal) {
          this.deps.onShed?.(refusal);
          res.writeHead(503, {
            'content-type': 'application/json',
            'retry-after': String(this.deps.retryAfterSeconds ?? 5),
            connection: 'close',
          });
          res.end(JSON.stringify({ error: 'overloaded: try again later' }));
          return;
        }
        const json = await readJson(req, limit);
        const result = await (this.deps.gate ? this.deps.gate.run(() => deposit(json)) : deposit(json));
        for (const user of result.changedUsers) void this.deps.userChanged(user);
        res.writeHead(result.statusCode, { 'content-type': 'application/json' });
        res.end(result.body);
        return;
      }
      case 'POST /control/send': {
        const spec = (await readJson(req, limit)) as InDialogRequestSpec;
        field(spec, 'method', isString);
        field(spec, 'dialog', isObject);
        return send(res, 200, await this.deps.gateway.send(this.deps.edgeId, spec));
      }
      case 'POST /control/deliver': {
        const json = await readJson(req, limit);
        const sessionId = field(json, 'sessionId', isString);
        const message = field(json, 'message', isObject);
        const id = field(message, 'id', isString);
        const cpim = Buffer.from(field(message, 'cpim', isString), 'base64');
        return send(res, 200, await this.deps.gateway.deliver(this.deps.edgeId, sessionId, { id, cpim }));
      }
      case 'POST /control/close': {
        const sessionId = field(await readJson(req, limit), 'sessionId', isString);
        await this.deps.gateway.closeSession(this.deps.edgeId, sessionId);
        return send(res, 200, { closed: sessionId });
      }
      case 'POST /control/user-changed': {
        const json = await readJson(req, limit);
        const user = field(json, 'user', isString);
        const dialogIds = optionalField(json, 'dialogIds', isStringArray);
        const revision = optionalField(json, 'revision', isCount);
        await this.deps.userChanged(user, {
          ...(dialogIds ? { dialogIds } : {}),
          ...(revision !== undefined ? { revision } : {}),
        });
        return send(res, 202, { accepted: user });
      }
      default:
        throw new HttpError(404, `no route ${key}`);
    }
  }

  private operator(): Operator {
    if (!this.deps.operator) throw new HttpError(404, 'no store behind this edge: read the messages table');
    return this.deps.operator;
  }
}

function requiredParam(q: URLSearchParams, name: string): string {
  const value = q.get(name);
  if (!value) throw new HttpError(400, `query parameter "${name}" missing`);
  return value;
}
