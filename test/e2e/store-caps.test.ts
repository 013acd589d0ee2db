/**
 * The store's caps (issue 11 item 9; README "Configuration"): a deposit over a user's byte cap
 * gets SIP 486 with a Warning and HTTP 507, over the whole store's 480 with Retry-After and 507;
 * a repeated deposit of a stored message is still 202; nothing stored is lost, and room comes
 * back once messages leave.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CpmClient } from '#functions/edge/cpm-client.ts';
import { wrapAsCpim } from '#shared/cpim/cpim.ts';
import { CPIM_CONTENT_TYPE } from '#shared/deferred/names.ts';
import { depositHttp, pendingOf, startTestEdge, type TestEdge } from './support.ts';

const BOB = 'sip:bob@example.net';
const BODY = 'x'.repeat(400);

function cpimFor(user: string, messageId: string): Buffer {
  return wrapAsCpim({
    from: BOB,
    to: user,
    dateTime: new Date().toISOString(),
    messageId,
    contentType: 'text/plain;charset=UTF-8',
    body: Buffer.from(BODY),
  });
}

describe('byte caps on deposits', () => {
  let edge: TestEdge | undefined;
  afterEach(async () => {
    await edge?.close();
    edge = undefined;
  });

  it('over a user’s bytes: SIP 486 with a Warning, HTTP 507; duplicates still 202; stored ones kept', async () => {
    const size = cpimFor('sip:carol@example.com', 'm-0').length;
    // Room for two of these messages, not three.
    edge = await startTestEdge({ env: { MAX_BYTES_PER_USER: String(Math.floor(size * 2.5)) } });
    const user = 'sip:carol@example.com';
    const bob = await CpmClient.connect({
      transport: 'tcp',
      server: { host: '127.0.0.1', port: edge.ports.tcp! },
      user: BOB,
    });
    const send = (messageId: string) =>
      bob.request(
        bob.buildRequest('MESSAGE', { uri: user, body: cpimFor(user, messageId), contentType: CPIM_CONTENT_TYPE }),
      );
    expect((await send('m-1')).status).toBe(202);
    expect((await send('m-2')).status).toBe(202);
    const full = await send('m-3');
    expect(full.status).toBe(486);
    expect(full.headers.find((h) => h.name.toLowerCase() === 'warning')?.value).toMatch(
      /^399 \S+ "Deferred message store full \(bytes\)"$/,
    );
    // A retransmitted deposit of a stored message is answered as before.
    expect((await send('m-1')).status).toBe(202);
    const http = await depositHttp(edge.adminUrl, { to: user, from: BOB, body: BODY, messageId: 'h-1' });
    expect(http.status).toBe(507);
    bob.close();
    const pending = await pendingOf(edge.adminUrl, user);
    expect(pending.total).toBe(2);
    expect(pending.entries.map((e) => e.messageId).sort()).toEqual(['m-1', 'm-2']);
    // Another user has room of their own.
    expect((await depositHttp(edge.adminUrl, { to: 'sip:dave@example.com', from: BOB, body: BODY })).status).toBe(201);
  });

  it('over the whole store: SIP 480 with Retry-After and a Warning, HTTP 507, for every user', async () => {
    const size = cpimFor('sip:erin@example.com', 'm-0').length;
    edge = await startTestEdge({ env: { MAX_STORE_BYTES: String(Math.floor(size * 2.5)) } });
    expect((await depositHttp(edge.adminUrl, { to: 'sip:erin@example.com', from: BOB, body: BODY })).status).toBe(201);
    expect((await depositHttp(edge.adminUrl, { to: 'sip:fay@example.com', from: BOB, body: BODY })).status).toBe(201);
    const user = 'sip:gus@example.com';
    const bob = await CpmClient.connect({
      transport: 'tcp',
      server: { host: '127.0.0.1', port: edge.ports.tcp! },
      user: BOB,
    });
    const res = await bob.request(
      bob.buildRequest('MESSAGE', { uri: user, body: cpimFor(user, 'g-1'), contentType: CPIM_CONTENT_TYPE }),
    );
    bob.close();
    expect(res.status).toBe(480);
    const header = (name: string) => res.headers.find((h) => h.name.toLowerCase() === name)?.value;
    expect(header('retry-after')).toBe('3600');
    expect(header('warning')).toMatch(/"Deferred message service out of storage"/);
    expect((await depositHttp(edge.adminUrl, { to: user, from: BOB, body: BODY })).status).toBe(507);
    expect((await pendingOf(edge.adminUrl, 'sip:erin@example.com')).total).toBe(1);
    expect((await pendingOf(edge.adminUrl, 'sip:fay@example.com')).total).toBe(1);
    expect((await pendingOf(edge.adminUrl, user)).total).toBe(0);
  });
});
