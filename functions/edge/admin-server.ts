/**
 * The edge's HTTP port (ADMIN_PORT): health, metrics and the operator dashboard; the operator
 * deposit API; and the private control API through which handlers reach this task (architecture.md:
 * NOTIFY/BYE sending, MSRP delivery, list changes).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { InDialogRequestSpec } from '#shared/events.ts';
import type { EdgeGateway } from '#shared/ports.ts';
import type { Counters } from './counters.ts';
import { dashboardHtml } from './dashboard.ts';

export interface AdminDeps {
  counters: Counters;
  /** Deposit over HTTP (the deposit handler's HTTP entry); absent in AWS, where the deposit function's URL serves it. */
  deposit?: (json: unknown) => Promise<{ statusCode: number; body: string; changedUsers: string[] }>;
  /** The user's pending list for operators (metadata only, never the payload). */
  listUser?: (user: string) => Promise<unknown>;
  gateway: EdgeGateway;
  userChanged: (user: string) => Promise<void>;
  health: () => { ok: boolean; detail: Record<string, unknown> };
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
const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

export class AdminServer {
  private server?: Server;

  constructor(private readonly deps: AdminDeps) {}

  async start(host: string, port: number): Promise<number> {
    this.server = createServer((req, res) => {
      this.route(req, res).catch((err: unknown) => {
        const status = err instanceof HttpError ? err.status : 500;
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
    switch (key) {
      case 'GET /':
      case 'GET /dashboard':
        return send(res, 200, dashboardHtml(), 'text/html; charset=utf-8');
      case 'GET /health': {
        const h = this.deps.health();
        return send(res, h.ok ? 200 : 503, { status: h.ok ? 'ok' : 'degraded', edgeId: this.deps.edgeId, ...h.detail });
      }
      case 'GET /metrics':
        return send(res, 200, this.deps.counters.prometheus(), 'text/plain; version=0.0.4');
      case 'GET /api/stats':
        return send(res, 200, this.deps.counters.snapshot());
      case 'GET /api/messages': {
        if (!this.deps.listUser) throw new HttpError(404, 'no store behind this edge: read the messages table');
        const user = url.searchParams.get('user');
        if (!user) throw new HttpError(400, 'query parameter "user" missing');
        return send(res, 200, await this.deps.listUser(user));
      }
      case 'POST /api/deposit': {
        if (!this.deps.deposit) throw new HttpError(404, 'deposits go to the deposit function URL in this deployment');
        const result = await this.deps.deposit(await readJson(req, limit));
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
        const user = field(await readJson(req, limit), 'user', isString);
        await this.deps.userChanged(user);
        return send(res, 202, { accepted: user });
      }
      default:
        throw new HttpError(404, `no route ${key}`);
    }
  }
}
