import { describe, expect, it } from 'vitest';
import {
  createErrorResponse,
  createResponse,
  getHeader,
  getHeaders,
  parseMessage,
  parseNameAddr,
  reasonPhrase,
  serializeMessage,
} from '#shared/sip/messages/index.ts';
import type { SipRequest } from '#shared/sip/messages/index.ts';

function requestOf(text: string): SipRequest {
  const r = parseMessage(Buffer.from(text));
  if (!r.ok || r.message.kind !== 'request') throw new Error('bad fixture');
  return r.message;
}

const SUBSCRIBE = requestOf(
  [
    'SUBSCRIBE sip:alice@example.com SIP/2.0',
    'Via: SIP/2.0/TCP proxy.example.com;branch=z9hG4bKp1, SIP/2.0/TCP 192.0.2.10:50211;branch=z9hG4bK776',
    'Via: SIP/2.0/TCP 192.0.2.9;branch=z9hG4bK0',
    'Max-Forwards: 70',
    'From: "Alice" <sip:alice@example.com>;tag=1928301774',
    'To: <sip:alice@example.com>',
    'Call-ID: a84b4c76e66710',
    'CSeq: 1 SUBSCRIBE',
    'Timestamp: 54',
    'Contact: <sip:alice@192.0.2.10:50211;transport=tcp>',
    'Event: deferred-messages',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n'),
);

describe('createResponse (RFC 3261 §8.2.6)', () => {
  it('copies Via (all, in order), From, To, Call-ID and CSeq', () => {
    const res = createResponse(SUBSCRIBE, 200, { toTag: 'pf-5f2c9' });
    expect(res.status).toBe(200);
    expect(res.reason).toBe('OK');
    expect(res.headers.map((h) => h.name)).toEqual(['Via', 'Via', 'From', 'To', 'Call-ID', 'CSeq']);
    expect(getHeaders(res, 'Via')).toEqual(getHeaders(SUBSCRIBE, 'Via'));
    expect(getHeader(res, 'From')).toBe('"Alice" <sip:alice@example.com>;tag=1928301774');
    expect(parseNameAddr(getHeader(res, 'To')!)?.params.tag).toBe('pf-5f2c9');
    expect(getHeader(res, 'CSeq')).toBe('1 SUBSCRIBE');
  });

  it('keeps an existing To tag', () => {
    const inDialog = {
      ...SUBSCRIBE,
      headers: SUBSCRIBE.headers.map((h) =>
        h.name === 'To' ? { name: 'To', value: '<sip:alice@example.com>;tag=abc' } : h,
      ),
    };
    expect(getHeader(createResponse(inDialog, 200, { toTag: 'new' }), 'To')).toBe('<sip:alice@example.com>;tag=abc');
  });

  it('copies Timestamp into a 100 only (§8.2.6.1)', () => {
    expect(getHeader(createResponse(SUBSCRIBE, 100), 'Timestamp')).toBe('54');
    expect(getHeader(createResponse(SUBSCRIBE, 200), 'Timestamp')).toBeUndefined();
  });

  it('adds the given headers, reason, body and its Content-Type', () => {
    const res = createResponse(SUBSCRIBE, 489, {
      headers: [{ name: 'Allow-Events', value: 'deferred-messages' }],
      body: Buffer.from('x'),
      contentType: 'text/plain',
    });
    expect(res.reason).toBe('Bad Event');
    expect(getHeader(res, 'Allow-Events')).toBe('deferred-messages');
    expect(getHeader(res, 'Content-Type')).toBe('text/plain');
    const wire = parseMessage(serializeMessage(res));
    expect(wire.ok && getHeader(wire.message, 'Content-Length')).toBe('1');
    expect(createResponse(SUBSCRIBE, 403, { reason: 'Not Your List' }).reason).toBe('Not Your List');
  });

  it('never throws on a broken request', () => {
    const broken = {
      kind: 'request',
      method: 'X',
      uri: '',
      headers: [null, { name: 'Via' }],
      body: Buffer.alloc(0),
    } as unknown as SipRequest;
    expect(() => createResponse(broken, 400)).not.toThrow();
    expect(() => createResponse({} as SipRequest, 400)).not.toThrow();
  });
});

describe('createErrorResponse', () => {
  it('builds a response from the headers a failed parse could read, with a To tag', () => {
    const r = parseMessage(
      Buffer.from(
        'INVITE sip:user@example.com SIP/2.0\r\nCSeq: 193942 INVITE\r\nVia: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf\r\nl: 0\r\n\r\n',
      ),
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const res = createErrorResponse(r.partial!, r.status, r.reason)!;
    expect(res.status).toBe(400);
    expect(res.reason).toBe('Bad Request - Missing To, From, Call-ID');
    expect(getHeader(res, 'Via')).toBe('SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf');
    expect(getHeader(res, 'CSeq')).toBe('193942 INVITE');
    expect(getHeader(res, 'To')).toBeUndefined();
  });

  it('adds a tag to a To without one', () => {
    const res = createErrorResponse({ headers: [{ name: 'To', value: '<sip:a@example.com>' }] }, 400, 'Bad Request')!;
    expect(parseNameAddr(getHeader(res, 'To')!)?.params.tag).toMatch(/^[0-9a-f]{12}$/);
  });

  it('answers a request with repeated single-valued headers with the first of each, which the client can read', () => {
    const r = parseMessage(
      Buffer.from(
        [
          'INVITE sip:user@company.com SIP/2.0',
          'Via: SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKkdjuw',
          'CSeq: 5 INVITE',
          'Call-ID: multi01.98asdh@192.0.2.1',
          'CSeq: 59 INVITE',
          'Call-ID: multi01.98asdh@192.0.2.2',
          'From: sip:caller@example.com;tag=3413415',
          'To: sip:user@example.com',
          'To: sip:other@example.net',
          'From: sip:caller@example.net;tag=2923420123',
          'l: 0',
          '',
          '',
        ].join('\r\n'),
      ),
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const res = createErrorResponse(r.partial!, r.status, r.reason)!;
    expect(res.headers.map((h) => `${h.name}: ${h.value}`).slice(0, 5)).toEqual([
      'Via: SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKkdjuw',
      'From: sip:caller@example.com;tag=3413415',
      expect.stringMatching(/^To: sip:user@example\.com;tag=[0-9a-f]+$/),
      'Call-ID: multi01.98asdh@192.0.2.1',
      'CSeq: 5 INVITE',
    ]);
    const atClient = parseMessage(serializeMessage(res));
    expect(atClient.ok && atClient.message.kind === 'response' && atClient.message.status).toBe(400);
  });

  it('gives up when nothing identifies the request', () => {
    expect(createErrorResponse({ headers: [{ name: 'Subject', value: 'x' }] }, 400, 'Bad Request')).toBeUndefined();
    expect(createErrorResponse({ headers: [] }, 400, 'Bad Request')).toBeUndefined();
  });
});

describe('reasonPhrase', () => {
  it('gives registered phrases, else the class name', () => {
    expect(reasonPhrase(200)).toBe('OK');
    expect(reasonPhrase(489)).toBe('Bad Event');
    expect(reasonPhrase(513)).toBe('Message Too Large');
    expect(reasonPhrase(299)).toBe('Success');
    expect(reasonPhrase(499)).toBe('Client Error');
    expect(reasonPhrase(42)).toBe('Unknown');
  });
});
