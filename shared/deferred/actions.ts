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
  const entries = scanWrittenForm(xml) ?? parsedEntries(xml);
  if (!Array.isArray(entries)) return entries;
  const byId = new Map<string, ListAction>();
  for (const attrs of entries) {
    const id = attrs[X.id]?.trim();
    if (!id) return { ok: false, reason: 'An entry has no id' };
    const action = attrs[X.action]?.trim();
    if (!isAction(action)) {
      return { ok: false, reason: `Entry ${id} has an unknown action "${action ?? ''}"` };
    }
    byId.delete(id);
    byId.set(id, action);
  }
  if (byId.size === 0) return { ok: false, reason: 'The action list names no entry' };
  return { ok: true, actions: [...byId].map(([id, action]) => ({ id, action })) };
}

type EntryAttrs = Record<string, string | undefined>;

/** The entries' attributes, from the full XML parser (any well-formed document). */
export function parsedEntries(xml: string): EntryAttrs[] | { ok: false; reason: string } {
  const parsed = parseXml(xml);
  if (!parsed.ok) return parsed;
  const root = parsed.root;
  if (root.local !== X.root) return { ok: false, reason: `Root element is ${root.local}, not ${X.root}` };
  if (root.ns !== LIST_NAMESPACE) return { ok: false, reason: `Action list is not in namespace ${LIST_NAMESPACE}` };
  return root.children.filter((c) => c.local === X.entry && c.ns === LIST_NAMESPACE).map((c) => c.attrs);
}

// The form encodeActionList writes (protocol.md's example): these anchored patterns have no
// nested repetition, so the scan is linear. Attribute values without references, markup or the
// whitespace XML normalizes (XML 1.0 §3.3.3) read as they are written.
const WRITTEN = {
  declaration: /<\?xml version="1\.0" encoding="UTF-8"\?>/y,
  space: /[ \t\r\n]*/y,
  open: new RegExp(`<${X.root} xmlns="${LIST_NAMESPACE}"[ \\t\\r\\n]*>`, 'y'),
  entry: new RegExp(
    `<${X.entry}[ \\t\\r\\n]+(${X.id}|${X.action})="([^"&<\\t\\r\\n]*)"[ \\t\\r\\n]+(${X.id}|${X.action})="([^"&<\\t\\r\\n]*)"[ \\t\\r\\n]*/>`,
    'y',
  ),
  close: new RegExp(`</${X.root}[ \\t\\r\\n]*>`, 'y'),
};

/**
 * The entries of a list in exactly the written form, read without the XML parser (its validate
 * and parse were about 4 % of a pull's CPU); undefined for any other document (comments,
 * prefixes, references, other attributes or elements), which the full parser reads. Both read
 * the written form alike (test/unit/deferred/actions.test.ts).
 */
export function scanWrittenForm(xml: string): EntryAttrs[] | undefined {
  let at = 0;
  const take = (re: RegExp): RegExpExecArray | null => {
    re.lastIndex = at;
    const m = re.exec(xml);
    if (m) at = re.lastIndex;
    return m;
  };
  take(WRITTEN.declaration);
  take(WRITTEN.space);
  if (!take(WRITTEN.open)) return undefined;
  const entries: EntryAttrs[] = [];
  for (;;) {
    take(WRITTEN.space);
    const m = take(WRITTEN.entry);
    if (!m) break;
    if (m[1] === m[3]) return undefined;
    entries.push({ [m[1]!]: m[2], [m[3]!]: m[4] });
  }
  if (!take(WRITTEN.close)) return undefined;
  take(WRITTEN.space);
  return at === xml.length ? entries : undefined;
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
