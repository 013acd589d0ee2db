/**
 * Nothing lost (protocol.md "Delivery over MSRP", "Deposit"): a message leaves the store only
 * after the client's MSRP 200; a crash, a refusal, a silent client or one that never connects
 * leaves it deferred; a repeated deposit is stored once.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpmClient } from '#functions/edge/cpm-client.ts';
import { wrapAsCpim } from '#shared/cpim/cpim.ts';
import { CPIM_CONTENT_TYPE } from '#shared/deferred/names.ts';
import { connectMsrp } from '#shared/msrp/client.ts';
import { parseMsrpOffer } from '#shared/sdp/msrp-sdp.ts';
import { depositHttp, pendingOf, spawnEdge, startTestEdge, type TestEdge } from './support.ts';

const BOB = 'sip:bob@example.net';

async function retrieveOver(
  sipPort: number,
  user: string,
  id: string,
  respond: () => number | null,
  received: Buffer[] = [],
): Promise<{
  client: CpmClient;
  inviteStatus: number;
  bye: Promise<unknown>;
  msrp: Awaited<ReturnType<typeof connectMsrp>>;
}> {
  const client = await CpmClient.connect({ transport: 'tcp', server: { host: '127.0.0.1', port: sipPort }, user });
  const inv = await client.invite([{ id, action: 'retrieve' }]);
  const answer = parseMsrpOffer(inv.response.body.toString('utf8'));
  if (!answer.ok) throw new Error(`no SDP answer (${inv.response.status})`);
  const bye = client.nextBye(inv.dialog);
  bye.catch(() => undefined);
  const msrp = await connectMsrp({
    localPath: inv.msrpPath,
    remotePath: answer.path,
    respond,
    onMessage: (m) => received.push(m.body),
  });
  return { client, inviteStatus: inv.response.status, bye, msrp };
}

describe('a crash between the INVITE 200 and the MSRP 200', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'deferred-kill-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps the message deferred; after a restart on the same data folder a new pull delivers it', async () => {
    const user = 'sip:crash@example.com';
    const first = await spawnEdge({ DATA_DIR: dataDir });
    const admin = `http://127.0.0.1:${first.ports.admin}`;
    const dep = await depositHttp(admin, { to: user, from: BOB, body: 'survives a crash' });
    expect(dep.status).toBe(201);

    let killed = false;
    const exited = new Promise((resolve) => first.child.once('exit', resolve));
    const attempt = await retrieveOver(first.ports.tcp!, user, dep.json.id, () => {
      // The SEND reached the client: the service dies before it can see a 200.
      first.child.kill('SIGKILL');
      killed = true;
      return null;
    });
    await exited;
    expect(killed).toBe(true);
    attempt.client.close();
    attempt.msrp.close();

    // The dead process's claim on the message died with it (one process per data folder).
    const second = await spawnEdge({ DATA_DIR: dataDir });
    try {
      const admin2 = `http://127.0.0.1:${second.ports.admin}`;
      const pending = await pendingOf(admin2, user);
      expect(pending.entries.map((e) => e.id)).toEqual([dep.json.id]);

      const received: Buffer[] = [];
      const again = await retrieveOver(second.ports.tcp!, user, dep.json.id, () => 200, received);
      await again.bye;
      again.client.close();
      again.msrp.close();
      expect(Buffer.concat(received).toString()).toContain('survives a crash');
      expect((await pendingOf(admin2, user)).total).toBe(0);
    } finally {
      second.child.kill('SIGTERM');
      await new Promise((resolve) => second.child.once('exit', resolve));
    }
  });
});

describe('kill -9 right after acknowledged deposits', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'deferred-ack-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('every deposit answered 201 is there after the restart', async () => {
    const user = 'sip:acked@example.com';
    const first = await spawnEdge({ DATA_DIR: dataDir });
    const admin = `http://127.0.0.1:${first.ports.admin}`;
    const exited = new Promise((resolve) => first.child.once('exit', resolve));
    const acked: string[] = [];
    // Deposits in flight side by side; the process dies as soon as ten are acknowledged, the
    // others still on their way (their clients see the connection drop, never a 201).
    const deposits = Array.from({ length: 40 }, (_, i) =>
      depositHttp(admin, { to: user, from: BOB, body: `acked ${i}`, messageId: `ack-${i}` }).then(
        (reply) => {
          if (reply.status !== 201) return;
          acked.push(reply.json.id);
          if (acked.length === 10) first.child.kill('SIGKILL');
        },
        () => undefined,
      ),
    );
    await Promise.all(deposits);
    await exited;
    expect(acked.length).toBeGreaterThanOrEqual(10);

    const second = await spawnEdge({ DATA_DIR: dataDir });
    try {
      const pending = await pendingOf(`http://127.0.0.1:${second.ports.admin}`, user);
      const stored = new Set(pending.entries.map((e) => e.id));
      expect(acked.filter((id) => !stored.has(id))).toEqual([]);
      expect(pending.total).toBe(stored.size);
    } finally {
      second.child.kill('SIGTERM');
      await new Promise((resolve) => second.child.once('exit', resolve));
    }
  });
});

describe('failed deliveries leave the message deferred', () => {
  let edge: TestEdge;
  beforeAll(async () => {
    edge = await startTestEdge({ policy: { msrpTimeoutMs: 300, sessionConnectTimeoutMs: 500 } });
  });
  afterAll(async () => {
    await edge?.close();
  });

  it('a non-200 to the SEND: untouched, then BYE', async () => {
    const user = 'sip:refuser@example.com';
    const dep = await depositHttp(edge.adminUrl, { to: user, from: BOB, body: 'refused' });
    const a = await retrieveOver(edge.ports.tcp!, user, dep.json.id, () => 486);
    await a.bye;
    a.client.close();
    a.msrp.close();
    expect((await pendingOf(edge.adminUrl, user)).entries.map((e) => e.id)).toEqual([dep.json.id]);
  });

  it('no answer to the SEND within the timeout: untouched, then BYE', async () => {
    const user = 'sip:silent@example.com';
    const dep = await depositHttp(edge.adminUrl, { to: user, from: BOB, body: 'unanswered' });
    const a = await retrieveOver(edge.ports.tcp!, user, dep.json.id, () => null);
    await a.bye;
    a.client.close();
    a.msrp.close();
    expect((await pendingOf(edge.adminUrl, user)).entries.map((e) => e.id)).toEqual([dep.json.id]);
  });

  it('a client that never connects over MSRP: BYE, and nothing changes in the store', async () => {
    const user = 'sip:absent@example.com';
    const dep = await depositHttp(edge.adminUrl, { to: user, from: BOB, body: 'never fetched' });
    const client = await CpmClient.connect({
      transport: 'udp',
      server: { host: '127.0.0.1', port: edge.ports.udp! },
      user,
    });
    const inv = await client.invite([{ id: dep.json.id, action: 'retrieve' }]);
    expect(inv.response.status).toBe(200);
    await client.nextBye(inv.dialog);
    client.close();
    expect((await pendingOf(edge.adminUrl, user)).entries.map((e) => e.id)).toEqual([dep.json.id]);
  });

  it('the same imdn.Message-ID from the same sender is stored once (202 twice) and counted once', async () => {
    const user = 'sip:dedupe@example.com';
    const deposits = async () => (await edge.metrics.deposits.get()).values[0]?.value ?? 0;
    const before = await deposits();
    const bob = await CpmClient.connect({
      transport: 'udp',
      server: { host: '127.0.0.1', port: edge.ports.udp! },
      user: BOB,
    });
    const cpim = wrapAsCpim({
      from: BOB,
      to: user,
      dateTime: new Date().toISOString(),
      messageId: 'same-id-1',
      contentType: 'text/plain;charset=UTF-8',
      body: Buffer.from('once'),
    });
    for (let i = 0; i < 2; i++) {
      const res = await bob.request(
        bob.buildRequest('MESSAGE', { uri: user, body: cpim, contentType: CPIM_CONTENT_TYPE }),
      );
      expect(res.status).toBe(202);
    }
    bob.close();
    const pending = await pendingOf(edge.adminUrl, user);
    expect(pending.total).toBe(1);
    expect(pending.entries[0]?.messageId).toBe('same-id-1');
    expect((await deposits()) - before).toBe(1);
  });
});
