/**
 * The admin port as an operator meets it: Prometheus metrics with HELP/TYPE and histograms,
 * liveness and readiness, the operator token, the list API's paging, purges.
 */
import { stat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_AUTH, depositHttp, startTestEdge, type TestEdge } from './support.ts';

const ALICE = 'sip:alice@example.com';
let edge: TestEdge;

beforeAll(async () => {
  edge = await startTestEdge();
});
afterAll(async () => {
  await edge?.close();
});

const api = async (path: string, init: RequestInit = {}) => {
  const res = await fetch(`${edge.adminUrl}${path}`, {
    ...init,
    headers: { ...ADMIN_AUTH, 'content-type': 'application/json' },
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
};

async function depositFor(user: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await depositHttp(edge.adminUrl, {
      to: user,
      from: 'sip:bob@example.net',
      body: `m${i}`,
      messageId: `${user}-${i}`,
    });
    expect(r.status).toBe(201);
    ids.push(r.json.id);
  }
  return ids;
}

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('/metrics', () => {
  it('exposes the CloudWatch metrics in snake_case with HELP and TYPE, histograms with _sum and _count, and the store gauges', async () => {
    const user = 'sip:metrics@example.com';
    await depositFor(user, 2);
    const text = await (await fetch(`${edge.adminUrl}/metrics`)).text();
    expect(text).toContain('# HELP deposits_total ');
    expect(text).toContain('# TYPE deposits_total counter');
    expect(sample(text, 'deposits_total')).toBeGreaterThanOrEqual(2);
    expect(text).toContain('# TYPE delivery_latency_ms histogram');
    expect(sample(text, 'delivery_latency_ms_count')).toBe(0);
    expect(sample(text, 'delivery_latency_ms_sum')).toBe(0);
    expect(text).toContain('# TYPE sip_response_time_ms histogram');
    for (const name of [
      'deletions_total',
      'expiries_total',
      'retrievals_total',
      'notify_sent_total',
      'notify_failed_total',
    ]) {
      expect(text).toContain(`# TYPE ${name} counter`);
    }
    expect(sample(text, 'deferred_messages_pending')).toBeGreaterThanOrEqual(2);
    expect(sample(text, 'users_with_pending')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'active_subscriptions')).toBe(0);
    expect(sample(text, 'queue_depth{queue="delivery"}')).toBe(0);
  });
});

describe('health', () => {
  it('answers liveness on /health (the NLB check) and readiness with each dependency named', async () => {
    const live = await fetch(`${edge.adminUrl}/health`);
    expect(live.status).toBe(200);
    const ready = await fetch(`${edge.adminUrl}/health/ready`);
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { status: string; checks: Record<string, { ok: boolean }> };
    expect(body.status).toBe('ready');
    expect(body.checks.store?.ok).toBe(true);
    expect(body.checks.queues?.ok).toBe(true);
  });
});

describe('operator token', () => {
  it('refuses /api without the token or with a wrong one, and never guards health or metrics', async () => {
    expect((await fetch(`${edge.adminUrl}/api/stats`)).status).toBe(401);
    const wrong = await fetch(`${edge.adminUrl}/api/stats`, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toContain('Bearer');
    const dep = await fetch(`${edge.adminUrl}/api/deposit`, {
      method: 'POST',
      body: JSON.stringify({ to: ALICE, from: 'sip:bob@example.net', body: 'x' }),
    });
    expect(dep.status).toBe(401);
    expect((await api('/api/stats')).status).toBe(200);
  });

  it('makes one at first start without ADMIN_TOKEN, readable only by its owner, and keeps it across a restart', async () => {
    const own = await startTestEdge({ env: { ADMIN_TOKEN: '' } });
    try {
      const file = join(own.dataDir, 'admin-token');
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect((await readFile(file, 'utf8')).trim()).toBe(own.adminToken);
      const res = await fetch(`${own.adminUrl}/api/stats`, { headers: { authorization: `Bearer ${own.adminToken}` } });
      expect(res.status).toBe(200);
      await own.stop();
      const again = await startTestEdge({ env: { ADMIN_TOKEN: '' }, dataDir: own.dataDir });
      expect(again.adminToken).toBe(own.adminToken);
      await again.stop();
    } finally {
      await own.close().catch(() => undefined);
    }
  });
});

describe('list paging and purge', () => {
  it('pages the list API by limit and cursor', async () => {
    const user = 'sip:pages@example.com';
    const ids = await depositFor(user, 5);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const r = await api(`/api/messages?user=${encodeURIComponent(user)}&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.status).toBe(200);
      expect(r.json.total).toBe(5);
      const entries = r.json.entries as { id: string; cpim?: unknown }[];
      expect(entries.length).toBeLessThanOrEqual(2);
      expect(entries.every((e) => e.cpim === undefined)).toBe(true);
      seen.push(...entries.map((e) => e.id));
      cursor = r.json.cursor as string | undefined;
    } while (cursor);
    expect(seen).toEqual(ids);
  });

  it('names the parameter of a bad page request', async () => {
    const user = encodeURIComponent(ALICE);
    const bad = await api(`/api/messages?user=${user}&limit=0`);
    expect(bad.status).toBe(400);
    expect(String(bad.json.error)).toMatch(/^limit/);
    const cursor = await api(`/api/messages?user=${user}&cursor=zzz`);
    expect(cursor.status).toBe(400);
    expect(String(cursor.json.error)).toMatch(/^cursor/);
  });

  it('purges one message, then all of a user, counting the deletions', async () => {
    const user = 'sip:purge@example.com';
    const ids = await depositFor(user, 3);
    const one = await api('/api/purge', { method: 'POST', body: JSON.stringify({ user, id: ids[1] }) });
    expect(one.status).toBe(200);
    expect(one.json.purged).toEqual([ids[1]]);
    const again = await api('/api/purge', { method: 'POST', body: JSON.stringify({ user, id: ids[1] }) });
    expect(again.status).toBe(404);
    const vague = await api('/api/purge', { method: 'POST', body: JSON.stringify({ user }) });
    expect(vague.status).toBe(400);
    const all = await api('/api/purge', { method: 'POST', body: JSON.stringify({ user, all: true }) });
    expect(all.json.purged).toEqual([ids[0], ids[2]]);
    const left = await api(`/api/messages?user=${encodeURIComponent(user)}`);
    expect(left.json.total).toBe(0);
    const text = await (await fetch(`${edge.adminUrl}/metrics`)).text();
    expect(sample(text, 'deletions_total{by="operator"}')).toBe(3);
  });
});
