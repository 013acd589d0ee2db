import { describe, expect, it } from 'vitest';
import { decodeActionList, encodeActionList } from '#shared/deferred/actions.ts';
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
