import { describe, expect, it } from 'vitest';
import { escapeXmlAttr, escapeXmlText, MAX_XML_DEPTH, parseXml } from '#shared/deferred/xml.ts';

describe('parseXml references (XML 1.0 §4.1, §4.6)', () => {
  it('resolves the predefined entities and character references in attributes and text', () => {
    const parsed = parseXml('<r xmlns="urn:a&amp;b" a="&lt;&#233;&#x1F600;&quot;&apos;&gt;">x&amp;&#65;</r>');
    expect(parsed).toEqual({
      ok: true,
      root: { local: 'r', ns: 'urn:a&b', attrs: { a: `<é😀"'>` }, children: [], text: 'x&A' },
    });
  });

  it('leaves CDATA as written', () => {
    expect(parseXml('<r><![CDATA[&amp;&#65;]]>&amp;</r>')).toMatchObject({ ok: true, root: { text: '&amp;&#65;&' } });
  });

  it.each([
    ['a NUL', '<r a="&#0;"/>', 'U+0', 10],
    ['a surrogate', '<r>&#xD800;</r>', 'U+D800', 11],
    ['past U+10FFFF', '<r>&#1114112;</r>', 'U+110000', 13],
    ['U+FFFE', '<r>&#xFFFE;</r>', 'U+FFFE', 11],
  ])('refuses a character reference to %s, naming it and where it ends', (_, xml, named, column) => {
    expect(parseXml(xml)).toEqual({
      ok: false,
      reason: `Not XML: character reference to ${named} (line 1, column ${column})`,
    });
  });

  it('refuses a reference to an entity XML does not predefine, and expands none', () => {
    expect(parseXml('<r>\n  &bogus;</r>')).toEqual({
      ok: false,
      reason: 'Not XML: undefined entity (line 2, column 9)',
    });
  });
});

describe('parseXml well-formedness (XML 1.0, Namespaces in XML)', () => {
  it.each([
    ['an unclosed element', '<r><a></r>', 'Not XML: unexpected close tag (line 1, column 10)'],
    ['a "<" in an attribute value', '<r a="<!--"/>', 'Not XML: disallowed character U+003C "<" (line 1, column 7)'],
    ['a control character', '<r>\u0001</r>', 'Not XML: disallowed character U+0001 (line 1, column 4)'],
    ['an attribute given twice', '<r a="1" a="2"/>', 'Not XML: duplicate attribute: a (line 1, column 16)'],
    ['two roots', '<r/><r/>', 'Not XML: documents may contain only one root (line 1, column 7)'],
    ['text after the root', '<r/>x', 'Not XML: text data outside of root node (line 1, column 5)'],
    ['an undeclared prefix', '<x:r/>', 'Not XML: unbound namespace prefix: "x" (line 1, column 6)'],
    ['a DOCTYPE', '<!DOCTYPE r [<!ENTITY e "x">]><r>&e;</r>', 'DOCTYPE and entity declarations are not allowed'],
  ])('refuses %s, saying what and where', (_, xml, reason) => {
    expect(parseXml(xml)).toEqual({ ok: false, reason });
  });

  it(`refuses elements nested over ${MAX_XML_DEPTH} deep, and reads ${MAX_XML_DEPTH}`, () => {
    const nested = (depth: number) => `${'<a>'.repeat(depth)}${'</a>'.repeat(depth)}`;
    expect(parseXml(nested(MAX_XML_DEPTH)).ok).toBe(true);
    expect(parseXml(nested(MAX_XML_DEPTH + 1))).toEqual({
      ok: false,
      reason: `Elements nested over ${MAX_XML_DEPTH} deep`,
    });
  });

  it('resolves prefixes and the default namespace per element', () => {
    const parsed = parseXml('<h:r xmlns:h="urn:h" xmlns="urn:d"><e h:id="1" id="2"/><h:e xmlns:h="urn:k"/></h:r>');
    expect(parsed).toEqual({
      ok: true,
      root: {
        local: 'r',
        ns: 'urn:h',
        attrs: {},
        children: [
          { local: 'e', ns: 'urn:d', attrs: { id: '1' }, children: [], text: '' },
          { local: 'e', ns: 'urn:k', attrs: {}, children: [], text: '' },
        ],
        text: '',
      },
    });
  });

  it('keeps the attributes of opaque elements and drops what is inside them, still checking it', () => {
    const xml = '<r><entry id="1"><a>x</a></entry><z>q</z></r>';
    expect(parseXml(xml, { opaque: ['entry'] })).toMatchObject({
      ok: true,
      root: {
        children: [
          { local: 'entry', attrs: { id: '1' }, children: [], text: '' },
          { local: 'z', text: 'q' },
        ],
      },
    });
    expect(parseXml(xml.replace('</a>', '</b>'), { opaque: ['entry'] }).ok).toBe(false);
  });
});

describe('escaping', () => {
  it('writes plain values as they are and escapes the markup characters', () => {
    expect(escapeXmlText('sip:bob@example.net;tag=1')).toBe('sip:bob@example.net;tag=1');
    expect(escapeXmlText(`a<b>&"'`)).toBe(`a&lt;b&gt;&amp;"'`);
    expect(escapeXmlAttr(`a<b>&"'\t\n\r`)).toBe('a&lt;b&gt;&amp;&quot;&apos;&#9;&#10;&#13;');
    expect(escapeXmlText('é\u0001\uFFFE')).toBe('é\uFFFD\uFFFD');
  });

  it('reads back what it wrote', () => {
    const value = `<x a="1"> & 'é' \t\n`;
    expect(parseXml(`<r a="${escapeXmlAttr(value)}">${escapeXmlText(value)}</r>`)).toMatchObject({
      ok: true,
      root: { attrs: { a: value }, text: value.replace(/\r/g, '') },
    });
  });
});
