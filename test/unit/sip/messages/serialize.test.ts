import { describe, expect, it } from 'vitest';
import { parseMessage, serializeMessage, withFirstHeader } from '#shared/sip/messages/index.ts';
import type { SipRequest, SipResponse } from '#shared/sip/messages/index.ts';

const headers = [
  { name: 'Via', value: 'SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1' },
  { name: 'From', value: '<sip:bob@example.net>;tag=1' },
  { name: 'To', value: '<sip:alice@example.com>' },
  { name: 'Call-ID', value: 'ser-1' },
  { name: 'CSeq', value: '1 MESSAGE' },
];

describe('serializeMessage', () => {
  it('writes the request line, headers in order, Content-Length, the empty line and the body', () => {
    const msg: SipRequest = {
      kind: 'request',
      method: 'MESSAGE',
      uri: 'sip:alice@example.com',
      headers: [...headers, { name: 'Content-Type', value: 'text/plain;charset=UTF-8' }],
      body: Buffer.from('Grüße'),
    };
    expect(serializeMessage(msg).toString('utf8')).toBe(
      [
        'MESSAGE sip:alice@example.com SIP/2.0',
        'Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1',
        'From: <sip:bob@example.net>;tag=1',
        'To: <sip:alice@example.com>',
        'Call-ID: ser-1',
        'CSeq: 1 MESSAGE',
        'Content-Type: text/plain;charset=UTF-8',
        'Content-Length: 7',
        '',
        'Grüße',
      ].join('\r\n'),
    );
  });

  it('writes the status line of a response', () => {
    const msg: SipResponse = { kind: 'response', status: 202, reason: 'Accepted', headers, body: Buffer.alloc(0) };
    expect(serializeMessage(msg).toString().split('\r\n')[0]).toBe('SIP/2.0 202 Accepted');
  });

  it('rewrites a wrong Content-Length in its place and drops a second one', () => {
    const msg: SipRequest = {
      kind: 'request',
      method: 'MESSAGE',
      uri: 'sip:alice@example.com',
      headers: [headers[0]!, { name: 'Content-Length', value: '999' }, ...headers.slice(1), { name: 'l', value: '3' }],
      body: Buffer.from('abc'),
    };
    const lines = serializeMessage(msg).toString().split('\r\n');
    expect(lines[2]).toBe('Content-Length: 3');
    expect(lines.filter((l) => /^(Content-Length|l):/i.test(l))).toHaveLength(1);
  });

  it('never lets a value break the framing', () => {
    const msg: SipRequest = {
      kind: 'request',
      method: 'MESSAGE',
      uri: 'sip:alice@example.com',
      headers: [...headers, { name: 'Subject', value: 'hi\r\nInjected: yes\r\n\r\nbody' }],
      body: Buffer.alloc(0),
    };
    const r = parseMessage(serializeMessage(msg));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.message.headers.find((h) => h.name === 'Subject')?.value).toBe('hi Injected: yes body');
    expect(r.message.headers.some((h) => h.name === 'Injected')).toBe(false);
  });

  it('keeps binary bodies byte for byte', () => {
    const body = Buffer.from([0, 255, 13, 10, 13, 10, 128]);
    const msg: SipRequest = { kind: 'request', method: 'MESSAGE', uri: 'sip:a@example.com', headers, body };
    const r = parseMessage(serializeMessage(msg));
    expect(r.ok && r.message.body.equals(body)).toBe(true);
  });
});

describe('withFirstHeader', () => {
  it('writes what serializing the message with that header first writes, body and all', () => {
    const msg: SipRequest = {
      kind: 'request',
      method: 'NOTIFY',
      uri: 'sip:alice@192.0.2.9:5060',
      headers: [
        { name: 'Max-Forwards', value: '70' },
        ...headers.slice(1),
        { name: 'Content-Type', value: 'text/plain' },
        { name: 'Content-Length', value: '7' },
      ],
      body: Buffer.from('Grüße!'),
    };
    const via = { name: 'Via', value: 'SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKab;rport' };
    const spliced = withFirstHeader(serializeMessage(msg), via.name, via.value);
    expect(spliced?.toString('latin1')).toBe(
      serializeMessage({ ...msg, headers: [via, ...msg.headers] }).toString('latin1'),
    );
    expect(withFirstHeader(Buffer.from('no start line'), via.name, via.value)).toBeUndefined();
  });
});
