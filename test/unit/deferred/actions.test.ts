import { beforeEach, describe, expect, it, vi } from 'vitest';
import { decodeActionList, encodeActionList } from '#shared/deferred/actions.ts';
import * as xml from '#shared/deferred/xml.ts';

vi.mock('#shared/deferred/xml.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('#shared/deferred/xml.ts')>();
  return { ...real, parseXml: vi.fn((text: string) => real.parseXml(text)) };
});
import { protocolExample } from './protocol-doc.ts';

/** The action-list part of the protocol.md INVITE. */
function protocolActionList(): string {
  const invite = protocolExample('INVITE sip:alice@example.com');
  const start = invite.indexOf('<?xml');
  return invite.slice(start, invite.indexOf('--b1--')).trimEnd();
}

const NS = 'urn:oma:xml:im:history-list';
const doc = (entries: string, root = `<history-list xmlns="${NS}">`) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n${root}\n${entries}\n</history-list>`;

describe('decodeActionList without the XML parser (the shape encodeActionList writes)', () => {
  const parseXml = vi.mocked(xml.parseXml);
  beforeEach(() => {
    parseXml.mockClear();
  });
  const viaParser = (d: string) => d.replace('</history-list>', '<!-- read by the parser --></history-list>');

  it.each([
    ['what encodeActionList writes', encodeActionList([{ id: '01JDQ8R0Z5K3N1V6X7Y8Z9A0BC', action: 'retrieve' }])],
    ['ten entries', encodeActionList(Array.from({ length: 10 }, (_, i) => ({ id: `id-${i}`, action: 'retrieve' })))],
    [
      'an id named twice',
      doc('<entry id="a" action="retrieve"/><entry id="b" action="delete"/><entry id="a" action="delete"/>'),
    ],
    [
      'no declaration, white space around',
      `  <history-list xmlns="${NS}" >\r\n\t<entry id=" a " action="delete" />\n</history-list>\n`,
    ],
  ])('reads %s in one pass, as the parser reads it', (_name, d) => {
    const fast = decodeActionList(d);
    expect(parseXml).not.toHaveBeenCalled();
    expect(fast.ok).toBe(true);
    expect(decodeActionList(viaParser(d))).toEqual(fast);
    expect(parseXml).toHaveBeenCalledTimes(1);
  });

  it.each([
    ['single quotes', doc(`<entry id='a' action='retrieve'/>`)],
    ['a prefix', `<h:history-list xmlns:h="${NS}"><h:entry id="a" action="retrieve"/></h:history-list>`],
    ['a reference in an id', doc('<entry id="a&amp;b" action="retrieve"/>')],
    ['white space before the declaration', ` ${doc('<entry id="a" action="retrieve"/>')}`],
    ['an unknown action', doc('<entry id="a" action="forward"/>')],
    ['an empty id', doc('<entry id="" action="retrieve"/>')],
    ['another namespace', doc('<entry id="a" action="retrieve"/>', '<history-list xmlns="urn:example">')],
    ['no entry', doc('')],
  ])('leaves %s to the parser', (_name, d) => {
    const out = decodeActionList(d);
    expect(parseXml).toHaveBeenCalledTimes(1);
    expect(out).toEqual(decodeActionList(viaParser(d)));
  });
});

describe('decodeActionList', () => {
  it('reads the protocol.md INVITE list', () => {
    expect(decodeActionList(protocolActionList())).toEqual({
      ok: true,
      actions: [
        { id: '01JDQ8R0Z5K3N1V6X7Y8Z9A0BC', action: 'retrieve' },
        { id: '01JDQ8S4M2P7Q9R1T3V5W7X9YZ', action: 'delete' },
      ],
    });
  });

  it('collapses an id named twice to its last action', () => {
    const out = decodeActionList(
      doc('<entry id="a" action="retrieve"/><entry id="b" action="retrieve"/><entry id="a" action="delete"/>'),
    );
    expect(out).toEqual({
      ok: true,
      actions: [
        { id: 'b', action: 'retrieve' },
        { id: 'a', action: 'delete' },
      ],
    });
  });

  it.each([
    ['not XML', 'retrieve everything', /Not XML/],
    [
      'a DOCTYPE',
      `<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>${doc('<entry id="&e;" action="delete"/>')}`,
      /DOCTYPE/,
    ],
    ['another root', `<actions xmlns="${NS}"><entry id="a" action="delete"/></actions>`, /Root/],
    ['no namespace', doc('<entry id="a" action="delete"/>', '<history-list>'), /namespace/],
    ['another namespace', doc('<entry id="a" action="delete"/>', '<history-list xmlns="urn:x">'), /namespace/],
    ['an entry without id', doc('<entry action="delete"/>'), /no id/],
    ['an empty id', doc('<entry id=" " action="delete"/>'), /no id/],
    ['an unknown action', doc('<entry id="a" action="forward"/>'), /unknown action/],
    ['a missing action', doc('<entry id="a"/>'), /unknown action/],
    ['no entries', doc(''), /no entry/],
  ])('refuses %s', (_name, xml, reason) => {
    const out = decodeActionList(xml);
    expect(out.ok).toBe(false);
    expect(!out.ok && out.reason).toMatch(reason);
  });
});

describe('encodeActionList', () => {
  it('writes the protocol.md INVITE list exactly', () => {
    expect(
      encodeActionList([
        { id: '01JDQ8R0Z5K3N1V6X7Y8Z9A0BC', action: 'retrieve' },
        { id: '01JDQ8S4M2P7Q9R1T3V5W7X9YZ', action: 'delete' },
      ]),
    ).toBe(protocolActionList());
  });

  it('round-trips ids that need escaping', () => {
    const actions = [{ id: 'a"b<c>&d\'e', action: 'delete' as const }];
    expect(decodeActionList(encodeActionList(actions))).toEqual({ ok: true, actions });
  });
});
