import { describe, expect, it } from 'vitest';
import { escapeXmlAttr, escapeXmlText, parseXml } from '#shared/deferred/xml.ts';

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
    ['a NUL', '<r a="&#0;"/>', 'U+0'],
    ['a surrogate', '<r>&#xD800;</r>', 'U+D800'],
    ['past U+10FFFF', '<r>&#1114112;</r>', 'U+110000'],
    ['U+FFFE', '<r>&#xFFFE;</r>', 'U+FFFE'],
  ])('refuses a character reference to %s, naming it', (_, xml, named) => {
    expect(parseXml(xml)).toEqual({ ok: false, reason: `Not XML: character reference to ${named}` });
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
