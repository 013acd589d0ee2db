/**
 * The edge's in-dialog sender (protocol.md "NOTIFY"): one request at a time per dialog, CSeq
 * never going backwards on the wire, the failure policy that ends a subscription, and the UDP
 * size rule of RFC 3261 §18.1.1.
 */
import { describe, expect, it } from 'vitest';
import { CSEQ_MEMORY_MS, InDialogSender, UDP_MTU_LIMIT } from '#functions/edge/in-dialog-sender.ts';
import type { DeferredMessage, DialogState } from '#shared/deferred/model.ts';
import type { InDialogRequestSpec } from '#shared/events.ts';
import { cutListToFit, encodeList } from '#shared/deferred/list-codec.ts';
import { createResponse, getHeader, parseCSeq, serializeMessage } from '#shared/sip/messages/index.ts';
import type { Header, SipRequest, SipResponse } from '#shared/sip/messages/types.ts';
import type { Target } from '#shared/sip/transport/index.ts';

const dialog: DialogState = {
  callId: 'c1@127.0.0.1',
  localTag: 'pf1',
  remoteTag: 'ua1',
  localUri: 'sip:alice@example.com',
  remoteUri: 'sip:alice@example.com',
  remoteTarget: 'sip:alice@127.0.0.1:5099',
  routeSet: [],
  localCSeq: 0,
  flow: { edgeId: 'local', transport: 'udp', remoteAddress: '127.0.0.1', remotePort: 5099 },
};

function notify(cseq: number, state = 'active;expires=600', body?: string): InDialogRequestSpec {
  const headers: Header[] = [
    { name: 'Event', value: 'deferred-messages' },
    { name: 'Subscription-State', value: state },
  ];
  return {
    method: 'NOTIFY',
    dialog,
    cseq,
    headers,
    ...(body
      ? { body: Buffer.from(body).toString('base64'), contentType: 'application/vnd.oma.im.deferred-list+xml' }
      : {}),
    subscription: { user: 'sip:alice@example.com', dialogId: 'c1@127.0.0.1;pf1;ua1' },
  };
}

/** Stored messages as the NOTIFY list shows them (the payload does not matter here). */
function listEntries(n: number, subject?: string): DeferredMessage[] {
  return Array.from({ length: n }, (_, i) => ({
    user: 'sip:alice@example.com',
    id: `01JDQ8R0Z5K3N1V6X7Y8Z9A0B${i}`,
    messageId: `m${i}`,
    from: 'sip:bob@example.net',
    to: 'sip:alice@example.com',
    date: '2026-11-23T10:00:00.000Z',
    ...(subject ? { subject } : {}),
    contentType: 'text/plain;charset=UTF-8',
    size: 6,
    cpim: new Uint8Array(),
    arrivedAt: '2026-11-23T10:00:00.000Z',
    expiresAt: 1_900_000_000,
  }));
}

function harness(answer: (req: SipRequest, target: Target) => number | SipResponse, now?: () => number) {
  const sent: { req: SipRequest; target: Target }[] = [];
  const ended: number[] = [];
  const sender = new InDialogSender({
    transactions: {
      request: async (req, target) => {
        sent.push({ req, target });
        const a = answer(req, target);
        return typeof a === 'number' ? createResponse(req, a) : a;
      },
    },
    contactFor: (transport) => `<sip:pf@127.0.0.1:5060;transport=${transport}>`,
    shrinkBody: cutListToFit,
    onSubscriptionEnded: async (_sub, status) => {
      ended.push(status);
    },
    ...(now ? { now } : {}),
  });
  return { sender, sent, ended };
}

