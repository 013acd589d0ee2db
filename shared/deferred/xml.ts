/**
 * The small XML toolkit the list, action-list and IMDN codecs share: escaping for output, and
 * a guarded parse into a namespace-resolved element tree, in one pass of saxes (a strict,
 * namespace-aware SAX parser that checks well-formedness as it reads). Documents with a DOCTYPE
 * are refused outright: no entity declarations, no entity expansion, no external references
 * (OWASP XXE guidance).
 */
import { SaxesParser, type SaxesTagNS } from 'saxes';

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

/** Largest document read (characters): the largest body the service takes is a deposit's 256 KiB. */
export const MAX_XML_CHARS = 256 * 1024;

/**
 * Deepest nesting read. The documents here nest 4 deep; saxes resolves a prefix by walking the
 * open elements up to its declaration, so the bound is what keeps a parse linear in its input
 * ("<a><a><a>..." under a default namespace would cost depth² otherwise).
 */
export const MAX_XML_DEPTH = 32;

export interface ParseXmlOptions {
  /**
   * Local names of elements below the root whose content is checked but not kept: they keep
   * their attributes, with no children and no text. For readers that need only their
   * attributes (building the tree below them is most of the work left).
   */
  opaque?: readonly string[];
}

/** A document the parser read but this module refuses (DOCTYPE, nesting), with the reason to give. */
class Refused extends Error {}

/** A well-formedness error, where saxes found it. */
class NotWellFormed extends Error {
  constructor(
    readonly what: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(what);
  }
}

class TreeParser extends SaxesParser<{ xmlns: true; defaultXMLVersion: '1.0'; forceXMLVersion: true }> {
  root: XmlElement | undefined;
  /** The open elements kept, innermost last. */
  readonly open: XmlElement[] = [];
  depth = 0;
  /** Elements open inside an opaque one, the opaque one counted (0: outside any). */
  skip = 0;
  opaque: readonly string[] = [];

  constructor() {
    // XML 1.0 whatever the declaration says: the service writes and reads 1.0 only (1.1 would
    // admit references to control characters).
    super({ xmlns: true, defaultXMLVersion: '1.0', forceXMLVersion: true });
    this.on('doctype', () => {
      throw new Refused('DOCTYPE and entity declarations are not allowed');
    });
    this.on('opentagstart', () => {
      if (++this.depth > MAX_XML_DEPTH) throw new Refused(`Elements nested over ${MAX_XML_DEPTH} deep`);
    });
    this.on('opentag', (tag) => this.openElement(tag));
    this.on('closetag', () => this.closeElement());
    this.on('text', (text) => this.addText(text));
    this.on('cdata', (text) => this.addText(text));
  }

  override makeError(message: string): Error {
    return new NotWellFormed(message.replace(/\.$/, ''), this.line, this.column);
  }

  reset(opaque: readonly string[]): void {
    this.root = undefined;
    this.open.length = 0;
    this.depth = 0;
    this.skip = 0;
    this.opaque = opaque;
  }

  private openElement(tag: SaxesTagNS): void {
    if (this.skip > 0) {
      this.skip++;
      return;
    }
    const attrs: Record<string, string> = {};
    for (const name in tag.attributes) {
      const attr = tag.attributes[name]!;
      // Unprefixed attributes have no namespace (Namespaces in XML §6.2): kept by local name.
      if (attr.prefix !== 'xmlns' && name !== 'xmlns') attrs[attr.local] ??= attr.value;
    }
    const el: XmlElement = {
      local: tag.local,
      ns: tag.uri === '' ? undefined : tag.uri,
      attrs,
      children: [],
      text: '',
    };
    const parent = this.open[this.open.length - 1];
    if (parent) {
      parent.children.push(el);
      if (this.opaque.length > 0 && this.opaque.includes(el.local)) this.skip = 1;
    } else this.root = el;
    this.open.push(el);
  }

  private closeElement(): void {
    this.depth--;
    if (this.skip > 1) {
      this.skip--;
      return;
    }
    this.skip = 0;
    this.open.pop();
  }

  private addText(text: string): void {
    if (this.skip > 0) return;
    const el = this.open[this.open.length - 1];
    // Outside the root only whitespace gets here (saxes refuses the rest).
    if (el) el.text += text;
  }
}

/** One parser, reused: saxes resets itself when a document closes; one that failed midway is dropped. */
let parser: TreeParser | undefined;

/** Parse a document; never throws. */
export function parseXml(xml: string, options: ParseXmlOptions = {}): XmlParseResult {
  if (xml.length > MAX_XML_CHARS) return { ok: false, reason: `Not XML: over ${MAX_XML_CHARS} characters` };
  const p = (parser ??= new TreeParser());
  p.reset(options.opaque ?? []);
  try {
    p.write(xml).close();
  } catch (err) {
    parser = undefined;
    if (err instanceof Refused) return { ok: false, reason: err.message };
    if (err instanceof NotWellFormed) return { ok: false, reason: `Not XML: ${describe(err, xml, p.position)}` };
    throw err;
  }
  const root = p.root!;
  p.root = undefined;
  return { ok: true, root };
}

/** A reference naming a character XML does not have (XML 1.0 §4.1 WFC: Legal Character), by its code point. */
const CHARACTER_REFERENCE = /^&#(?:([0-9]{1,8})|x([0-9a-fA-F]{1,8}));$/;

/** What is wrong and where; a character reference saxes calls malformed is named by its code point. */
function describe(err: NotWellFormed, xml: string, position: number): string {
  const where = ` (line ${err.line}, column ${err.column})`;
  if (err.what === 'malformed character entity') {
    // saxes reports it just past the reference's ";", and a reference holds no other "&".
    const ref = CHARACTER_REFERENCE.exec(xml.slice(xml.lastIndexOf('&', position), position));
    if (ref) {
      const cp = ref[1] !== undefined ? Number(ref[1]) : parseInt(ref[2]!, 16);
      return `character reference to U+${cp.toString(16).toUpperCase()}${where}`;
    }
    return `malformed character reference${where}`;
  }
  if (err.what === 'disallowed character') {
    // The character just read: one not allowed where it stands (a "<" in an attribute value, a control character).
    const cp = xml.codePointAt(position - 1) ?? 0;
    const shown = cp > 0x20 && cp < 0x7f ? ` "${String.fromCodePoint(cp)}"` : '';
    return `disallowed character U+${cp.toString(16).toUpperCase().padStart(4, '0')}${shown}${where}`;
  }
  return err.what + where;
}

/** The first child with this local name in this namespace. */
export function childOf(el: XmlElement, local: string, ns: string): XmlElement | undefined {
  return el.children.find((c) => c.local === local && c.ns === ns);
}
