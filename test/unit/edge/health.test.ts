/** Readiness: each dependency named with its outcome; 503 on the admin port when one fails. */
import { afterEach, describe, expect, it } from 'vitest';
import { AdminServer } from '#functions/edge/admin-server.ts';
import { EdgeMetrics } from '#functions/edge/edge-metrics.ts';
import { runReadiness } from '#functions/edge/health.ts';
import { TimeSeries } from '#functions/edge/time-series.ts';

describe('runReadiness', () => {
  it('names a failing and a hanging check, and is not ready', async () => {
    const r = await runReadiness(
      [
        { name: 'store', run: async () => undefined },
        { name: 'queues', run: () => Promise.reject(new Error('connection refused')) },
        { name: 'handlers', run: () => new Promise(() => undefined) },
      ],
      100,
    );
    expect(r.ok).toBe(false);
    expect(r.checks.store?.ok).toBe(true);
    expect(r.checks.queues).toMatchObject({ ok: false, detail: 'connection refused' });
    expect(r.checks.handlers).toMatchObject({ ok: false, detail: 'no answer within 100 ms' });
  });
});

describe('admin port health', () => {
  let server: AdminServer | undefined;
  afterEach(async () => server?.stop());

  it('answers 503 on /health/ready while liveness stays 200, so the NLB keeps the task', async () => {
    const metrics = new EdgeMetrics();
    server = new AdminServer({
      metrics,
      series: new TimeSeries(metrics),
      gateway: {} as never,
      userChanged: async () => undefined,
      live: () => ({ ok: true, detail: {} }),
      ready: () =>
        runReadiness([{ name: 'handlers', run: () => Promise.reject(new Error('TooManyRequestsException')) }]),
      state: async () => ({}),
      adminToken: 'x'.repeat(20),
      controlToken: 'c'.repeat(40),
      edgeId: 'local',
    });
    const port = await server.start('127.0.0.1', 0);
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    const ready = await fetch(`http://127.0.0.1:${port}/health/ready`);
    expect(ready.status).toBe(503);
    const body = (await ready.json()) as { checks: Record<string, { ok: boolean; detail: string }> };
    expect(body.checks.handlers).toMatchObject({ ok: false, detail: 'TooManyRequestsException' });
  });
});
