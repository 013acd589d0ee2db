import { describe, expect, it } from 'vitest';
import { namespacedHeader, parseCpim, wrapAsCpim } from '#shared/cpim/cpim.ts';
import { protocolCpim } from '../deferred/protocol-doc.ts';

describe('parseCpim (RFC 3862)', () => {
  it('reads the protocol.md example', () => {
    const cpim = parseCpim(protocolCpim());
    if (!cpim.ok) throw new Error(cpim.reason);
    expect(cpim.from).toBe('sip:bob@example.net');
    expect(cpim.to).toBe('sip:alice@example.com');
    expect(cpim.dateTime).toBe('2026-11-23T10:00:00.000Z');
    expect(cpim.ns).toEqual({ imdn: 'urn:ietf:params:imdn' });
    expect(cpim.headers.map((h) => h.name)).toEqual([
      'From',
      'To',
      'DateTime',
      'NS',
      'imdn.Message-ID',
      'imdn.Disposition-Notification',
    ]);
    expect(namespacedHeader(cpim, 'urn:ietf:params:imdn', 'Message-ID')).toBe('34jk324j');
    expect(cpim.contentHeaders).toEqual([{ name: 'Content-Type', value: 'text/plain;charset=UTF-8' }]);
    expect(cpim.body.toString('utf8')).toBe('Lunch?');
  });

  it('keeps a binary body byte for byte', () => {
    const body = Buffer.from([0, 13, 10, 13, 10, 255, 254, 10]);
    const cpim = parseCpim(
      Buffer.concat([Buffer.from('From: <sip:a@x>\r\n\r\nContent-Type: application/octet-stream\r\n\r\n'), body]),
    );
    expect(cpim.ok && cpim.body.equals(body)).toBe(true);
  });

  it('tolerates LF line ends and display names', () => {
    const cpim = parseCpim(
      Buffer.from('From: Bob <sip:bob@example.net>\nTo: sip:alice@example.com\n\nContent-Type: text/plain\n\nhi'),
    );
    expect(cpim).toMatchObject({ ok: true, from: 'sip:bob@example.net', to: 'sip:alice@example.com' });
    expect(cpim.ok && cpim.body.toString()).toBe('hi');
  });

  it('resolves a namespace bound to another prefix', () => {
    const cpim = parseCpim(
      Buffer.from('From: <sip:a@x>\r\nNS: n <urn:ietf:params:imdn>\r\nn.Message-ID: abc\r\n\r\n\r\nx'),
    );
    expect(cpim.ok && namespacedHeader(cpim, 'urn:ietf:params:imdn', 'Message-ID')).toBe('abc');
  });

  it.each([
    ['an empty body', ''],
    ['no empty line after the message headers', 'From: <sip:a@x>\r\nTo: <sip:b@y>'],
    ['no content part', 'From: <sip:a@x>\r\n\r\n'],
    ['text where content headers belong', 'From: <sip:a@x>\r\n\r\nHello there'],
    ['a header line without a colon', 'From <sip:a@x>\r\n\r\nContent-Type: text/plain\r\n\r\nx'],
    ['a malformed NS', 'NS: imdn urn:ietf:params:imdn\r\n\r\nContent-Type: text/plain\r\n\r\nx'],
  ])('refuses %s', (_name, text) => {
    expect(parseCpim(Buffer.from(text)).ok).toBe(false);
  });

  it('refuses headers that are not UTF-8', () => {
    const bad = Buffer.concat([Buffer.from('Subject: '), Buffer.from([0xff, 0xfe]), Buffer.from('\r\n\r\n\r\nx')]);
    expect(parseCpim(bad).ok).toBe(false);
  });

  it.each([
    [
      'headers without their empty line',
      'From: <sip:bob@example.net>\r\nTo: <sip:alice@example.com>\r\n',
      /message headers are not ended by an empty line/,
    ],
    [
      'a malformed line before the missing end',
      'From: <sip:bob@example.net>\r\nnot a header\r\nTo: x',
      /message headers: malformed line "not a header"/,
    ],
    [
      'content headers without their empty line',
      'From: <sip:bob@example.net>\r\n\r\nContent-Type: text/plain\r\n',
      /content headers are not ended/,
    ],
    [
      'a multi-byte character cut by a line end',
      `Subject: ${Buffer.from('é').subarray(0, 1).toString('latin1')}\r\n\r\n\r\nx`,
      /message headers are not UTF-8/,
    ],
  ])('names what is wrong: %s', (_name, text, reason) => {
    const cpim = parseCpim(Buffer.from(text, 'latin1'));
    expect(cpim.ok ? 'parsed' : cpim.reason).toMatch(reason);
  });

  it('reads LF-only and CRLF header lines alike, up to the first empty line', () => {
    const cpim = parseCpim(
      Buffer.from(
        'From: <sip:bob@example.net>\nTo: <sip:alice@example.com>\r\n\nContent-Type: text/plain\r\n\r\nFrom: x\n',
      ),
    );
    expect(cpim).toMatchObject({ ok: true, from: 'sip:bob@example.net', to: 'sip:alice@example.com' });
    expect(cpim.ok && cpim.body.toString()).toBe('From: x\n');
  });
});

