import { describe, expect, it } from 'vitest';
import { createResponse, serializeMessage, topVia } from '#shared/sip/messages/index.ts';
import type { SipRequest } from '#shared/sip/messages/index.ts';
import { once } from 'node:events';
import WebSocket from 'ws';
import type { Source } from '#shared/sip/transport/index.ts';
import { delay, requestText, tcpListener, until } from '../transport/peers.ts';
import { scopedResources } from './harness.ts';

const { cleanup, harness, udpPeer } = scopedResources();

function notify(cseq = 1): SipRequest {
  return {
    kind: 'request',
    method: 'NOTIFY',
    uri: 'sip:alice@127.0.0.1',
    headers: [
      { name: 'From', value: '<sip:alice@example.com>;tag=pf' },
      { name: 'To', value: '<sip:alice@example.com>;tag=client' },
      { name: 'Call-ID', value: 'notify-1' },
      { name: 'CSeq', value: `${cseq} NOTIFY` },
      { name: 'Event', value: 'deferred-messages' },
      { name: 'Subscription-State', value: 'active;expires=3600' },
    ],
    body: Buffer.alloc(0),
  };
}

/** A TCP next hop, stopped after the test. */
async function nextHop() {
  const hop = await tcpListener();
  cleanup.push(() => hop.close());
  return hop;
}

