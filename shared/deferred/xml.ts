/**
 * The small XML toolkit the list, action-list and IMDN codecs share: escaping for output, and
 * a guarded parse into a namespace-resolved element tree (fast-xml-parser underneath).
 * Documents with a DOCTYPE or entity declarations are refused outright: no entity expansion,
 * no external references (OWASP XXE guidance).
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';

/** XML 1.0 §2.2 Char: anything else cannot be written even escaped, so it becomes U+FFFD. */
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** Printable ASCII that neither text nor an attribute value escapes: most values are only this. */
const PLAIN = /^[\u0020-\u0021\u0023-\u0025\u0028-\u003b\u003d\u003f-\u007e]*$/;

/** Text content, escaped (XML 1.0 §2.4). */
export function escapeXmlText(value: string): string {
  if (PLAIN.test(value)) return value;
  return value.replace(NOT_XML_CHAR, '\uFFFD').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A double-quoted attribute value, escaped (XML 1.0 §3.3.3: whitespace kept as references). */
export function escapeXmlAttr(value: string): string {
  if (PLAIN.test(value)) return value;
  return escapeXmlText(value)
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
    .replace(/\t/g, '&#9;')
    .replace(/\n/g, '&#10;')
    .replace(/\r/g, '&#13;');
}

export interface XmlElement {
  /** Local name (prefix removed). */
  local: string;
  /** Namespace URI the element's prefix (or the default namespace) resolves to. */
  ns: string | undefined;
  /** Attributes by local name; unprefixed attributes have no namespace (Namespaces in XML §6.2). */
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Concatenated character data directly inside the element (CDATA included). */
  text: string;
}

export type XmlParseResult = { ok: true; root: XmlElement } | { ok: false; reason: string };

const PARSER = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  commentPropName: false,
  cdataPropName: '#cdata',
  // References are resolved by decodeReferences below: the parser's own entity pass tries a
  // regex per known entity on every value (over half its time on an INVITE's action list).
  processEntities: false,
});

/** The five predefined entities (XML 1.0 §4.6) and character references (§4.1). */
const REFERENCE = /&(?:(amp|lt|gt|quot|apos)|#([0-9]{1,7})|#x([0-9a-fA-F]{1,6}));/g;
const PREDEFINED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** A character a reference may not name (XML 1.0 §4.1 WFC: Legal Character). */
const notXmlChar = (cp: number) =>
  !(
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );

class IllegalCharacterReference extends Error {}

/** Character data or an attribute value with its references replaced (only those exist here: checked first). */
function decodeReferences(value: string): string {
  if (!value.includes('&')) return value;
  return value.replace(REFERENCE, (_, name: string | undefined, dec: string | undefined, hex: string | undefined) => {
    if (name) return PREDEFINED[name]!;
    const cp = dec !== undefined ? Number(dec) : parseInt(hex!, 16);
    if (notXmlChar(cp))
      throw new IllegalCharacterReference(`character reference to U+${cp.toString(16).toUpperCase()}`);
    return String.fromCodePoint(cp);
  });
}

/** A reference that is not one of XML's predefined entities or a character reference. */
const UNDEFINED_ENTITY = /&(?!(?:amp|lt|gt|quot|apos|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});)/;

/**
 * `text` without each `open` ... first following `close` span, as /open[\s\S]*?close/g would
 * remove them, in one pass: once a `close` is missing none follows, so the scan stops (the regex
 * retries every later `open` to the end, quadratic on "<!--<!--<!--...").
 */
function removeSpans(text: string, open: string, close: string): string {
  let out = '';
  let pos = 0;
  for (;;) {
    const start = text.indexOf(open, pos);
    if (start < 0) break;
    const end = text.indexOf(close, start + open.length);
    if (end < 0) break;
    out += text.slice(pos, start);
    pos = end + close.length;
  }
  return out + text.slice(pos);
}

type Node = Record<string, unknown> & { ':@'?: Record<string, string> };

/**
 * Largest document read (characters). Above the largest body the service takes (an INVITE's
 * 64 KiB, a deposit's 256 KiB): fast-xml-parser's validator turns superlinear on long attribute
 * values, so the size it may see is bounded (test/bench/fuzz.bench.ts measures it).
 */
export const MAX_XML_CHARS = 256 * 1024;

/** Parse a document; never throws. */
export function parseXml(xml: string): XmlParseResult {
  if (xml.length > MAX_XML_CHARS) return { ok: false, reason: `Not XML: over ${MAX_XML_CHARS} characters` };
  if (/<!DOCTYPE/i.test(xml) || /<!ENTITY/i.test(xml)) {
    return { ok: false, reason: 'DOCTYPE and entity declarations are not allowed' };
  }
  if (xml.trim().length === 0) return { ok: false, reason: 'Not XML: empty document' };
  const valid = XMLValidator.validate(xml);
  if (valid !== true) return { ok: false, reason: `Not XML: ${valid.err.msg}` };
  const markup = removeSpans(removeSpans(xml, '<![CDATA[', ']]>'), '<!--', '-->');
  if (UNDEFINED_ENTITY.test(markup)) return { ok: false, reason: 'Not XML: undefined entity reference' };
  let nodes: Node[];
  try {
    nodes = PARSER.parse(xml) as Node[];
  } catch (err) {
    return { ok: false, reason: `Not XML: ${(err as Error).message}` };
  }
  const roots = nodes.filter((n) => elementName(n) !== undefined);
  if (roots.length !== 1) return { ok: false, reason: 'Not XML: a document has exactly one root element' };
  const top = nodes.filter((n) => '#text' in n).map((n) => String(n['#text']));
  if (top.some((t) => t.trim().length > 0)) return { ok: false, reason: 'Not XML: text outside the root element' };
  try {
    return { ok: true, root: toElement(roots[0]!, {}) };
  } catch (err) {
    if (err instanceof IllegalCharacterReference) return { ok: false, reason: `Not XML: ${err.message}` };
    throw err;
  }
}

function elementName(node: Node): string | undefined {
  return Object.keys(node).find((k) => k !== ':@' && k !== '#text' && k !== '#cdata' && !k.startsWith('?'));
}

function toElement(node: Node, inherited: Record<string, string>): XmlElement {
  const qname = elementName(node)!;
  const rawAttrs = node[':@'] ?? {};
  const scope = { ...inherited };
  const attrs: Record<string, string> = {};
  for (const [name, raw] of Object.entries(rawAttrs)) {
    const value = decodeReferences(raw);
    if (name === 'xmlns') scope[''] = value;
    else if (name.startsWith('xmlns:')) scope[name.slice(6)] = value;
    else attrs[name.includes(':') ? name.slice(name.indexOf(':') + 1) : name] ??= value;
  }
  const colon = qname.indexOf(':');
  const prefix = colon >= 0 ? qname.slice(0, colon) : '';
  const children: XmlElement[] = [];
  let text = '';
  for (const child of (node[qname] as Node[]) ?? []) {
    if ('#text' in child) text += decodeReferences(String(child['#text']));
    else if ('#cdata' in child) {
      for (const c of (child['#cdata'] as Node[]) ?? []) text += String(c['#text'] ?? '');
    } else if (elementName(child) !== undefined) children.push(toElement(child, scope));
  }
  return { local: colon >= 0 ? qname.slice(colon + 1) : qname, ns: scope[prefix], attrs, children, text };
}

/** The first child with this local name in this namespace. */
export function childOf(el: XmlElement, local: string, ns: string): XmlElement | undefined {
  return el.children.find((c) => c.local === local && c.ns === ns);
}
