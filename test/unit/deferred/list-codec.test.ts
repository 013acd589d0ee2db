import { describe, expect, it } from 'vitest';
import { cutListToFit, decodeList, decodeListIds, encodeList } from '#shared/deferred/list-codec.ts';
import type { DeferredMessage } from '#shared/deferred/model.ts';
import { ALICE, BOB, sampleMessage } from './fixtures.ts';
import { protocolExample } from './protocol-doc.ts';

/** The NOTIFY body of protocol.md, without its placeholder comment line. */
function protocolList(): string {
  const notify = protocolExample('<history-list xmlns="urn:oma:xml:im:history-list" version=');
  const body = notify.slice(notify.indexOf('<?xml'));
  return body
    .split('\n')
    .filter((l) => !l.includes('<!--'))
    .join('\n');
}

describe('the protocol.md NOTIFY example', () => {
  it('decodes to its entry, version and total', () => {
    const list = decodeList(protocolList());
    expect(list).toEqual({
      ok: true,
      version: 0,
      total: 2,
      state: 'full',
      entries: [
        {
          id: '01JDQ8R0Z5K3N1V6X7Y8Z9A0BC',
          messageId: '34jk324j',
          from: BOB,
          to: ALICE,
          date: '2026-11-23T10:00:00.000Z',
          subject: 'Lunch?',
          contentType: 'text/plain;charset=UTF-8',
          size: 6,
          conversationId: 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6',
          contributionId: 'abcdef-1234-5678',
          dispositionNotification: 'positive-delivery, display',
          expires: '2026-11-30T10:00:00.000Z',
        },
      ],
    });
  });

  it('is exactly what encodeList writes for that message', () => {
    const decoded = decodeList(protocolList());
    if (!decoded.ok) throw new Error(decoded.reason);
    const e = decoded.entries[0]!;
    const message: DeferredMessage = {
      user: ALICE,
      id: e.id,
      messageId: e.messageId,
      from: e.from,
      to: e.to,
      date: e.date,
      subject: e.subject!,
      contentType: e.contentType,
      size: e.size,
      conversationId: e.conversationId!,
      contributionId: e.contributionId!,
      dispositionNotification: e.dispositionNotification!,
      cpim: new Uint8Array(),
      arrivedAt: e.date,
      expiresAt: Date.parse(e.expires) / 1000,
    };
    expect(encodeList({ version: 0, total: 2, entries: [message] })).toBe(protocolList());
  });
});

describe('encodeList', () => {
  it('writes entries oldest first whatever the input order', () => {
    const xml = encodeList({ version: 3, total: 3, entries: [sampleMessage(3), sampleMessage(1), sampleMessage(2)] });
    const list = decodeList(xml);
    expect(list.ok && list.entries.map((e) => e.messageId)).toEqual(['msg-1', 'msg-2', 'msg-3']);
    expect(list.ok && list.version).toBe(3);
  });

  it('leaves optional elements out when unknown', () => {
    const xml = encodeList({ version: 0, total: 1, entries: [sampleMessage(1)] });
    for (const name of ['subject', 'conversation-id', 'contribution-id', 'disposition-notification']) {
      expect(xml).not.toContain(`<${name}>`);
    }
    const list = decodeList(xml);
    expect(list.ok && Object.keys(list.entries[0]!).sort()).toEqual(
      ['contentType', 'date', 'expires', 'from', 'id', 'messageId', 'size', 'to'].sort(),
    );
  });

  it('writes an empty list as a valid document', () => {
    const xml = encodeList({ version: 0, total: 0, entries: [] });
    expect(decodeList(xml)).toEqual({ ok: true, version: 0, total: 0, state: 'full', entries: [] });
  });

  it('escapes hostile values so they come back as text and inject nothing', () => {
    const hostile = sampleMessage(1, {
      id: 'x"/><entry id="evil',
      subject: '</subject><injected/>&amp; <![CDATA[ ]]> \'"',
      from: 'sip:"bob"@example.net?x=<y>&z',
      messageId: ']]>&lt;',
      contentType: 'text/plain;charset="UTF-8"',
    });
    const xml = encodeList({ version: 0, total: 1, entries: [hostile] });
    expect(xml).not.toContain('<injected/>');
    const list = decodeList(xml);
    if (!list.ok) throw new Error(list.reason);
    expect(list.entries).toHaveLength(1);
    expect(list.entries[0]).toMatchObject({
      id: hostile.id,
      subject: hostile.subject,
      from: hostile.from,
      messageId: hostile.messageId,
      contentType: hostile.contentType,
    });
  });

  it('replaces characters XML cannot carry instead of writing a broken document', () => {
    const xml = encodeList({ version: 0, total: 1, entries: [sampleMessage(1, { subject: 'a\u0000b\u001bc' })] });
    const list = decodeList(xml);
    expect(list.ok && list.entries[0]!.subject).toBe('a\uFFFDb\uFFFDc');
  });
});