describe('InDialogSender', () => {
  it('does not send a NOTIFY whose CSeq was overtaken, but still sends a terminating one', async () => {
    const { sender, sent } = harness(() => 200);
    await sender.send(notify(3));
    await sender.send(notify(2));
    await sender.send(notify(1, 'terminated;reason=timeout'));
    expect(sent.map((s) => parseCSeq(getHeader(s.req, 'CSeq')!)!.seq)).toEqual([3, 1]);
  });

  it("keeps a dialog's last CSeq through a busy minute and forgets it once the dialog is quiet", async () => {
    let t = 0;
    const { sender, sent } = harness(
      () => 200,
      () => t,
    );
    const seqs = () => sent.map((s) => parseCSeq(getHeader(s.req, 'CSeq')!)!.seq);
    await sender.send(notify(5));
    t += CSEQ_MEMORY_MS + 1;
    // Other dialogs' traffic rotates the memory; this dialog's CSeq is still known for a period.
    await sender.send({ ...notify(1), dialog: { ...notify(1).dialog, callId: 'other' } });
    await sender.send(notify(4));
    expect(seqs()).toEqual([5, 1]);
    t += 2 * CSEQ_MEMORY_MS + 1;
    await sender.send({ ...notify(2), dialog: { ...notify(2).dialog, callId: 'other' } });
    await sender.send({ ...notify(3), dialog: { ...notify(3).dialog, callId: 'other' } });
    // Quiet for over two periods: forgotten (the map does not keep every subscription).
    await sender.send(notify(4));
    expect(seqs()).toEqual([5, 1, 2, 3, 4]);
  });

  it('ends the subscription on 481, 408 and other final failures without Retry-After, not on 401/407', async () => {
    let status = 481;
    const { sender, ended } = harness((req) => {
      const res = createResponse(req, status);
      if (status === 500) res.headers.push({ name: 'Retry-After', value: '10' });
      return res;
    });
    let cseq = 1;
    for (const s of [481, 408, 603, 401, 407, 500]) {
      status = s;
      await sender.send(notify(cseq++));
    }
    expect(ended).toEqual([481, 408, 603]);
  });

  it("sends to the route set's first URI with the dialog's transport in Contact (RFC 3261 §12.2.1.1)", async () => {
    const { sender, sent } = harness(() => 200);
    const routed: DialogState = {
      ...dialog,
      callId: 'c2@127.0.0.1',
      routeSet: ['<sip:127.0.0.1:5070;transport=tcp;lr>'],
      flow: { edgeId: 'local', transport: 'tcp', remoteAddress: '127.0.0.1', remotePort: 40001, connectionId: 'tcp-1' },
    };
    await sender.send({ ...notify(1), dialog: routed });
    expect(sent[0]!.target).toEqual({ transport: 'tcp', address: '127.0.0.1', port: 5070 });
    expect(getHeader(sent[0]!.req, 'Route')).toBe('<sip:127.0.0.1:5070;transport=tcp;lr>');
    expect(getHeader(sent[0]!.req, 'Contact')).toBe('<sip:pf@127.0.0.1:5060;transport=tcp>');
  });

  it('sends a NOTIFY over 1300 octets by TCP to the same next hop (RFC 3261 §18.1.1)', async () => {
    const entries = listEntries(6, 'A subject long enough to make the list grow past one datagram');
    const body = encodeList({ version: 0, total: 6, entries });
    const { sender, sent } = harness(() => 200);
    await sender.send(notify(1, 'active;expires=600', body));
    expect(sent).toHaveLength(1);
    expect(sent[0]!.target).toMatchObject({ transport: 'tcp', address: '127.0.0.1', port: 5099 });
  });

  it('cuts the list to fit a datagram when the next hop takes no TCP; total still tells', async () => {
    const entries = listEntries(6);
    const body = encodeList({ version: 0, total: 6, entries });
    const { sender, sent } = harness((_req, target) => (target.transport === 'tcp' ? 503 : 200));
    await sender.send(notify(1, 'active;expires=600', body));
    const overUdp = sent.find((s) => s.target.transport === 'udp')!;
    expect(serializeMessage(overUdp.req).length).toBeLessThanOrEqual(UDP_MTU_LIMIT);
    const xml = overUdp.req.body.toString('utf8');
    expect(xml).toContain('total="6"');
    expect((xml.match(/<entry /g) ?? []).length).toBeLessThan(6);
  });
});
