import { describe, expect, it } from 'vitest';
import { namespacedHeader, parseCpim } from '#shared/cpim/cpim.ts';
import { buildImdn, parseDispositionNotification, parseImdn, wrapImdnInCpim } from '#shared/cpim/imdn.ts';

const failed = {
  messageId: '34jk324j',
  dateTime: '2026-11-23T10:00:00.000Z',
  recipientUri: 'sip:alice@example.com',
  status: 'failed' as const,
  kind: 'delivery-notification' as const,
};

describe('parseDispositionNotification (RFC 5438 §6.3)', () => {
  it('reads the tokens, lower-cased', () => {
    expect([...parseDispositionNotification('positive-delivery, Negative-Delivery ,display')]).toEqual([
      'positive-delivery',
      'negative-delivery',
      'display',
    ]);
    expect(parseDispositionNotification('').size).toBe(0);
  });
});

describe('buildImdn (RFC 5438 §7.2.1.1)', () => {
  it('writes a failed delivery notification', () => {
    expect(buildImdn(failed)).toBe(
      [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<imdn xmlns="urn:ietf:params:imdn">',
        '  <message-id>34jk324j</message-id>',
        '  <datetime>2026-11-23T10:00:00.000Z</datetime>',
        '  <recipient-uri>sip:alice@example.com</recipient-uri>',
        '  <delivery-notification>',
        '    <status>',
        '      <failed/>',
        '    </status>',
        '  </delivery-notification>',
        '</imdn>',
      ].join('\n'),
    );
  });

  it.each(['delivered', 'failed', 'forbidden', 'error'] as const)('round-trips status %s', (status) => {
    const xml = buildImdn({ ...failed, status, originalRecipientUri: 'sip:a&b@example.com' });
    expect(parseImdn(xml)).toEqual({ ok: true, ...failed, status, originalRecipientUri: 'sip:a&b@example.com' });
  });

  it('escapes a hostile Message-ID', () => {
    const xml = buildImdn({ ...failed, messageId: '</message-id><x/>' });
    expect(parseImdn(xml)).toMatchObject({ ok: true, messageId: '</message-id><x/>' });
  });
});

describe('parseImdn', () => {
  it.each([
    ['a DOCTYPE', '<!DOCTYPE imdn><imdn xmlns="urn:ietf:params:imdn"/>'],
    ['another namespace', buildImdn(failed).replace('urn:ietf:params:imdn', 'urn:x')],
    ['no status', buildImdn(failed).replace('<failed/>', '')],
    ['no message-id', buildImdn(failed).replace(/<message-id>.*<\/message-id>/, '')],
  ])('refuses %s', (_name, xml) => {
    expect(parseImdn(xml).ok).toBe(false);
  });
});

describe('wrapImdnInCpim (RFC 5438 §7.1.1)', () => {
  it('carries the notification with its own Message-ID and Content-Disposition: notification', () => {
    const cpim = parseCpim(
      wrapImdnInCpim({
        from: 'sip:alice@example.com',
        to: 'sip:bob@example.net',
        dateTime: '2026-11-30T10:00:01.000Z',
        messageId: 'imdn-1',
        imdn: failed,
      }),
    );
    if (!cpim.ok) throw new Error(cpim.reason);
    expect(cpim.from).toBe('sip:alice@example.com');
    expect(cpim.to).toBe('sip:bob@example.net');
    expect(namespacedHeader(cpim, 'urn:ietf:params:imdn', 'Message-ID')).toBe('imdn-1');
    // A notification never asks for notifications itself.
    expect(namespacedHeader(cpim, 'urn:ietf:params:imdn', 'Disposition-Notification')).toBeUndefined();
    expect(cpim.contentHeaders).toEqual([
      { name: 'Content-Type', value: 'message/imdn+xml' },
      { name: 'Content-Disposition', value: 'notification' },
    ]);
    expect(parseImdn(cpim.body.toString('utf8'))).toMatchObject({ ok: true, status: 'failed', messageId: '34jk324j' });
  });
});
