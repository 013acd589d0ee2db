import { describe, expect, it } from 'vitest';
import { getHeader, getHeaders, parseMessage, serializeMessage } from '#shared/sip/messages/index.ts';
import type { SipRequest } from '#shared/sip/messages/index.ts';
import type { Flow } from '#shared/sip/dialog/index.ts';
import {
  buildInDialogRequest,
  checkRemoteCSeq,
  createUasDialog,
  dialogIdOf,
  newTag,
  remoteCSeqOf,
  nextHopOf,
} from '#shared/sip/dialog/index.ts';

function parse(text: string): SipRequest {
  const r = parseMessage(Buffer.from(text.replace(/\n/g, '\r\n')), { datagram: true });
  if (!r.ok || r.message.kind !== 'request') throw new Error(`bad test request: ${r.ok ? 'response' : r.reason}`);
  return r.message;
}

const subscribe = (recordRoutes: string[]) =>
  parse(
    [
      'SUBSCRIBE sip:alice@example.com SIP/2.0',
      'Via: SIP/2.0/TCP 192.0.2.10:50211;branch=z9hG4bK776asdhds;rport',
      ...recordRoutes.map((r) => `Record-Route: ${r}`),
      'Max-Forwards: 70',
      'From: "Alice" <sip:alice@example.com>;tag=1928301774',
      'To: <sip:alice@example.com>',
      'Call-ID: a84b4c76e66710',
      'CSeq: 7 SUBSCRIBE',
      'Contact: <sip:alice@192.0.2.10:50211;transport=tcp>',
      'Event: deferred-messages',
      'Expires: 3600',
      'Content-Length: 0',
      '',
      '',
    ].join('\n'),
  );

const flow: Flow = {
  edgeId: 'edge-a',
  transport: 'tcp',
  remoteAddress: '192.0.2.10',
  remotePort: 50211,
  connectionId: 'tcp-4',
};

