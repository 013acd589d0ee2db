/**
 * End-to-end harness: the whole service in this process on free loopback ports with its own
 * data folder, outbound SIP limited to loopback. Tests talk to it over real sockets.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '#shared/config.ts';
import { connectMsrp, type MsrpClient } from '#shared/msrp/client.ts';
import { parseMsrpOffer } from '#shared/sdp/msrp-sdp.ts';
import type { SipResponse } from '#shared/sip/messages/index.ts';
import type { Policy } from '#shared/deferred/policy.ts';
import type { Timers } from '#shared/sip/transaction/index.ts';
import { startEdge, type EdgeOptions, type RunningEdge } from '#functions/edge/edge.ts';

export const loopbackOnly = (address: string): boolean => address.startsWith('127.') || address === '::1';

export const FREE_PORTS = {
  SIP_PORT: '0',
  SIPS_PORT: '0',
  SIP_WS_PORT: '0',
  MSRP_PORT: '0',
  ADMIN_PORT: '0',
};

/** The operator token the test edges run with (ADMIN_TOKEN), and the header that carries it. */
export const TEST_ADMIN_TOKEN = 'test-operator-token-0123456789';
export const ADMIN_AUTH = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

export interface TestEdge extends RunningEdge {
  dataDir: string;
  adminUrl: string;
  /** Stop the edge and remove its data folder. */
  close(): Promise<void>;
}

export async function startTestEdge(
  opts: {
    policy?: Partial<Policy>;
    timers?: Partial<Timers>;
    env?: Record<string, string>;
    sweepIntervalMs?: number;
    seriesIntervalMs?: number;
    dataDir?: string;
    /** The edge's log lines (tests wait on events such as a connection closing). */
    log?: EdgeOptions['log'];
  } = {},
): Promise<TestEdge> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'deferred-e2e-')));
  const config = loadConfig({ DATA_DIR: dataDir, ...FREE_PORTS, ADMIN_TOKEN: TEST_ADMIN_TOKEN, ...opts.env });
  const edge = await startEdge({
    config,
    allowDestination: loopbackOnly,
    ...(opts.policy ? { policy: opts.policy } : {}),
    ...(opts.timers ? { timers: opts.timers } : {}),
    ...(opts.sweepIntervalMs ? { sweepIntervalMs: opts.sweepIntervalMs } : {}),
    ...(opts.seriesIntervalMs ? { seriesIntervalMs: opts.seriesIntervalMs } : {}),
    ...(opts.log ? { log: opts.log } : {}),
  });
  return {
    ...edge,
    dataDir,
    adminUrl: `http://127.0.0.1:${edge.ports.admin}`,
    close: async () => {
      await edge.stop();
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Connect to the MSRP path of an INVITE's 200 (step 14) and wait for the first message: its
 * body, and the connection to close once the test is done with it.
 */
export async function firstDelivery(inv: {
  response: SipResponse;
  msrpPath: string;
}): Promise<{ body: Buffer; msrp: MsrpClient }> {
  const answer = parseMsrpOffer(inv.response.body.toString('utf8'));
  if (!answer.ok) throw new Error(answer.reason);
  let gotBody: (b: Buffer) => void = () => undefined;
  const got = new Promise<Buffer>((resolve) => (gotBody = resolve));
  const msrp = await connectMsrp({
    localPath: inv.msrpPath,
    remotePath: answer.path,
    onMessage: (m) => gotBody(m.body),
  });
  return { body: await got, msrp };
}

/**
 * In-dialog requests (NOTIFY, BYE) the edge sent whose transaction ended with a response of
 * `statusClass` (`2xx`; `4xx` for a Timer F 408): its `sip_requests_sent_total`.
 */
export async function sentCount(edge: RunningEdge, method: string, statusClass: string): Promise<number> {
  const { values } = await edge.metrics.sipRequestsSent.get();
  return values
    .filter((v) => v.labels.method === method && v.labels.status_class === statusClass)
    .reduce((n, v) => n + v.value, 0);
}

/** Client transactions (NOTIFY, BYE) of the edge still waiting for their final response. */
export async function pendingClientTransactions(edge: RunningEdge): Promise<number> {
  const m = /^sip_transactions\{side="client"\} (\d+)$/m.exec(await edge.metrics.text());
  return Number(m?.[1] ?? 0);
}

/** Resolves once `check` says yes (polled every 50 ms); rejects naming `what` after `timeoutMs`. */
export async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not seen within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** What the operator API answers a deposit: the stored id, or an error naming the field. */
export interface DepositReply {
  id: string;
  error?: string;
  [key: string]: unknown;
}

/** Deposit over the operator API; resolves with the HTTP status and JSON body. */
export async function depositHttp(
  adminUrl: string,
  body: Record<string, unknown>,
): Promise<{ status: number; json: DepositReply }> {
  const res = await fetch(`${adminUrl}/api/deposit`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...ADMIN_AUTH },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as DepositReply };
}

export async function pendingOf(
  adminUrl: string,
  user: string,
): Promise<{ total: number; entries: { id: string; messageId: string }[] }> {
  const res = await fetch(`${adminUrl}/api/messages?user=${encodeURIComponent(user)}`, { headers: ADMIN_AUTH });
  return (await res.json()) as { total: number; entries: { id: string; messageId: string }[] };
}

export interface ChildEdge {
  child: ChildProcess;
  ports: Record<string, number>;
  output: () => string;
}

/**
 * What `npm start` runs, the bundle dist/edge/main.js (built by the globalSetup), as a separate
 * process (for signals and SIGKILL tests); resolves once it printed its ports.
 */
export function spawnEdge(env: Record<string, string>): Promise<ChildEdge> {
  const child = spawn(process.execPath, ['dist/edge/main.js'], {
    env: { ...process.env, ...FREE_PORTS, ADMIN_TOKEN: TEST_ADMIN_TOKEN, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`edge did not start:\n${out}`)), 30_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m =
        /SIP UDP (\d+)\s+TCP (\d+)\s+TLS (\d+)\s+WS (\d+)[\s\S]*MSRP (\d+)[\s\S]*admin http:\/\/[^:]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({
          child,
          ports: { udp: +m[1]!, tcp: +m[2]!, tls: +m[3]!, ws: +m[4]!, msrp: +m[5]!, admin: +m[6]! },
          output: () => out,
        });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`edge exited with ${code}:\n${out}`));
    });
  });
}
