import { describe, expect, it } from 'vitest';
import { decodeActionList, encodeActionList, parsedEntries, scanWrittenForm } from '#shared/deferred/actions.ts';
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

describe('the written form, read without the XML parser', () => {
  const written = [
    protocolActionList(),
    encodeActionList([{ id: 'a', action: 'retrieve' }]),
    encodeActionList(Array.from({ length: 10 }, (_, i) => ({ id: `m${i}`, action: 'retrieve' as const }))),
    doc('<entry action="delete" id="x"/>\n\t<entry id=" y " action="retrieve" />'),
    doc('<entry id="a" action="retrieve"/><entry id="b" action="fetch"/>'),
    doc('<entry id="" action="retrieve"/>'),
    doc(''),
    `<history-list xmlns="${NS}"><entry id="q'>" action="delete"/></history-list>\n`,
  ];

  it('reads every list in the form encodeActionList writes as the XML parser reads it', () => {
    for (const xml of written) {
      expect(scanWrittenForm(xml), xml).toEqual(parsedEntries(xml));
    }
  });

  it('leaves every other document to the XML parser, with its answer', () => {
    const others = [
      doc('<!-- c --><entry id="a" action="retrieve"/>'),
      doc('<entry id="a&amp;b" action="retrieve"/>'),
      doc("<entry id='a' action='retrieve'/>"),
      doc('<entry id="a" action="retrieve" extra="1"/>'),
      doc('<entry id="a" id="b"/>'),
      doc('<entry id="a\tb" action="retrieve"/>'),
      doc('<entry id="a" action="retrieve"></entry>'),
      doc('<l:entry xmlns:l="urn:oma:xml:im:history-list" id="a" action="retrieve"/>'),
      doc('<entry id="a" action="retrieve"/>', '<history-list xmlns="urn:other">'),
      `${doc('<entry id="a" action="retrieve"/>')}<more/>`,
      ` ${doc('<entry id="a" action="retrieve"/>')}`,
      `<?xml version="1.0" encoding="UTF-8"?><history-list xmlns="${NS}"><entry id="a" action="retrieve"/>`,
    ];
    for (const xml of others) {
      expect(scanWrittenForm(xml), xml).toBeUndefined();
      const parsed = parsedEntries(xml);
      const decoded = decodeActionList(xml);
      if (!Array.isArray(parsed)) expect(decoded, xml).toEqual(parsed);
    }
    // A comment between entries is still a list the parser reads.
    expect(decodeActionList(others[0]!)).toEqual({ ok: true, actions: [{ id: 'a', action: 'retrieve' }] });
  });
});
