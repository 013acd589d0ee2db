/**
 * IMDN failure reports over real sockets (protocol.md "Deposit", last point): a message the user
 * deletes without delivery earns its sender an IMDN `failed` in a SIP MESSAGE when the sender
 * asked for negative-delivery (RFC 5438 §7.2.1.1), through the outbound queue; nobody else gets one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpmClient } from '#functions/edge/cpm-client.ts';
import { getHeader } from '#shared/sip/messages/index.ts';
import { depositHttp, pendingOf, startTestEdge, type TestEdge } from './support.ts';

const ALICE = 'sip:alice@example.com';

describe('IMDN failure reports', () => {
  let edge: TestEdge;
  const clients: CpmClient[] = [];
  const connect = async (user: string) => {
    const c = await CpmClient.connect({ transport: 'udp', server: { host: '127.0.0.1', port: edge.ports.udp! }, user });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    edge = await startTestEdge();
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await edge?.close();
  });

  it('a delete without delivery sends the sender who asked an IMDN failed, and only that one', async () => {
    // The sender is reachable at an address literal: the IMDN goes straight there (loopback).
    const bob = await connect('sip:bob@127.0.0.1');
    const bobUri = `sip:bob@127.0.0.1:${bob.localPort}`;
    const asked = await depositHttp(edge.adminUrl, {
      to: ALICE,
      from: bobUri,
      body: 'never read',
      messageId: 'deleted-asking',
      dispositionNotification: 'positive-delivery, negative-delivery',
    });
    const quiet = await depositHttp(edge.adminUrl, {
      to: ALICE,
      from: bobUri,
      body: 'never read either',
      messageId: 'deleted-quiet',
      dispositionNotification: 'positive-delivery',
    });
    expect([asked.status, quiet.status]).toEqual([201, 201]);

    const alice = await connect(ALICE);
    const { response } = await alice.invite([
      { id: quiet.json.id as string, action: 'delete' },
      { id: asked.json.id as string, action: 'delete' },
    ]);
    expect(response.status).toBe(200);
    expect((await pendingOf(edge.adminUrl, ALICE)).total).toBe(0);

    const imdn = await bob.nextRequest((r) => r.method === 'MESSAGE', 15_000);
    expect(imdn.uri).toBe(bobUri);
    expect(getHeader(imdn, 'From')).toMatch(/^<sip:deferred@example\.com>;tag=/);
    expect(getHeader(imdn, 'Content-Type')).toBe('message/cpim');
    const text = imdn.body.toString('utf8');
    expect(text).toMatch(/Content-Type: message\/imdn\+xml/i);
    expect(text).toMatch(/Content-Disposition: notification/i);
    expect(text).toContain('<message-id>deleted-asking</message-id>');
    expect(text).toContain('<failed/>');
    // The message whose sender did not ask for negative-delivery gets no report.
    await expect(bob.nextRequest((r) => r.method === 'MESSAGE', 1500)).rejects.toThrow(/no matching request/);
  });
});
