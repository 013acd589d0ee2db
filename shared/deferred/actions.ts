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
