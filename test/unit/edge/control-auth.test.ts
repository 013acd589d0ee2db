/**
 * The control API (/control/*) answers only the handlers, who carry CONTROL_TOKEN (issue 11
 * item 4): without it nobody who reaches the admin port can make the edge send SIP, deliver or
 * NOTIFY. Real HTTP on 127.0.0.1.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EdgeHttpGateway } from '#shared/adapters/edge-http.ts';
import { ConfigError, controlDestinations, loadConfig } from '#shared/config.ts';
import type { DeliveryTransfer } from '#shared/deferred/model.ts';
import type { ChangeDetail, EdgeGateway } from '#shared/ports.ts';
import { AdminServer } from '#functions/edge/admin-server.ts';
import { EdgeMetrics } from '#functions/edge/edge-metrics.ts';
import { TimeSeries } from '#functions/edge/time-series.ts';
import { dialog } from '../../integration/adapters/fixtures.ts';

const TOKEN = 'k'.repeat(40);
let server: AdminServer | undefined;
afterEach(async () => server?.stop());

async function start(): Promise<{
  url: string;
  changed: string[];
  watchers: (ChangeDetail | undefined)[];
  sent: unknown[];
  transfers: DeliveryTransfer[];
}> {
  const transfers: DeliveryTransfer[] = [];
  const changed: string[] = [];
  const watchers: (ChangeDetail | undefined)[] = [];
  const sent: unknown[] = [];
  const gateway = {
    send: async (_edge: string, spec: unknown) => {
      sent.push(spec);
      return { status: 200 };
    },
    transfer: async (_edge: string, transfer: DeliveryTransfer) => {
      transfers.push(transfer);
    },
  } as unknown as EdgeGateway;
  const metrics = new EdgeMetrics();
  server = new AdminServer({
    metrics,
    series: new TimeSeries(metrics),
    gateway,
    userChanged: async (user, change) => {
      changed.push(user);
      watchers.push(change);
    },
    live: () => ({ ok: true, detail: {} }),
    ready: async () => ({ ok: true, checks: {} }),
    state: async () => ({}),
    adminToken: 'a'.repeat(20),
    edgeId: 'local',
    controlToken: TOKEN,
  });
  const port = await server.start('127.0.0.1', 0);
  return { url: `http://127.0.0.1:${port}`, changed, watchers, sent, transfers };
}

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

describe('control API authentication', () => {
  it('refuses /control/* without the bearer token or with a wrong one (401), doing nothing', async () => {
    const edge = await start();
    const spec = { method: 'NOTIFY', dialog: { remoteTarget: 'sip:victim@198.51.100.9' } };
    const bare = await post(`${edge.url}/control/send`, spec);
    expect(bare.status).toBe(401);
    expect(bare.headers.get('www-authenticate')).toContain('Bearer');
    const wrong = await post(
      `${edge.url}/control/user-changed`,
      { user: 'sip:a@example.com' },
      {
        authorization: `Bearer ${'x'.repeat(40)}`,
      },
    );
    expect(wrong.status).toBe(401);
    expect(edge.sent).toEqual([]);
    expect(edge.changed).toEqual([]);
  });

  it('serves the handlers, whose gateway sends the token', async () => {
    const edge = await start();
    await new EdgeHttpGateway({ controlToken: TOKEN }).userChanged(edge.url, 'sip:alice@example.com');
    expect(edge.changed).toEqual(['sip:alice@example.com']);
    // The change fan-out names the watchers it read on this edge; the edge passes them on.
    await new EdgeHttpGateway({ controlToken: TOKEN }).userChanged(edge.url, 'sip:carol@example.com', {
      dialogIds: ['d1', 'd2'],
      revision: 7,
    });
    expect(edge.watchers).toEqual([{}, { dialogIds: ['d1', 'd2'], revision: 7 }]);
    const bad = await post(
      `${edge.url}/control/user-changed`,
      { user: 'sip:dave@example.com', dialogIds: 'd1' },
      { authorization: `Bearer ${TOKEN}` },
    );
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('dialogIds');
    await expect(new EdgeHttpGateway({ retries: 0 }).userChanged(edge.url, 'sip:bob@example.com')).rejects.toThrow(
      /401/,
    );
  });

  it('takes a delivery hand-off as the gateway sends it, CPIM bytes intact; a bad field is a 400 naming it', async () => {
    const edge = await start();
    const cpim = new Uint8Array([0, 1, 2, 254, 255, 13, 10]);
    const transfer: DeliveryTransfer = {
      user: 'sip:alice@example.com',
      sessionId: 's-1',
      edgeId: edge.url,
      dialog: dialog({ flow: { ...dialog().flow, edgeId: edge.url } }),
      byeCSeq: 2,
      deadline: 1_800_000_000_000,
      messages: [{ id: 'm1', cpim, arrivedAt: '2026-12-07T00:00:00.000Z', from: 'sip:bob@example.net', bytes: 7 }],
      final: true,
    };
    await new EdgeHttpGateway({ controlToken: TOKEN }).transfer(edge.url, transfer);
    expect(edge.transfers).toHaveLength(1);
    expect({ ...edge.transfers[0]!, messages: [] }).toEqual({ ...transfer, messages: [] });
    expect(Buffer.from(edge.transfers[0]!.messages[0]!.cpim).equals(Buffer.from(cpim))).toBe(true);
    expect(edge.transfers[0]!.messages[0]).toMatchObject({ id: 'm1', bytes: 7, from: 'sip:bob@example.net' });
    const { deadline: _missing, ...noDeadline } = transfer;
    const bad = await post(`${edge.url}/control/transfer`, noDeadline, { authorization: `Bearer ${TOKEN}` });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('deadline');
    expect(edge.transfers).toHaveLength(1);
  });

  it('leaves health and metrics open', async () => {
    const edge = await start();
    expect((await fetch(`${edge.url}/health`)).status).toBe(200);
  });
});

describe('CONTROL_TOKEN', () => {
  it('is random per start when not configured, and refused when too short', () => {
    const a = loadConfig({}).controlToken;
    expect(a.length).toBeGreaterThanOrEqual(32);
    expect(loadConfig({}).controlToken).not.toBe(a);
    expect(loadConfig({ CONTROL_TOKEN: TOKEN }).controlToken).toBe(TOKEN);
    expect(() => loadConfig({ CONTROL_TOKEN: 'short' })).toThrow(ConfigError);
  });
});

describe('control destinations', () => {
  it('are the SIP/IP Core, the direct clients and the outbound proxy, nothing else', () => {
    const allowed = controlDestinations(
      loadConfig({
        TRUSTED_PEERS: '10.20.0.0/16',
        DIRECT_CLIENTS: '',
        OUTBOUND_PROXY: 'sip:192.0.2.5:5060;transport=tcp',
      }),
    );
    expect(allowed('10.20.3.4')).toBe(true);
    expect(allowed('192.0.2.5')).toBe(true);
    expect(allowed('198.51.100.9')).toBe(false);
    expect(allowed('127.0.0.1')).toBe(false);
    // The local default: loopback peers and clients only.
    const local = controlDestinations(loadConfig({}));
    expect(local('127.0.0.1')).toBe(true);
    expect(local('198.51.100.9')).toBe(false);
  });
});
