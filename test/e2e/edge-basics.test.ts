/**
 * What `npm start` answers before any deferred message is involved (issue: foundation, item 3):
 * OPTIONS, unsupported methods, other event packages, every transport, and a clean stop.
 */
import { connect as tlsConnect } from 'node:tls';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpmClient } from '#functions/edge/cpm-client.ts';
import { frameStream, getHeader, parseMessage, serializeMessage } from '#shared/sip/messages/index.ts';
import type { SipResponse } from '#shared/sip/messages/types.ts';
import { ADMIN_AUTH, spawnEdge, startTestEdge, type TestEdge } from './support.ts';

const USER = 'sip:alice@example.com';

describe('the edge on its own', () => {
  let edge: TestEdge;
  let udp: CpmClient;
  beforeAll(async () => {
    edge = await startTestEdge();
    udp = await CpmClient.connect({
      transport: 'udp',
      server: { host: '127.0.0.1', port: edge.ports.udp! },
      user: USER,
    });
  });
  afterAll(async () => {
    udp?.close();
    await edge?.close();
  });

  it('answers OPTIONS 200 with its capabilities', async () => {
    const res = await udp.request(udp.buildRequest('OPTIONS'));
    expect(res.status).toBe(200);
    expect(getHeader(res, 'Allow')).toContain('SUBSCRIBE');
    expect(getHeader(res, 'Allow-Events')).toBe('deferred-messages');
  });

  it('answers a known method it does not serve with 405 and Allow, an unknown one with 501', async () => {
    const reg = await udp.request(udp.buildRequest('REGISTER', { uri: 'sip:example.com' }));
    expect(reg.status).toBe(405);
    expect(getHeader(reg, 'Allow')).toContain('INVITE');
    const odd = await udp.request(udp.buildRequest('FROBNICATE'));
    expect(odd.status).toBe(501);
  });

  it('answers SUBSCRIBE for another package with 489 and Allow-Events', async () => {
    const req = udp.buildRequest('SUBSCRIBE', { headers: [{ name: 'Event', value: 'presence' }] });
    const res = await udp.request(req);
    expect(res.status).toBe(489);
    expect(getHeader(res, 'Allow-Events')).toBe('deferred-messages');
  });

  it('answers 420 with Unsupported for a Require it does not support', async () => {
    const res = await udp.request(
      udp.buildRequest('OPTIONS', { headers: [{ name: 'Require', value: 'foo, 100rel' }] }),
    );
    expect(res.status).toBe(420);
    expect(getHeader(res, 'Unsupported')).toBe('foo, 100rel');
  });

  it('answers over TLS', async () => {
    const options = udp.buildRequest('OPTIONS');
    const socket = tlsConnect({ host: '127.0.0.1', port: edge.ports.tls!, rejectUnauthorized: false });
    const res = await new Promise<SipResponse>((resolve, reject) => {
      let buf = Buffer.alloc(0);
      socket.on('secureConnect', () => socket.write(serializeMessage(options)));
      socket.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        const f = frameStream(buf, 65535);
        if (f.kind === 'message') {
          const p = parseMessage(f.bytes);
          if (p.ok && p.message.kind === 'response') resolve(p.message);
        }
      });
      socket.on('error', reject);
    });
    socket.destroy();
    expect(res.status).toBe(200);
  });

  it('answers over WebSocket (RFC 7118, subprotocol sip)', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${edge.ports.ws}`, 'sip');
    const options = udp.buildRequest('OPTIONS');
    const res = await new Promise<SipResponse>((resolve, reject) => {
      ws.on('open', () => ws.send(serializeMessage(options).toString('utf8')));
      ws.on('message', (data: Buffer) => {
        const p = parseMessage(Buffer.from(data));
        if (p.ok && p.message.kind === 'response') resolve(p.message);
      });
      ws.on('error', reject);
    });
    ws.close();
    expect(res.status).toBe(200);
  });

  it('serves health, metrics and the dashboard on the admin port', async () => {
    const health = await fetch(`${edge.adminUrl}/health`);
    expect(health.status).toBe(200);
    expect(((await health.json()) as { status: string }).status).toBe('ok');
    const metrics = await (await fetch(`${edge.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/sip_requests_total\{method="OPTIONS"\} \d+/);
    const page = await fetch(`${edge.adminUrl}/`);
    expect(page.headers.get('content-type')).toContain('text/html');
  });

  it('refuses a bad operator deposit with 400 and a message', async () => {
    const res = await fetch(`${edge.adminUrl}/api/deposit`, { method: 'POST', body: '{"to": 5}', headers: ADMIN_AUTH });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error.length).toBeGreaterThan(0);
  });
});