describe('decodeList', () => {
  const valid = encodeList({ version: 1, total: 1, entries: [sampleMessage(1)] });

  it('refuses a DOCTYPE and entity declarations (no entity expansion)', () => {
    const bomb =
      '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>' +
      '<history-list xmlns="urn:oma:xml:im:history-list" version="0" total="0">&lol2;</history-list>';
    const out = decodeList(bomb);
    expect(out.ok).toBe(false);
    expect(!out.ok && out.reason).toMatch(/DOCTYPE/);
    expect(decodeList(valid.replace('<history-list', '<!ENTITY x "y"><history-list')).ok).toBe(false);
  });

  it('refuses undefined entity references', () => {
    expect(decodeList(valid.replace('msg-1', '&xxe;')).ok).toBe(false);
  });

  it('refuses a document in another namespace or with another root', () => {
    expect(decodeList(valid.replace('urn:oma:xml:im:history-list', 'urn:example:other')).ok).toBe(false);
    expect(
      decodeList(valid.replace(/history-list /, 'other-list ').replace('</history-list>', '</other-list>')).ok,
    ).toBe(false);
  });

  it('accepts a prefixed namespace', () => {
    const prefixed = valid
      .replace('<history-list xmlns=', '<h:history-list xmlns:h=')
      .replace('</history-list>', '</h:history-list>')
      .replace(/<(\/?)([a-z-]+)>/g, '<$1h:$2>')
      .replace(/<(\/?)entry/g, '<$1h:entry');
    const list = decodeList(prefixed);
    expect(list.ok && list.entries[0]!.messageId).toBe('msg-1');
  });

  it.each([
    ['not XML', 'hello'],
    ['unclosed', '<history-list xmlns="urn:oma:xml:im:history-list" version="0" total="0">'],
    ['no version', valid.replace(/ version="1"/, '')],
    ['bad total', valid.replace(/total="1"/, 'total="-1"')],
    ['entry without id', valid.replace(/ id="[^"]*"/, '')],
    ['entry without size', valid.replace(/<size>.*<\/size>/, '')],
    ['bad size', valid.replace(/<size>.*<\/size>/, '<size>big</size>')],
  ])('refuses %s', (_name, xml) => {
    expect(decodeList(xml).ok).toBe(false);
  });
});

describe('decodeListIds (the entries left unread)', () => {
  const three = encodeList({ version: 4, total: 7, entries: [sampleMessage(2), sampleMessage(1), sampleMessage(3)] });

  it('reads what decodeList reads of the root and the ids, in order', () => {
    const full = decodeList(three);
    if (!full.ok) throw new Error(full.reason);
    expect(decodeListIds(three)).toEqual({ ok: true, version: 4, total: 7, ids: full.entries.map((e) => e.id) });
    expect(decodeListIds(encodeList({ version: 0, total: 0, entries: [] }))).toEqual({
      ok: true,
      version: 0,
      total: 0,
      ids: [],
    });
  });

  it('reads the ids of prefixed entries too', () => {
    const prefixed = three
      .replace('<history-list xmlns=', '<h:history-list xmlns:h=')
      .replace('</history-list>', '</h:history-list>')
      .replace(/<(\/?)([a-z-]+)>/g, '<$1h:$2>')
      .replace(/<(\/?)entry/g, '<$1h:entry');
    const ids = decodeListIds(prefixed);
    expect(ids.ok && ids.ids.length).toBe(3);
  });

  it.each([
    ['not XML', 'hello'],
    ['a broken entry', three.replace('</size>', '</sise>')],
    ['a DOCTYPE', three.replace('<history-list', '<!DOCTYPE x><history-list')],
    ['bad total', three.replace(/total="7"/, 'total="-1"')],
    ['entry without id', three.replace(/ id="[^"]*"/, '')],
  ])('refuses %s', (_name, xml) => {
    expect(decodeListIds(xml).ok).toBe(false);
  });
});

describe('cutListToFit (a NOTIFY that cannot travel whole)', () => {
  it('drops the newest entries until it fits, keeping version and total', () => {
    const whole = encodeList({ version: 4, total: 9, entries: [1, 2, 3, 4].map((n) => sampleMessage(n)) });
    const cut = decodeList(cutListToFit(whole, (xml) => xml.length < whole.length - 100));
    if (!cut.ok) throw new Error(cut.reason);
    expect(cut.version).toBe(4);
    expect(cut.total).toBe(9);
    expect(cut.entries.length).toBeLessThan(4);
    const ids = [1, 2, 3, 4].map((n) => sampleMessage(n).id);
    expect(cut.entries.map((e) => e.id)).toEqual(ids.slice(0, cut.entries.length));
  });

  it('leaves a list that fits, and a body that is not a list, as they are', () => {
    const whole = encodeList({ version: 0, total: 1, entries: [sampleMessage(1)] });
    expect(cutListToFit(whole, () => true)).toBe(whole);
    expect(cutListToFit('not xml', () => false)).toBe('not xml');
  });
});
