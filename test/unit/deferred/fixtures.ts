/** Sample domain records for unit tests. */
import { wrapAsCpim } from '#shared/cpim/cpim.ts';
import type { DeferredMessage } from '#shared/deferred/model.ts';

export const ALICE = 'sip:alice@example.com';
export const BOB = 'sip:bob@example.net';

/** A stored message for Alice from Bob; `n` makes ids, times and Message-IDs distinct and ordered. */
export function sampleMessage(n: number, overrides: Partial<DeferredMessage> = {}): DeferredMessage {
  const arrivedAt = new Date(Date.UTC(2026, 10, 23, 10, 0, n)).toISOString();
  const body = Buffer.from(`message ${n}`, 'utf8');
  const base: DeferredMessage = {
    user: ALICE,
    id: `01JDQ8R0Z5K3N1V6X7Y8Z9A${String(n).padStart(3, '0')}`,
    messageId: `msg-${n}`,
    from: BOB,
    to: ALICE,
    date: arrivedAt,
    contentType: 'text/plain;charset=UTF-8',
    size: body.length,
    cpim: wrapAsCpim({
      from: BOB,
      to: ALICE,
      dateTime: arrivedAt,
      messageId: `msg-${n}`,
      contentType: 'text/plain;charset=UTF-8',
      body,
    }),
    arrivedAt,
    expiresAt: Math.floor(Date.parse(arrivedAt) / 1000) + 7 * 86400,
  };
  return { ...base, ...overrides };
}
