/**
 * The deferred-message list document (protocol.md "NOTIFY"): the body of every NOTIFY of the
 * deferred-messages package, `application/vnd.oma.im.deferred-list+xml`.
 */
import type { DeferredMessageEntry } from './model.ts';
import { LIST_NAMESPACE, LIST_STATE_FULL, LIST_XML as X } from './names.ts';
import { childOf, escapeXmlAttr, escapeXmlText, parseXml, type ParseXmlOptions, type XmlElement } from './xml.ts';

/** One entry of a list as a client reads it. */
export interface ListEntry {
  id: string;
  messageId: string;
  from: string;
  to: string;
  date: string;
  subject?: string;
  contentType: string;
  size: number;
  conversationId?: string;
  contributionId?: string;
  dispositionNotification?: string;
  /** ISO-8601 time after which the message is gone. */
  expires: string;
}

export type DecodedList =
  { ok: true; version: number; total: number; state: string; entries: ListEntry[] } | { ok: false; reason: string };

/** Oldest first: arrival time, then the ULID (which sorts by creation time too). */
export function compareOldestFirst(a: DeferredMessageEntry, b: DeferredMessageEntry): number {
  if (a.arrivedAt !== b.arrivedAt) return a.arrivedAt < b.arrivedAt ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function element(name: string, value: string): string {
  return `    <${name}>${escapeXmlText(value)}</${name}>`;
}

function encodeEntry(m: DeferredMessageEntry): string {
  const lines = [
    `  <${X.entry} ${X.id}="${escapeXmlAttr(m.id)}">`,
    element(X.messageId, m.messageId),
    element(X.from, m.from),
    element(X.to, m.to),
    element(X.date, m.date),
  ];
  if (m.subject !== undefined) lines.push(element(X.subject, m.subject));
  lines.push(element(X.contentType, m.contentType), element(X.size, String(m.size)));
  if (m.conversationId !== undefined) lines.push(element(X.conversationId, m.conversationId));
  if (m.contributionId !== undefined) lines.push(element(X.contributionId, m.contributionId));
  if (m.dispositionNotification !== undefined) {
    lines.push(element(X.dispositionNotification, m.dispositionNotification));
  }
  lines.push(element(X.expires, new Date(m.expiresAt * 1000).toISOString()), `  </${X.entry}>`);
  return lines.join('\n');
}

/** The list document for these entries (written oldest first, whatever order they come in). */
export function encodeList(list: { version: number; total: number; entries: DeferredMessageEntry[] }): string {
  const entries = [...list.entries].sort(compareOldestFirst).map(encodeEntry);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<${X.root} xmlns="${LIST_NAMESPACE}" ${X.version}="${list.version}" ${X.state}="${LIST_STATE_FULL}" ${X.total}="${list.total}">`,
    ...entries,
    `</${X.root}>`,
  ].join('\n');
}

function nonNegativeInt(text: string | undefined): number | undefined {
  if (text === undefined || !/^\s*\d{1,15}\s*$/.test(text)) return undefined;
  return Number(text);
}

function decodeEntry(el: XmlElement): ListEntry | string {
  const id = el.attrs[X.id]?.trim();
  if (!id) return 'An entry has no id';
  const text = (name: string) => childOf(el, name, LIST_NAMESPACE)?.text.trim();
  const required = [X.messageId, X.from, X.to, X.date, X.contentType, X.size, X.expires] as const;
  for (const name of required) if (!text(name)) return `Entry ${id} has no ${name}`;
  const size = nonNegativeInt(text(X.size));
  if (size === undefined) return `Entry ${id} has a bad size`;
  const entry: ListEntry = {
    id,
    messageId: text(X.messageId)!,
    from: text(X.from)!,
    to: text(X.to)!,
    date: text(X.date)!,
    contentType: text(X.contentType)!,
    size,
    expires: text(X.expires)!,
  };
  const subject = childOf(el, X.subject, LIST_NAMESPACE)?.text;
  if (subject !== undefined) entry.subject = subject;
  const conversationId = text(X.conversationId);
  if (conversationId) entry.conversationId = conversationId;
  const contributionId = text(X.contributionId);
  if (contributionId) entry.contributionId = contributionId;
  const disposition = text(X.dispositionNotification);
  if (disposition) entry.dispositionNotification = disposition;
  return entry;
}

/** The root of a list document with its version and total, or why it is not one. */
function readRoot(
  xml: string,
  options: ParseXmlOptions = {},
): { ok: true; root: XmlElement; version: number; total: number } | { ok: false; reason: string } {
  const parsed = parseXml(xml, options);
  if (!parsed.ok) return parsed;
  const root = parsed.root;
  if (root.local !== X.root || root.ns !== LIST_NAMESPACE) {
    return { ok: false, reason: `Root is not ${X.root} in ${LIST_NAMESPACE}` };
  }
  const version = nonNegativeInt(root.attrs[X.version]);
  if (version === undefined) return { ok: false, reason: 'Missing or bad version' };
  const total = nonNegativeInt(root.attrs[X.total]);
  if (total === undefined) return { ok: false, reason: 'Missing or bad total' };
  return { ok: true, root, version, total };
}

const isEntry = (el: XmlElement) => el.local === X.entry && el.ns === LIST_NAMESPACE;

/** Read a list document (clients and tests); never throws. */
export function decodeList(xml: string): DecodedList {
  const read = readRoot(xml);
  if (!read.ok) return read;
  const { root, version, total } = read;
  const entries: ListEntry[] = [];
  for (const child of root.children) {
    if (!isEntry(child)) continue;
    const entry = decodeEntry(child);
    if (typeof entry === 'string') return { ok: false, reason: entry };
    entries.push(entry);
  }
  return { ok: true, version, total, state: root.attrs[X.state] ?? LIST_STATE_FULL, entries };
}

/**
 * The version, total and entry ids of a list document, the entries' content checked but not
 * kept: what a client retrieving them needs (its INVITE names ids), without the elements, texts
 * and entries decodeList builds. Never throws.
 */
export function decodeListIds(
  xml: string,
): { ok: true; version: number; total: number; ids: string[] } | { ok: false; reason: string } {
  const read = readRoot(xml, { opaque: [X.entry] });
  if (!read.ok) return read;
  const ids: string[] = [];
  for (const child of read.root.children) {
    if (!isEntry(child)) continue;
    const id = child.attrs[X.id]?.trim();
    if (!id) return { ok: false, reason: 'An entry has no id' };
    ids.push(id);
  }
  return { ok: true, version: read.version, total: read.total, ids };
}

/** A decoded entry back into the record shape the encoder takes (a cut list re-encodes the same entries). */
function asRecord(entry: ListEntry): DeferredMessageEntry {
  return {
    user: entry.to,
    id: entry.id,
    messageId: entry.messageId,
    from: entry.from,
    to: entry.to,
    date: entry.date,
    ...(entry.subject !== undefined ? { subject: entry.subject } : {}),
    contentType: entry.contentType,
    size: entry.size,
    ...(entry.conversationId !== undefined ? { conversationId: entry.conversationId } : {}),
    ...(entry.contributionId !== undefined ? { contributionId: entry.contributionId } : {}),
    ...(entry.dispositionNotification !== undefined ? { dispositionNotification: entry.dispositionNotification } : {}),
    arrivedAt: entry.date,
    expiresAt: Math.floor(Date.parse(entry.expires) / 1000),
  };
}

/**
 * protocol.md "NOTIFY": a list that cannot travel whole (a NOTIFY too large for UDP whose TCP
 * attempt failed) loses its newest entries until `fits` accepts it; `version` and `total` stay,
 * so the client still knows how many are waiting. A body that is not a list is returned as is.
 */
export function cutListToFit(xml: string, fits: (xml: string) => boolean): string {
  const list = decodeList(xml);
  if (!list.ok || fits(xml)) return xml;
  let entries = list.entries;
  for (;;) {
    const body = encodeList({ version: list.version, total: list.total, entries: entries.map(asRecord) });
    if (entries.length === 0 || fits(body)) return body;
    entries = entries.slice(0, entries.length - 1);
  }
}
