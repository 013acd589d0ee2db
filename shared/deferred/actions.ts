/**
 * The action list an INVITE carries (protocol.md "INVITE with actions"): one entry per
 * selected message, each naming `retrieve` or `delete`.
 */
import { LIST_ACTIONS, LIST_NAMESPACE, LIST_XML as X, type ListAction } from './names.ts';
import { escapeXmlAttr, parseXml } from './xml.ts';

export interface EntryAction {
  id: string;
  action: ListAction;
}

export type DecodedActions = { ok: true; actions: EntryAction[] } | { ok: false; reason: string };

function isAction(value: string | undefined): value is ListAction {
  return (LIST_ACTIONS as readonly string[]).includes(value ?? '');
}

/**
 * Read an action list; never throws. Every fault is a reason for 400. An id named twice keeps
 * its last action (at the position of its last mention).
 */
export function decodeActionList(xml: string): DecodedActions {
  return decodeCanonical(xml) ?? decodeParsed(xml);
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** XML 1.0 §2.3 S: white space is these four only. */
const S = '[ \\t\\r\\n]*';
/** Printable ASCII but `"`, `<` and `&`: no reference to resolve, nothing to normalise. */
const VALUE = '([\\x20\\x21\\x23-\\x25\\x27-\\x3b\\x3d-\\x7e]*)';
/** An optional XML declaration (first thing in the document, §2.8), then the root's start tag. */
const CANONICAL_HEAD = new RegExp(
  `(?:<\\?xml version="1\\.0"(?: encoding="(?:UTF|utf)-8")?\\?>)?${S}` +
    `<${escapeRegExp(X.root)} xmlns="${escapeRegExp(LIST_NAMESPACE)}"${S}>`,
  'y',
);
const CANONICAL_ENTRY = new RegExp(
  `${S}<${escapeRegExp(X.entry)} ${X.id}="${VALUE}" ${X.action}="${VALUE}"${S}/>`,
  'y',
);
const CANONICAL_TAIL = new RegExp(`${S}</${escapeRegExp(X.root)}>${S}$`, 'y');

/**
 * The shape encodeActionList writes (and clients copy), read in one linear pass without the
 * XML parser (it cost an INVITE ~150 µs): an optional XML declaration, the root with the
 * namespace as its default, entries with exactly `id` then `action` in double quotes, white
 * space between. Anything else (prefixes, single quotes, references, comments, other
 * attributes or elements, a value to report as a fault) is undefined: the parser decides.
 */
function decodeCanonical(xml: string): DecodedActions | undefined {
  CANONICAL_HEAD.lastIndex = 0;
  if (!CANONICAL_HEAD.test(xml)) return undefined;
  const byId = new Map<string, ListAction>();
  let at = CANONICAL_HEAD.lastIndex;
  for (;;) {
    CANONICAL_ENTRY.lastIndex = at;
    const m = CANONICAL_ENTRY.exec(xml);
    if (!m) break;
    const id = m[1]!.trim();
    const action = m[2]!.trim();
    if (!id || !isAction(action)) return undefined;
    byId.delete(id);
    byId.set(id, action);
    at = CANONICAL_ENTRY.lastIndex;
  }
  CANONICAL_TAIL.lastIndex = at;
  if (byId.size === 0 || !CANONICAL_TAIL.test(xml)) return undefined;
  return { ok: true, actions: [...byId].map(([id, action]) => ({ id, action })) };
}

function decodeParsed(xml: string): DecodedActions {
  const parsed = parseXml(xml);
  if (!parsed.ok) return parsed;
  const root = parsed.root;
  if (root.local !== X.root) return { ok: false, reason: `Root element is ${root.local}, not ${X.root}` };
  if (root.ns !== LIST_NAMESPACE) return { ok: false, reason: `Action list is not in namespace ${LIST_NAMESPACE}` };
  const byId = new Map<string, ListAction>();
  for (const child of root.children) {
    if (child.local !== X.entry || child.ns !== LIST_NAMESPACE) continue;
    const id = child.attrs[X.id]?.trim();
    if (!id) return { ok: false, reason: 'An entry has no id' };
    const action = child.attrs[X.action]?.trim();
    if (!isAction(action)) {
      return { ok: false, reason: `Entry ${id} has an unknown action "${action ?? ''}"` };
    }
    byId.delete(id);
    byId.set(id, action);
  }
  if (byId.size === 0) return { ok: false, reason: 'The action list names no entry' };
  return { ok: true, actions: [...byId].map(([id, action]) => ({ id, action })) };
}

/** The action list part of an INVITE, as protocol.md shows it. */
export function encodeActionList(actions: readonly EntryAction[]): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<${X.root} xmlns="${LIST_NAMESPACE}">`,
    ...actions.map((a) => `  <${X.entry} ${X.id}="${escapeXmlAttr(a.id)}" ${X.action}="${escapeXmlAttr(a.action)}"/>`),
    `</${X.root}>`,
  ].join('\n');
}