describe('who may ask', () => {
  let edge: TestEdge;
  beforeAll(async () => {
    // Loopback is neither the SIP/IP Core nor an admitted direct client here.
    edge = await startTestEdge({ env: { TRUSTED_PEERS: '10.0.0.0/8', DIRECT_CLIENTS: '' } });
  });
  afterAll(async () => {
    await edge?.close();
  });

  it('answers 403 to a SUBSCRIBE, INVITE or MESSAGE from a source that is neither trusted nor a direct client', async () => {
    const mallory = await CpmClient.connect({
      transport: 'udp',
      server: { host: '127.0.0.1', port: edge.ports.udp! },
      user: USER,
    });
    try {
      const sub = await mallory.subscribe({ expires: 600 });
      expect(sub.response.status).toBe(403);
      const inv = await mallory.invite([{ id: '01JDQ8R0Z5K3N1V6X7Y8Z9A0BC', action: 'delete' }]);
      expect(inv.response.status).toBe(403);
      const msg = await mallory.request(
        mallory.buildRequest('MESSAGE', { body: Buffer.from('hi'), contentType: 'text/plain' }),
      );
      expect(msg.status).toBe(403);
      // What needs no identity still works.
      expect((await mallory.request(mallory.buildRequest('OPTIONS'))).status).toBe(200);
    } finally {
      mallory.close();
    }
  });
});

describe('npm start as a process', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'deferred-proc-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('prints its ports and stops cleanly on SIGINT and SIGTERM', async () => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const edge = await spawnEdge({ DATA_DIR: dataDir });
      expect(edge.ports.udp).toBeGreaterThan(0);
      const code = new Promise<string>((resolve) => edge.child.once('exit', (c, s) => resolve(`${c}/${s}`)));
      edge.child.kill(signal);
      expect(await code, edge.output()).toBe('0/null');
    }
  });

  it('a second instance on the same data folder stops with exit code 3, naming the PID that holds it', async () => {
    const first = await spawnEdge({ DATA_DIR: dataDir });
    try {
      const second = spawnEdge({ DATA_DIR: dataDir });
      const error = await second.then(
        () => new Error('the second instance started'),
        (err: unknown) => err as Error,
      );
      expect(error.message).toMatch(/exited with 3/);
      expect(error.message).toContain(`data folder ${dataDir} is in use by process ${first.child.pid}`);
      expect(error.message).not.toMatch(/\n\s+at /);
      // The first one still serves.
      const health = await fetch(`http://127.0.0.1:${first.ports.admin}/health`);
      expect(health.status).toBe(200);
    } finally {
      const exited = new Promise((resolve) => first.child.once('exit', resolve));
      first.child.kill('SIGTERM');
      await exited;
    }
  });

  it("refuses a bad configuration value with exit code 2 and the variable's name", async () => {
    await expect(spawnEdge({ DATA_DIR: dataDir, SIP_PORT: 'seventy' })).rejects.toThrow(/exited with 2[\s\S]*SIP_PORT/);
  });
});

describe('the SIP UDP receive buffer (SIP_UDP_RECEIVE_BUFFER)', () => {
  it('warns at start, naming the sysctl, when the kernel grants less than asked', async () => {
    const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8').trim());
    const asked = rmemMax + 1024 * 1024;
    const lines: { level: string; msg: string; extra?: object }[] = [];
    const edge = await startTestEdge({
      env: { SIP_UDP_RECEIVE_BUFFER: String(asked) },
      log: (level, msg, extra) => lines.push({ level, msg, ...(extra ? { extra } : {}) }),
    });
    await edge.close();
    const warning = lines.find((l) => l.msg.startsWith('SIP UDP receive buffer capped'));
    expect(warning).toEqual({
      level: 'warn',
      msg: expect.any(String),
      extra: { asked, granted: rmemMax, fix: `sysctl -w net.core.rmem_max=${asked}` },
    });
  });
});
