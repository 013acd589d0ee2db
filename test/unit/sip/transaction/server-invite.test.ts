import { describe, expect, it } from 'vitest';
import { createResponse, getHeader } from '#shared/sip/messages/index.ts';
import type { SipMessage, SipResponse } from '#shared/sip/messages/index.ts';
import { TcpPeer, UdpPeer, delay, requestText, until } from '../transport/peers.ts';
import { scopedResources } from './harness.ts';

const { cleanup, harness, udpPeer } = scopedResources();

const statusOf = (m: SipMessage) => (m.kind === 'response' ? m.status : 0);
const count = (peer: UdpPeer, status: number) => peer.messages().filter((m) => statusOf(m) === status).length;

const invite = (branch: string) => requestText({ method: 'INVITE', branch, rport: true, callId: `inv-${branch}` });
const ackFor = (res: SipMessage, branch: string, callId: string) =>
  requestText({
    method: 'ACK',
    branch,
    rport: true,
    callId,
    toTag: /tag=([^;>\s]+)/.exec(getHeader(res, 'To') ?? '')![1],
  });

describe('INVITE server transaction over UDP', () => {
  it('retransmits the 2xx until the ACK arrives, then stops and passes the ACK up once (§13.3.1.4)', async () => {
    const h = await harness({ onRequest: (req, tx) => tx.respond(createResponse(req, 200, { toTag: 'uas-1' })) });
    const peer = await udpPeer();
    await peer.send(invite('z9hG4bK-inv-1'), h.ports.udp!);
    await until(() => count(peer, 200) >= 4, 3000, 'three 2xx retransmissions');
    // A retransmitted INVITE now ("Accepted", RFC 6026 §7.1) never reaches the TU again.
    await peer.send(invite('z9hG4bK-inv-1'), h.ports.udp!);
    await delay(20);
    expect(h.requests).toHaveLength(1);

    const twoHundred = peer.messages().find((m) => statusOf(m) === 200)!;
    // The ACK for a 2xx is a new transaction: its own branch (§17.1.1.3).
    await peer.send(ackFor(twoHundred, 'z9hG4bK-ack-1', 'inv-z9hG4bK-inv-1'), h.ports.udp!);
    await until(() => h.acks.length === 1);
    await delay(30);
    const afterAck = count(peer, 200);
    await delay(250);
    expect(count(peer, 200)).toBe(afterAck);

    // A repeated ACK is absorbed; nothing timed out.
    await peer.send(ackFor(twoHundred, 'z9hG4bK-ack-1', 'inv-z9hG4bK-inv-1'), h.ports.udp!);
    await delay(50);
    expect(h.acks).toHaveLength(1);
    expect(h.acks[0]!.ack.method).toBe('ACK');
    expect(h.ackTimeouts).toHaveLength(0);
    // The rest of "Accepted" (Timer L) absorbs a retransmitted INVITE: no 2xx again, no TU.
    await peer.send(invite('z9hG4bK-inv-1'), h.ports.udp!);
    await delay(50);
    expect(count(peer, 200)).toBe(afterAck);
    expect(h.requests).toHaveLength(1);
    expect(h.layer.size.server).toBe(1);
  });

  it('gives up after 64*T1 without an ACK and reports the INVITE', async () => {
    const h = await harness({
      timers: { t1: 10, t2: 40 },
      onRequest: (req, tx) => tx.respond(createResponse(req, 200, { toTag: 'uas-2' })),
    });
    const peer = await udpPeer();
    await peer.send(invite('z9hG4bK-inv-2'), h.ports.udp!);
    await until(() => h.ackTimeouts.length === 1, 3000, 'the ACK timeout');
    expect(getHeader(h.ackTimeouts[0]!, 'Call-ID')).toBe('inv-z9hG4bK-inv-2');
    // A copy sent just before the timeout may still be on its way (under T2): not a retransmission after it.
    await delay(20);
    const sent = count(peer, 200);
    expect(sent).toBeGreaterThan(3);
    await delay(120);
    expect(count(peer, 200)).toBe(sent);
  });

  it('sends 100 Trying itself when the TU is slow, and resends the last provisional for a retransmitted INVITE', async () => {
    const h = await harness({ tryingDelayMs: 30 });
    const peer = await udpPeer();
    await peer.send(invite('z9hG4bK-inv-3'), h.ports.udp!);
    expect(statusOf(await peer.waitFor(1))).toBe(100);
    h.requests[0]!.tx.respond(createResponse(h.requests[0]!.req, 180, { toTag: 'uas-3' }));
    expect(statusOf(await peer.waitFor(2))).toBe(180);
    await peer.send(invite('z9hG4bK-inv-3'), h.ports.udp!);
    expect(statusOf(await peer.waitFor(3))).toBe(180);
    expect(h.requests).toHaveLength(1);
  });

  it('retransmits a non-2xx final response (Timer G) and absorbs its ACK (§17.2.1)', async () => {
    // T4 long enough that the transaction is still "Confirmed" when the late INVITE copy comes.
    const h = await harness({
      timers: { t4: 2000 },
      onRequest: (req, tx) => tx.respond(createResponse(req, 486, { toTag: 'uas-4' })),
    });
    const peer = await udpPeer();
    await peer.send(invite('z9hG4bK-inv-4'), h.ports.udp!);
    await until(() => count(peer, 486) >= 3, 3000, '486 retransmissions');
    // The ACK for a non-2xx response reuses the INVITE's branch (§17.1.1.3).
    await peer.send(ackFor(peer.messages()[0]!, 'z9hG4bK-inv-4', 'inv-z9hG4bK-inv-4'), h.ports.udp!);
    await delay(30);
    const afterAck = count(peer, 486);
    // A late INVITE retransmission in "Confirmed" is absorbed too.
    await peer.send(invite('z9hG4bK-inv-4'), h.ports.udp!);
    await delay(200);
    expect(count(peer, 486)).toBe(afterAck);
    expect(h.acks).toHaveLength(0);
    expect(h.requests).toHaveLength(1);
  });

  it('answers CANCEL with 200 and the INVITE with 487 (same To tag), then absorbs the ACK to the 487 (§9.2)', async () => {
    const h = await harness();
    const peer = await udpPeer();
    await peer.send(invite('z9hG4bK-inv-5'), h.ports.udp!);
    await until(() => h.requests.length === 1);
    await peer.send(
      requestText({ method: 'CANCEL', branch: 'z9hG4bK-inv-5', rport: true, callId: 'inv-z9hG4bK-inv-5' }),
      h.ports.udp!,
    );
    await until(() => count(peer, 487) >= 1 && count(peer, 200) >= 1);
    const ok = peer.messages().find((m) => statusOf(m) === 200)!;
    const terminated = peer.messages().find((m) => statusOf(m) === 487)!;
    expect(getHeader(ok, 'CSeq')).toBe('1 CANCEL');
    expect(getHeader(terminated, 'CSeq')).toBe('1 INVITE');
    const tag = (m: SipMessage) => /tag=([^;>\s]+)/.exec(getHeader(m, 'To') ?? '')?.[1];
    expect(tag(ok)).toBeDefined();
    expect(tag(ok)).toBe(tag(terminated));
    expect(h.cancels).toHaveLength(1);
    expect(h.requests[0]!.tx.cancelled).toBe(true);

    await peer.send(ackFor(terminated, 'z9hG4bK-inv-5', 'inv-z9hG4bK-inv-5'), h.ports.udp!);
    await delay(30);
    const settled = count(peer, 487);
    // The TU answering late changes nothing on the wire.
    h.requests[0]!.tx.respond(createResponse(h.requests[0]!.req, 200, { toTag: 'late' }));
    await delay(150);
    expect(count(peer, 487)).toBe(settled);
    expect(count(peer, 200)).toBe(1);
    expect(h.acks).toHaveLength(0);
  });

  it('answers a CANCEL that matches nothing with 481', async () => {
    const h = await harness();
    const peer = await udpPeer();
    await peer.send(requestText({ method: 'CANCEL', branch: 'z9hG4bK-nothing', rport: true }), h.ports.udp!);
    const res = (await peer.waitFor(1)) as SipResponse;
    expect(res.status).toBe(481);
    expect(h.cancels).toHaveLength(0);
    expect(h.requests).toHaveLength(0);
  });
});

describe('INVITE server transaction over TCP', () => {
  it('sends the 2xx once (no retransmission over a reliable transport) and passes the ACK up', async () => {
    const h = await harness({ onRequest: (req, tx) => tx.respond(createResponse(req, 200, { toTag: 'uas-t' })) });
    const peer = await TcpPeer.connect(h.ports.tcp!);
    cleanup.push(() => peer.close());
    await peer.write(requestText({ method: 'INVITE', transport: 'TCP', branch: 'z9hG4bK-tcp-1', callId: 'tcp-call' }));
    await peer.waitForMessages(1);
    await delay(250);
    expect(peer.messages().map(statusOf)).toEqual([200]);
    await peer.write(
      requestText({ method: 'ACK', transport: 'TCP', branch: 'z9hG4bK-tcp-ack', callId: 'tcp-call', toTag: 'uas-t' }),
    );
    await until(() => h.acks.length === 1);
    expect(h.acks[0]!.source.transport).toBe('tcp');
  });
});