describe('UAS dialog creation (RFC 3261 §12.1.1)', () => {
  it('takes Call-ID, tags, URIs, remote target, remote CSeq and the Record-Route set in order', () => {
    const req = subscribe(['<sip:p1.example.net;lr>', '<sip:p2.example.net;lr;transport=tcp>']);
    const dialog = createUasDialog(req, 'pf-5f2c9', flow);
    expect(dialog).toEqual({
      callId: 'a84b4c76e66710',
      localTag: 'pf-5f2c9',
      remoteTag: '1928301774',
      localUri: 'sip:alice@example.com',
      remoteUri: 'sip:alice@example.com',
      remoteTarget: 'sip:alice@192.0.2.10:50211;transport=tcp',
      routeSet: ['<sip:p1.example.net;lr>', '<sip:p2.example.net;lr;transport=tcp>'],
      localCSeq: 0,
      remoteCSeq: 7,
      flow,
    });
    expect(remoteCSeqOf(req)).toBe(7);
  });

  it('reads a comma-separated Record-Route field in order too', () => {
    const dialog = createUasDialog(subscribe(['<sip:p1.example.net;lr>, <sip:p2.example.net;lr>']), 'x', flow);
    expect(dialog.routeSet).toEqual(['<sip:p1.example.net;lr>', '<sip:p2.example.net;lr>']);
  });

  it('gives the same id for the dialog and for a request the client sends in it', () => {
    const dialog = createUasDialog(subscribe([]), 'pf-5f2c9', flow);
    expect(dialogIdOf(dialog)).toBe('a84b4c76e66710;pf-5f2c9;1928301774');
    const refresh = parse(
      [
        'SUBSCRIBE sip:pf@example.com SIP/2.0',
        'Via: SIP/2.0/TCP 192.0.2.10:50211;branch=z9hG4bKrefresh',
        'From: <sip:alice@example.com>;tag=1928301774',
        'To: <sip:alice@example.com>;tag=pf-5f2c9',
        'Call-ID: a84b4c76e66710',
        'CSeq: 8 SUBSCRIBE',
        'Max-Forwards: 70',
        'Content-Length: 0',
        '',
        '',
      ].join('\n'),
    );
    expect(dialogIdOf(refresh)).toBe(dialogIdOf(dialog));
  });

  it('rejects an in-dialog request whose CSeq went backwards with 500 (§12.2.2)', () => {
    const req = subscribe([]);
    expect(checkRemoteCSeq(undefined, req)).toEqual({ ok: true, remoteCSeq: 7 });
    expect(checkRemoteCSeq(7, req)).toEqual({ ok: true, remoteCSeq: 7 });
    expect(checkRemoteCSeq(9, req)).toMatchObject({ ok: false, status: 500 });
  });

  it('makes tags that differ', () => {
    expect(newTag()).not.toBe(newTag());
    expect(newTag()).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe('in-dialog requests (RFC 3261 §12.2.1.1)', () => {
  it('builds a NOTIFY to the remote target with the loose route set, tags, CSeq and body', () => {
    const dialog = createUasDialog(subscribe(['<sip:p1.example.net;lr>', '<sip:p2.example.net;lr>']), 'pf-5f2c9', flow);
    const body = Buffer.from('<history-list/>');
    const req = buildInDialogRequest(dialog, 'NOTIFY', 3, {
      headers: [
        { name: 'Event', value: 'deferred-messages' },
        { name: 'Subscription-State', value: 'active;expires=3599' },
      ],
      body,
      contentType: 'application/vnd.oma.im.deferred-list+xml',
      contact: 'sip:pf@127.0.0.1:5060',
    });
    expect(req.uri).toBe('sip:alice@192.0.2.10:50211;transport=tcp');
    expect(getHeaders(req, 'Route')).toEqual(['<sip:p1.example.net;lr>', '<sip:p2.example.net;lr>']);
    expect(getHeader(req, 'From')).toBe('<sip:alice@example.com>;tag=pf-5f2c9');
    expect(getHeader(req, 'To')).toBe('<sip:alice@example.com>;tag=1928301774');
    expect(getHeader(req, 'Call-ID')).toBe('a84b4c76e66710');
    expect(getHeader(req, 'CSeq')).toBe('3 NOTIFY');
    expect(getHeader(req, 'Max-Forwards')).toBe('70');
    expect(getHeader(req, 'Contact')).toBe('<sip:pf@127.0.0.1:5060>');
    expect(getHeader(req, 'Content-Type')).toBe('application/vnd.oma.im.deferred-list+xml');
    expect(getHeader(req, 'Content-Length')).toBe(String(body.length));
    expect(getHeader(req, 'Via')).toBeUndefined();

    // It survives the wire once a Via is added.
    req.headers.unshift({ name: 'Via', value: 'SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKn1' });
    const again = parseMessage(serializeMessage(req));
    expect(again.ok).toBe(true);
    if (again.ok) expect(again.message.body.toString()).toBe('<history-list/>');
  });

  it('sends no Route header when the route set is empty', () => {
    const dialog = createUasDialog(subscribe([]), 'pf', flow);
    const req = buildInDialogRequest(dialog, 'BYE', 2);
    expect(req.uri).toBe(dialog.remoteTarget);
    expect(getHeaders(req, 'Route')).toEqual([]);
    expect(getHeader(req, 'Content-Length')).toBe('0');
    expect(getHeader(req, 'Content-Type')).toBeUndefined();
  });

  it('follows a strict router: its URI becomes the Request-URI and the remote target the last Route', () => {
    const dialog = createUasDialog(
      subscribe(['<sip:strict.example.net;transport=tcp>', '<sip:p2.example.net;lr>']),
      'pf',
      flow,
    );
    const req = buildInDialogRequest(dialog, 'NOTIFY', 4);
    expect(req.uri).toBe('sip:strict.example.net;transport=tcp');
    expect(getHeaders(req, 'Route')).toEqual(['<sip:p2.example.net;lr>', '<sip:alice@192.0.2.10:50211;transport=tcp>']);
  });
});

describe('next hop of in-dialog requests (RFC 3261 §12.2.1.1, §8.1.2, RFC 3263 §4)', () => {
  it("goes to the route set's first URI with its transport, not back to the flow", () => {
    const dialog = createUasDialog(
      subscribe(['<sip:127.0.0.1:5070;transport=tcp;lr;r2=on>', '<sip:127.0.0.1:5071;lr>']),
      'pf',
      flow,
    );
    expect(nextHopOf(dialog)).toEqual({ transport: 'tcp', address: '127.0.0.1', port: 5070 });
  });

  it('uses UDP and port 5060 for a first route without transport or port, TLS 5061 for SIPS', () => {
    expect(nextHopOf(createUasDialog(subscribe(['<sip:192.0.2.7;lr>']), 'pf', flow))).toEqual({
      transport: 'udp',
      address: '192.0.2.7',
      port: 5060,
    });
    expect(nextHopOf(createUasDialog(subscribe(['<sips:[2001:db8::7];lr>']), 'pf', flow))).toEqual({
      transport: 'tls',
      address: '2001:db8::7',
      port: 5061,
    });
  });

  it('goes to the remote target when the route set is empty', () => {
    expect(nextHopOf(createUasDialog(subscribe([]), 'pf', flow))).toEqual({
      transport: 'tcp',
      address: '192.0.2.10',
      port: 50211,
    });
  });

  it('keeps the flow in the RFC 5626 outbound case: ob in the Contact, or a WebSocket client', () => {
    const ob = subscribe([]);
    ob.headers = ob.headers.map((h) =>
      h.name === 'Contact' ? { name: 'Contact', value: '<sip:alice@192.0.2.10:50211;transport=tcp;ob>' } : h,
    );
    expect(nextHopOf(createUasDialog(ob, 'pf', flow))).toEqual({
      transport: 'tcp',
      address: '192.0.2.10',
      port: 50211,
      connectionId: 'tcp-4',
    });
    const ws = subscribe([]);
    ws.headers = ws.headers.map((h) =>
      h.name === 'Contact' ? { name: 'Contact', value: '<sip:k3j2@df7jal23ls0d.invalid;transport=ws>' } : h,
    );
    const wsFlow: Flow = { ...flow, transport: 'ws', connectionId: 'ws-9' };
    expect(nextHopOf(createUasDialog(ws, 'pf', wsFlow))).toMatchObject({ transport: 'ws', connectionId: 'ws-9' });
  });

  it('still finds the route set after the dialog record was stored and read back (edge restart)', () => {
    const dialog = createUasDialog(subscribe(['<sip:127.0.0.1:5070;transport=tcp;lr>']), 'pf', flow);
    const stored = JSON.parse(JSON.stringify(dialog)) as typeof dialog;
    expect(nextHopOf(stored)).toEqual({ transport: 'tcp', address: '127.0.0.1', port: 5070 });
    expect(buildInDialogRequest(stored, 'NOTIFY', 2).uri).toBe('sip:alice@192.0.2.10:50211;transport=tcp');
  });
});