describe('non-INVITE client transaction', () => {
  it('retransmits over UDP (Timer E) with one branch and resolves 408 on Timer F', async () => {
    const h = await harness();
    const peer = await udpPeer();
    const res = await h.layer.request(notify(), { transport: 'udp', address: '127.0.0.1', port: peer.port });
    expect(res.status).toBe(408);
    const copies = peer.messages() as SipRequest[];
    expect(copies.length).toBeGreaterThanOrEqual(5);
    const branches = new Set(copies.map((m) => topVia(m)!.branch));
    expect(branches.size).toBe(1);
    expect([...branches][0]).toMatch(/^z9hG4bK/);
    expect(copies.every((m) => m.method === 'NOTIFY')).toBe(true);
    // A copy sent just before Timer F may still be on its way; after that, nothing more comes.
    await delay(50);
    const settled = peer.received.length;
    expect(settled - copies.length).toBeLessThanOrEqual(1);
    await delay(150);
    expect(peer.received).toHaveLength(settled);
    expect(h.layer.size.client).toBe(0);
  });

  it('resolves with the final response and stops retransmitting', async () => {
    const h = await harness();
    const peer = await udpPeer();
    const pending = h.layer.request(notify(), { transport: 'udp', address: '127.0.0.1', port: peer.port });
    const got = (await peer.waitFor(1)) as SipRequest;
    const via = topVia(got)!;
    expect(via).toMatchObject({ transport: 'UDP', host: '127.0.0.1', port: h.ports.udp });
    expect('rport' in via.params).toBe(true);
    await peer.send(serializeMessage(createResponse(got, 100)), h.ports.udp!);
    await delay(60);
    await peer.send(serializeMessage(createResponse(got, 481)), h.ports.udp!);
    const res = await pending;
    expect(res.status).toBe(481);
    // A retransmission sent before the 481 arrived may still be on its way; then nothing more.
    await delay(50);
    const seen = peer.received.length;
    await delay(200);
    expect(peer.received).toHaveLength(seen);
  });

  it('is held for Timer K (T4) over UDP after its final response, then is gone', async () => {
    const t4 = 1000;
    const h = await harness({ timers: { t4 } });
    const peer = await udpPeer();
    const pending = h.layer.request(notify(), { transport: 'udp', address: '127.0.0.1', port: peer.port });
    const got = (await peer.waitFor(1)) as SipRequest;
    await peer.send(serializeMessage(createResponse(got, 200)), h.ports.udp!);
    expect((await pending).status).toBe(200);
    const completedAt = performance.now();
    await delay(t4 / 4);
    expect(h.layer.size.client).toBe(1);
    await until(() => h.layer.size.client === 0, 4 * t4, 'Timer K');
    expect(performance.now() - completedAt).toBeGreaterThan((3 * t4) / 4);
  });

  it('sends once over TCP (no Timer E on a reliable transport) and resolves with the answer', async () => {
    const h = await harness();
    const { port, peers } = await nextHop();

    const pending = h.layer.request(notify(), { transport: 'tcp', address: '127.0.0.1', port });
    await until(() => peers.length === 1);
    const [got] = await peers[0]!.waitForMessages(1);
    expect(topVia(got!)!.transport).toBe('TCP');
    await delay(150);
    expect(peers[0]!.messages()).toHaveLength(1);
    await peers[0]!.write(serializeMessage(createResponse(got as SipRequest, 200)));
    expect((await pending).status).toBe(200);
    // §17.1.2.2: Timer K is zero on a reliable transport.
    await until(() => h.layer.size.client === 0, 1000, 'the transaction to end');
  });

  it('over TCP, sends the request again on a new connection when the first closes unanswered', async () => {
    const h = await harness();
    const { port, peers, server: listener } = await nextHop();
    const pending = h.layer.request(notify(), { transport: 'tcp', address: '127.0.0.1', port });
    await until(() => peers.length === 1);
    const [got] = await peers[0]!.waitForMessages(1);
    // The next hop dies with the request unanswered, and is back only a little later.
    listener.close();
    peers[0]!.close();
    await delay(100);
    listener.listen(port, '127.0.0.1');
    await until(() => peers.length === 2, 1000, 'a new connection');
    const [again] = await peers[1]!.waitForMessages(1);
    // The same transaction (RFC 3261 §17.1.3 matches by branch): a next hop that has it absorbs it.
    expect(topVia(again!)!.branch).toBe(topVia(got!)!.branch);
    await peers[1]!.write(serializeMessage(createResponse(again as SipRequest, 200)));
    expect((await pending).status).toBe(200);
    await delay(100);
    expect(peers).toHaveLength(2);
  });

  it('over TCP, a hop that never comes back ends the transaction on Timer F (408)', async () => {
    const h = await harness();
    const { port, peers, server: listener } = await nextHop();
    const pending = h.layer.request(notify(), { transport: 'tcp', address: '127.0.0.1', port });
    await until(() => peers.length === 1);
    await peers[0]!.waitForMessages(1);
    listener.close();
    peers[0]!.close();
    // Not a 503 at the first refused connection: the hop may be restarting.
    expect((await pending).status).toBe(408);
    expect(h.layer.size.client).toBe(0);
  });

  it('over WebSocket, a connection closed before the answer is a transport error (503) at once', async () => {
    const h = await harness({ transport: { wsPort: 0 } });
    const sources: Source[] = [];
    h.transport.onMessage((_msg, source) => sources.push(source));
    const ws = new WebSocket(`ws://127.0.0.1:${h.ports.ws}`, ['sip']);
    cleanup.push(() => ws.terminate());
    await once(ws, 'open');
    ws.send(requestText({ method: 'OPTIONS', transport: 'WS', sentBy: 'k3j2h1.invalid' }));
    await until(() => sources.length === 1);
    const flow = sources[0]!;
    const got = new Promise<void>((resolve) => ws.once('message', () => resolve()));
    const pending = h.layer.request(notify(), {
      transport: 'ws',
      address: flow.remoteAddress,
      port: flow.remotePort,
      connectionId: flow.connectionId!,
    });
    await got;
    ws.close();
    // RFC 7118 §5: no new WebSocket connection can be opened to the client: not a Timer F 408.
    expect((await pending).status).toBe(503);
  });

  it('fails with 503 and sends nothing when the destination is not allowed', async () => {
    const h = await harness({ transport: { allowDestination: (address) => address === '127.0.0.1' } });
    const res = await h.layer.request(notify(), { transport: 'udp', address: '192.0.2.1', port: 5060 });
    expect(res.status).toBe(503);
    await expect(
      h.transport.sendRequest(
        {
          ...notify(),
          headers: [{ name: 'Via', value: 'SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKd' }, ...notify().headers],
        },
        {
          transport: 'udp',
          address: '192.0.2.1',
          port: 5060,
        },
      ),
    ).rejects.toThrow(/not allowed/);
  });

  it('resolves pending requests with 503 when the layer stops', async () => {
    const h = await harness();
    const peer = await udpPeer();
    const pending = h.layer.request(notify(), { transport: 'udp', address: '127.0.0.1', port: peer.port });
    await peer.waitFor(1);
    h.layer.stop();
    expect((await pending).status).toBe(503);
  });
});
