/**
 * Issue 11 item 10 on the HTTP side: a deposit over the admin API is new work like a SIP MESSAGE,
 * behind the same gate. Above it the answer is 503 + Retry-After before the body is read and
 * without a store call. Real HTTP on 127.0.0.1.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { EdgeGateway } from '#shared/ports.ts';
import { AdminServer } from '#functions/edge/admin-server.ts';
import { EdgeMetrics } from '#functions/edge/edge-metrics.ts';
import { OverloadGate } from '#functions/edge/overload-gate.ts';
import { TimeSeries } from '#functions/edge/time-series.ts';

const TOKEN = 'a'.repeat(20);
let server: AdminServer | undefined;
let gate: OverloadGate | undefined;
afterEach(async () => {
  gate?.stop();
  await server?.stop();
});

describe('HTTP deposits above MAX_IN_FLIGHT', () => {
  it('get 503 + Retry-After without reaching the store; capacity back, they are stored again', async () => {
    gate = new OverloadGate({ maxInFlight: 1, maxLagMs: 60_000 });
    const deposited: unknown[] = [];
    let release: () => void = () => undefined;
    const slow = new Promise<void>((resolve) => (release = resolve));
    const shed: string[] = [];
    const metrics = new EdgeMetrics();
    server = new AdminServer({
      metrics,
      series: new TimeSeries(metrics),
      gateway: {} as EdgeGateway,
      deposit: async (json) => {
        deposited.push(json);
        if (deposited.length === 1) await slow;
        return { statusCode: 201, body: '{}', changedUsers: [] };
      },
      gate,
      onShed: (reason) => shed.push(reason),
      retryAfterSeconds: 5,
      userChanged: async () => undefined,
      live: () => ({ ok: true, detail: {} }),
      ready: async () => ({ ok: true, checks: {} }),
      state: async () => ({}),
      adminToken: TOKEN,
      edgeId: 'local',
      controlToken: 'k'.repeat(40),
    });
    const url = `http://127.0.0.1:${await server.start('127.0.0.1', 0)}/api/deposit`;
    const post = (n: number) =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify({ n }),
      });
    const first = post(1);
    while (deposited.length === 0) await new Promise((r) => setTimeout(r, 5));
    const refused = await post(2);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(deposited).toEqual([{ n: 1 }]);
    expect(shed).toEqual(['in-flight']);
    release();
    expect((await first).status).toBe(201);
    expect((await post(3)).status).toBe(201);
    expect(deposited).toEqual([{ n: 1 }, { n: 3 }]);
  });
});
