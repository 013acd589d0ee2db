import { describe, expect, it } from 'vitest';
import { createResponse, getHeader } from '#shared/sip/messages/index.ts';
import type { SipMessage } from '#shared/sip/messages/index.ts';
import { TcpPeer, UdpPeer, delay, requestText, until } from '../transport/peers.ts';
import { FAST, scopedResources } from './harness.ts';
import type { Harness } from './harness.ts';

const scope = scopedResources();

async function setup(opts: Parameters<typeof scope.harness>[0] = {}): Promise<{ h: Harness; peer: UdpPeer }> {
  return { h: await scope.harness(opts), peer: await scope.udpPeer() };
}

const statusOf = (m: SipMessage) => (m.kind === 'response' ? m.status : 0);

describe('non-INVITE server transaction over UDP', () => {
  it('passes a request up once; every retransmission gets the last response again', async () => {
    const { h, peer } = await setup({
      onRequest: (req, tx) => tx.respond(createResponse(req, 202, { toTag: 'pf-1' })),
    });
    const message = requestText({
      method: 'MESSAGE',
      branch: 'z9hG4bK-msg-1',
      rport: true,
      body: 'hi',
      extraHeaders: ['Content-Type: text/plain'],
    });
    await peer.send(message, h.ports.udp!);
    await peer.waitFor(1);
    await peer.send(message, h.ports.udp!);
    await peer.send(message, h.ports.udp!);
    await peer.waitFor(3);
    expect(peer.messages().map(statusOf)).toEqual([202, 202, 202]);
    expect(h.requests).toHaveLength(1);
  });

  it('resends the bytes it first sent, even when the TU edits its response object afterwards', async () => {
    const { h, peer } = await setup({
      onRequest: (req, tx) => {
        const res = createResponse(req, 200, { toTag: 'pf-3' });
        tx.respond(res);
        // §17.2.2: Completed passes "the final response" again, the one that left: what the TU does
        // with its own object later is not a new response (§17.2.2: any other final is discarded).
        res.status = 500;
        res.headers.push({ name: 'Warning', value: '399 edited' });
      },
    });
    const subscribe = requestText({
      method: 'SUBSCRIBE',
      branch: 'z9hG4bK-sub-same',
      rport: true,
      extraHeaders: ['Event: deferred-messages'],
    });
    await peer.send(subscribe, h.ports.udp!);
    await peer.waitFor(1);
    await peer.send(subscribe, h.ports.udp!);
    await peer.waitFor(2);
    expect(peer.received[1]!.equals(peer.received[0]!)).toBe(true);
    expect(statusOf(await peer.waitFor(2))).toBe(200);
  });

  it('discards retransmissions while the TU is still working (Trying), then resends the final', async () => {
    const { h, peer } = await setup();
    const subscribe = requestText({
      method: 'SUBSCRIBE',
      branch: 'z9hG4bK-sub-1',
      rport: true,
      extraHeaders: ['Event: deferred-messages'],
    });
    await peer.send(subscribe, h.ports.udp!);
    await until(() => h.requests.length === 1);
    await peer.send(subscribe, h.ports.udp!);
    await delay(50);
    expect(peer.received).toHaveLength(0);
    h.requests[0]!.tx.respond(createResponse(h.requests[0]!.req, 200, { toTag: 'pf-2' }));
    await peer.waitFor(1);
    await peer.send(subscribe, h.ports.udp!);
    const again = await peer.waitFor(2);
    expect(statusOf(again)).toBe(200);
    expect(getHeader(again, 'To')).toContain('tag=pf-2');
    expect(h.requests).toHaveLength(1);
  });

  it('treats the same branch with another method, or another branch, as a new request', async () => {
    const { h, peer } = await setup({ onRequest: (req, tx) => tx.respond(createResponse(req, 200)) });
    await peer.send(requestText({ method: 'OPTIONS', branch: 'z9hG4bK-x', rport: true }), h.ports.udp!);
    await peer.send(requestText({ method: 'OPTIONS', branch: 'z9hG4bK-y', rport: true }), h.ports.udp!);
    await peer.send(requestText({ method: 'INFO', branch: 'z9hG4bK-x', rport: true }), h.ports.udp!);
    await peer.waitFor(3);
    expect(h.requests.map((r) => r.req.method).sort()).toEqual(['INFO', 'OPTIONS', 'OPTIONS']);
  });

  it('answers 500 when the TU throws, and survives a request without the magic cookie', async () => {
    const { h, peer } = await setup({
      onRequest: () => {
        throw new Error('handler bug');
      },
    });
    await peer.send(requestText({ method: 'OPTIONS', branch: 'z9hG4bK-boom', rport: true }), h.ports.udp!);
    expect(statusOf(await peer.waitFor(1))).toBe(500);
    const old = requestText({ method: 'OPTIONS', branch: 'rfc2543-branch', rport: true, callId: 'old-1' });
    await peer.send(old, h.ports.udp!);
    await peer.send(old, h.ports.udp!);
    await peer.waitFor(3);
    expect(h.requests).toHaveLength(2);
  });

  it('answers a CANCEL for an answered request 200 and nothing more, and its retransmission alike (§9.2)', async () => {
    const { h, peer } = await setup({ onRequest: (req, tx) => tx.respond(createResponse(req, 202, { toTag: 'm' })) });
    await peer.send(
      requestText({ method: 'MESSAGE', branch: 'z9hG4bK-c-1', rport: true, callId: 'c-1' }),
      h.ports.udp!,
    );
    await peer.waitFor(1);
    const cancel = requestText({ method: 'CANCEL', branch: 'z9hG4bK-c-1', rport: true, callId: 'c-1' });
    await peer.send(cancel, h.ports.udp!);
    const ok = await peer.waitFor(2);
    expect(statusOf(ok)).toBe(200);
    expect(getHeader(ok, 'CSeq')).toBe('1 CANCEL');
    await peer.send(cancel, h.ports.udp!);
    await peer.waitFor(3);
    expect(peer.received[2]!.equals(peer.received[1]!)).toBe(true);
    expect(h.requests.map((r) => r.req.method)).toEqual(['MESSAGE']);
  });

  it('keeps a completed transaction for Timer J (64*T1), then forgets it: the same request is new again', async () => {
    const { h, peer } = await setup({ onRequest: (req, tx) => tx.respond(createResponse(req, 200)) });
    const options = requestText({ method: 'OPTIONS', branch: 'z9hG4bK-j-1', rport: true });
    await peer.send(options, h.ports.udp!);
    await peer.waitFor(1);
    const answeredAt = performance.now();
    // A quarter of Timer J later the request is still a retransmission: answered again, not passed up.
    await delay(16 * FAST.t1);
    await peer.send(options, h.ports.udp!);
    await peer.waitFor(2);
    expect(h.requests).toHaveLength(1);
    await until(() => h.layer.size.server === 0, 4 * 64 * FAST.t1, 'Timer J');
    expect(performance.now() - answeredAt).toBeGreaterThan(48 * FAST.t1);
    await peer.send(options, h.ports.udp!);
    await until(() => h.requests.length === 2);
  });
});

describe('non-INVITE server transaction over TCP', () => {
  it('ends at once when answered (Timer J is zero on a reliable transport)', async () => {
    const h = await scope.harness({ onRequest: (req, tx) => tx.respond(createResponse(req, 200)) });
    const peer = await TcpPeer.connect(h.ports.tcp!);
    scope.cleanup.push(() => peer.close());
    const options = requestText({ method: 'OPTIONS', branch: 'z9hG4bK-j-2', transport: 'TCP' });
    await peer.write(options);
    await peer.waitForMessages(1);
    await until(() => h.layer.size.server === 0, (64 * FAST.t1) / 2, 'the transaction to end');
    await peer.write(options);
    await until(() => h.requests.length === 2);
  });
});
