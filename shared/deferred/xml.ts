/**
 * The small XML toolkit the list, action-list and IMDN codecs share: escaping for output, and
 * a guarded parse into a namespace-resolved element tree (fast-xml-parser underneath).
 * Documents with a DOCTYPE or entity declarations are refused outright: no entity expansion,
 * no external references (OWASP XXE guidance).
 */
import { XMLParser, XMLValidator, type X2jOptions } from 'fast-xml-parser';

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

const OPTIONS: X2jOptions = {
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
  // With entities off the parser only resets its decoder (and tells it the version of an XML
  // declaration; a DOCTYPE never reaches it): one that does nothing spares building the default
  // one, its entity tables copied, on every parse.
  entityDecoder: {
    setExternalEntities: () => undefined,
    addInputEntities: () => undefined,
    reset: () => undefined,
    decode: (text: string) => text,
    setXmlVersion: () => undefined,
  },
};
const PARSER = new XMLParser(OPTIONS);

/** Parsers leaving the content of the elements named unread (fast-xml-parser stop nodes), by names. */
const opaqueParsers = new Map<string, XMLParser>();

function parserFor(opaque: readonly string[]): XMLParser {
  if (opaque.length === 0) return PARSER;
  const key = opaque.join(' ');
  let parser = opaqueParsers.get(key);
  if (!parser) opaqueParsers.set(key, (parser = new XMLParser({ ...OPTIONS, stopNodes: opaque.map((n) => `*.${n}`) })));
  return parser;
}

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

export interface ParseXmlOptions {
  /**
   * Unprefixed names of elements below the root whose content is not parsed (the whole document
   * is still validated): they keep their attributes, and their `text` is the markup inside them,
   * with no children. For readers that need only their attributes: the tree below them is
   * most of the parse's cost.
   */
  opaque?: readonly string[];
}

/** Parse a document; never throws. */
export function parseXml(xml: string, options: ParseXmlOptions = {}): XmlParseResult {
  if (xml.length > MAX_XML_CHARS) return { ok: false, reason: `Not XML: over ${MAX_XML_CHARS} characters` };
  // A DOCTYPE, an entity declaration, a comment and a CDATA section all open with "<!": a
  // document without one (all that this service writes) is spared the scans for them.
  const declares = xml.includes('<!');
  if (declares && /<!(?:DOCTYPE|ENTITY)/i.test(xml)) {
    return { ok: false, reason: 'DOCTYPE and entity declarations are not allowed' };
  }
  if (xml.trim().length === 0) return { ok: false, reason: 'Not XML: empty document' };
  const valid = XMLValidator.validate(xml);
  if (valid !== true) return { ok: false, reason: `Not XML: ${valid.err.msg}` };
  if (xml.includes('&')) {
    const markup = declares ? removeSpans(removeSpans(xml, '<![CDATA[', ']]>'), '<!--', '-->') : xml;
    if (UNDEFINED_ENTITY.test(markup)) return { ok: false, reason: 'Not XML: undefined entity reference' };
  }
  let nodes: Node[];
  try {
    nodes = parserFor(options.opaque ?? []).parse(xml) as Node[];
  } catch (err) {
    return { ok: false, reason: `Not XML: ${(err as Error).message}` };
  }
  let root: Node | undefined;
  let roots = 0;
  let textOutside = false;
  for (const node of nodes) {
    if ('#text' in node) textOutside ||= String(node['#text']).trim().length > 0;
    else if (elementName(node) !== undefined && roots++ === 0) root = node;
  }
  if (roots !== 1) return { ok: false, reason: 'Not XML: a document has exactly one root element' };
  if (textOutside) return { ok: false, reason: 'Not XML: text outside the root element' };
  try {
    return { ok: true, root: toElement(root!, NO_NAMESPACES) };
  } catch (err) {
    if (err instanceof IllegalCharacterReference) return { ok: false, reason: `Not XML: ${err.message}` };
    throw err;
  }
}

/** The element name of a parser node (its one key that is not text, CDATA, attributes or a PI). */
function elementName(node: Node): string | undefined {
  for (const k in node) if (k !== ':@' && k !== '#text' && k !== '#cdata' && !k.startsWith('?')) return k;
  return undefined;
}

/** Namespace prefixes in scope ('' the default namespace), shared until an element declares one. */
const NO_NAMESPACES: Readonly<Record<string, string>> = {};

function toElement(node: Node, inherited: Readonly<Record<string, string>>): XmlElement {
  const qname = elementName(node)!;
  const rawAttrs = node[':@'];
  let scope = inherited;
  const attrs: Record<string, string> = {};
  for (const name in rawAttrs) {
    const value = decodeReferences(rawAttrs[name]!);
    if (name === 'xmlns' || name.startsWith('xmlns:')) {
      if (scope === inherited) scope = { ...inherited };
      (scope as Record<string, string>)[name === 'xmlns' ? '' : name.slice(6)] = value;
    } else attrs[name.includes(':') ? name.slice(name.indexOf(':') + 1) : name] ??= value;
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
