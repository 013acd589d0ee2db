import { describe, expect, it } from 'vitest';
import { namespacedHeader, parseCpim, wrapAsCpim } from '#shared/cpim/cpim.ts';
import { parseImdn } from '#shared/cpim/imdn.ts';
import { deferredFromCpim, failedDeliveryImdn } from '#shared/deferred/message.ts';
import { ALICE, BOB, sampleMessage } from './fixtures.ts';
import { protocolCpim } from './protocol-doc.ts';

const now = new Date('2026-11-23T10:00:05.000Z');
const base = { user: ALICE, now, retentionSeconds: 7 * 86400, id: '01JDQ8R0Z5K3N1V6X7Y8Z9A0BC' };

describe('deferredFromCpim', () => {
  it('reads the protocol.md CPIM into the stored record', () => {
    const cpim = protocolCpim();
    const out = deferredFromCpim({ ...base, cpim });
    expect(out).toEqual({
      ok: true,
      message: {
        user: ALICE,
        id: base.id,
        messageId: '34jk324j',
        from: BOB,
        to: ALICE,
        date: '2026-11-23T10:00:00.000Z',
        contentType: 'text/plain;charset=UTF-8',
        size: 6,
        dispositionNotification: 'positive-delivery, display',
        cpim: new Uint8Array(cpim),
        arrivedAt: '2026-11-23T10:00:05.000Z',
        expiresAt: Date.parse('2026-11-30T10:00:05.000Z') / 1000,
      },
    });
  });

  it('reads Subject (without its lang parameter), Conversation-ID and Contribution-ID', () => {
    const cpim = Buffer.from(
      [
        'From: <sip:bob@example.net>',
        'To: <sip:alice@example.com>',
        'DateTime: 2026-11-23T11:00:00+01:00',
        'Subject:;lang=fr Déjeuner ?',
        'NS: imdn <urn:ietf:params:imdn>',
        'NS: cpm <http://www.openmobilealliance.org/cpm/>',
        'imdn.Message-ID: abc',
        'cpm.Conversation-ID: conv-1',
        'cpm.Contribution-ID: contrib-1',
        '',
        'Content-Type: text/plain',
        '',
        'Salut',
      ].join('\r\n'),
    );
    const out = deferredFromCpim({ ...base, cpim });
    expect(out).toMatchObject({
      ok: true,
      message: {
        subject: 'Déjeuner ?',
        conversationId: 'conv-1',
        contributionId: 'contrib-1',
        // DateTime is kept as the same instant in UTC.
        date: '2026-11-23T10:00:00.000Z',
        size: 5,
      },
    });
  });

  it('names a message without imdn.Message-ID by its service id and dates it now', () => {
    const out = deferredFromCpim({ ...base, cpim: Buffer.from('From: <sip:bob@example.net>\r\n\r\n\r\nhello') });
    expect(out).toMatchObject({
      ok: true,
      message: { messageId: base.id, to: ALICE, date: now.toISOString(), contentType: 'text/plain', size: 5 },
    });
  });

  it.each([
    ['a broken CPIM', 'From: <sip:bob@example.net>', /empty line/],
    ['no From', 'To: <sip:alice@example.com>\r\n\r\n\r\nx', /From/],
    ['a bad DateTime', 'From: <sip:b@x>\r\nDateTime: yesterday\r\n\r\n\r\nx', /DateTime/],
  ])('refuses %s', (_name, text, reason) => {
    const out = deferredFromCpim({ ...base, cpim: Buffer.from(text) });
    expect(out.ok).toBe(false);
    expect(!out.ok && out.reason).toMatch(reason);
  });
});

describe('failedDeliveryImdn', () => {
  it('tells the sender, from the recipient, that its message failed', () => {
    const message = sampleMessage(1, { dispositionNotification: 'negative-delivery' });
    const out = failedDeliveryImdn(message, { now: new Date('2026-12-01T00:00:00.000Z'), messageId: 'n-1' });
    expect(out).toMatchObject({ from: ALICE, to: BOB, contentType: 'message/cpim' });
    const cpim = parseCpim(out.cpim);
    if (!cpim.ok) throw new Error(cpim.reason);
    expect(cpim.to).toBe(BOB);
    expect(namespacedHeader(cpim, 'urn:ietf:params:imdn', 'Message-ID')).toBe('n-1');
    expect(parseImdn(cpim.body.toString('utf8'))).toEqual({
      ok: true,
      messageId: 'msg-1',
      dateTime: message.date,
      recipientUri: ALICE,
      kind: 'delivery-notification',
      status: 'failed',
    });
  });

  it('names the original recipient when it differs from the served user', () => {
    const message = sampleMessage(1, { to: 'tel:+15551234' });
    const cpim = parseCpim(failedDeliveryImdn(message, { now, messageId: 'n-2' }).cpim);
    expect(cpim.ok && parseImdn(cpim.body.toString('utf8'))).toMatchObject({ originalRecipientUri: 'tel:+15551234' });
  });

  it('wraps a CPIM that deposits back as a message', () => {
    const cpim = wrapAsCpim({
      from: BOB,
      to: ALICE,
      dateTime: now.toISOString(),
      messageId: 'x',
      contentType: 'text/plain',
      body: Buffer.from('x'),
    });
    expect(deferredFromCpim({ ...base, cpim }).ok).toBe(true);
  });
});