describe('wrapAsCpim', () => {
  it('writes exactly the protocol.md shape', () => {
    const cpim = wrapAsCpim({
      from: 'sip:bob@example.net',
      to: 'sip:alice@example.com',
      dateTime: '2026-11-23T10:00:00.000Z',
      messageId: '34jk324j',
      dispositionNotification: 'positive-delivery, display',
      contentType: 'text/plain;charset=UTF-8',
      body: Buffer.from('Lunch?'),
    });
    expect(cpim.toString('utf8')).toBe(protocolCpim().toString('utf8'));
  });

  it('round-trips through parseCpim, subject and extra content headers included', () => {
    const body = Buffer.from('{"a":1}');
    const cpim = parseCpim(
      wrapAsCpim({
        from: 'sip:bob@example.net',
        to: 'tel:+15551234',
        dateTime: '2026-01-01T00:00:00.000Z',
        messageId: 'm-1',
        subject: 'Über',
        contentType: 'application/json',
        contentHeaders: [{ name: 'Content-Disposition', value: 'render' }],
        body,
      }),
    );
    if (!cpim.ok) throw new Error(cpim.reason);
    expect(cpim.from).toBe('sip:bob@example.net');
    expect(cpim.to).toBe('tel:+15551234');
    expect(cpim.headers.find((h) => h.name === 'Subject')?.value).toBe('Über');
    expect(namespacedHeader(cpim, 'urn:ietf:params:imdn', 'Message-ID')).toBe('m-1');
    expect(cpim.contentHeaders).toEqual([
      { name: 'Content-Type', value: 'application/json' },
      { name: 'Content-Disposition', value: 'render' },
    ]);
    expect(cpim.body.equals(body)).toBe(true);
  });

  it('keeps a hostile value on its own line (no header injection)', () => {
    const cpim = parseCpim(
      wrapAsCpim({
        from: 'sip:bob@example.net',
        to: 'sip:alice@example.com',
        dateTime: '2026-01-01T00:00:00.000Z',
        messageId: 'x\r\nimdn.Disposition-Notification: negative-delivery',
        subject: 'hi\r\n\r\nContent-Type: text/html',
        contentType: 'text/plain',
        body: Buffer.from('x'),
      }),
    );
    if (!cpim.ok) throw new Error(cpim.reason);
    expect(namespacedHeader(cpim, 'urn:ietf:params:imdn', 'Disposition-Notification')).toBeUndefined();
    expect(cpim.contentHeaders).toEqual([{ name: 'Content-Type', value: 'text/plain' }]);
  });
});
