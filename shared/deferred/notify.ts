/**
 * NOTIFY content of the deferred-messages package (protocol.md "NOTIFY", RFC 6665 §4.2.2):
 * always full state, the oldest entries up to a cap, `total` the user's whole count.
 */
import type { DeferredMessageEntry } from './model.ts';
import { compareOldestFirst, encodeList } from './list-codec.ts';
import { LIST_CONTENT_TYPE } from './names.ts';

export function buildNotifyContent(input: {
  messages: readonly DeferredMessageEntry[];
  total: number;
  version: number;
  maxEntries: number;
}): { contentType: string; body: string } {
  const entries = [...input.messages].sort(compareOldestFirst).slice(0, Math.max(0, input.maxEntries));
  // `total` never claims fewer messages than the body itself shows.
  const total = Math.max(input.total, input.messages.length);
  return { contentType: LIST_CONTENT_TYPE, body: encodeList({ version: input.version, total, entries }) };
}
