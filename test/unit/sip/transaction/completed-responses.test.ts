import { describe, expect, it } from 'vitest';
import { CompletedResponses } from '#shared/sip/transaction/completed-responses.ts';
import type { SentResponse } from '#shared/sip/transport/index.ts';

const response = (n: number, extra = ''): SentResponse => ({
  status: 200 + (n % 3),
  // Bytes as they left: above 0x7f (a UTF-8 display name) too.
  bytes: Buffer.from(
    `SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.${n % 250}:5060;branch=z9hG4bK-${n}\r\nFrom: "é" <sip:a@b>\r\n${extra}\r\n`,
  ),
  transport: 'udp',
  address: n % 2 === 0 ? `127.0.0.${(n % 250) + 1}` : '::1',
  port: 5060 + n,
});

describe('completed non-INVITE server transactions kept as their responses', () => {
  it('gives back each response as it left, under its key, until its Timer J', () => {
    const kept = new CompletedResponses({ chunkBytes: 512 });
    const positions: number[] = [];
    for (let n = 0; n < 20; n++) positions.push(kept.add(`z9hG4bK-${n}|127.0.0.1:5060|SUBSCRIBE`, response(n))!);
    expect(kept.size).toBe(20);
    for (let n = 0; n < 20; n++) expect(kept.get(`z9hG4bK-${n}|127.0.0.1:5060|SUBSCRIBE`)).toEqual(response(n));
    expect(kept.get('z9hG4bK-20|127.0.0.1:5060|SUBSCRIBE')).toBeUndefined();
    for (const at of positions.slice(0, 10)) kept.expire(at);
    expect(kept.size).toBe(10);
    expect(kept.has('z9hG4bK-9|127.0.0.1:5060|SUBSCRIBE')).toBe(false);
    expect(kept.get('z9hG4bK-19|127.0.0.1:5060|SUBSCRIBE')).toEqual(response(19));
    for (const at of positions.slice(10)) kept.expire(at);
    expect(kept.size).toBe(0);
  });

  it('keeps a response larger than a chunk', () => {
    const kept = new CompletedResponses({ chunkBytes: 256 });
    const big = response(1, `Warning: 399 x "${'y'.repeat(1000)}"\r\n`);
    kept.add('small-1|h|OPTIONS', response(2));
    kept.add('big|h|OPTIONS', big);
    kept.add('small-2|h|OPTIONS', response(3));
    expect(kept.get('big|h|OPTIONS')).toEqual(big);
    expect(kept.get('small-2|h|OPTIONS')).toEqual(response(3));
  });

  it('refuses a response when every chunk is in use, and takes one again once the oldest expired', () => {
    const kept = new CompletedResponses({ chunkBytes: 256, maxChunks: 2 });
    const positions: number[] = [];
    for (let n = 0; ; n++) {
      const at = kept.add(`k${n}|h|MESSAGE`, response(n));
      if (at === undefined) break;
      positions.push(at);
    }
    expect(positions.length).toBeGreaterThan(1);
    const full = positions.length;
    // The records of the first chunk expire when the first record of the second one does.
    for (const at of positions) {
      kept.expire(at);
      if (kept.add('again|h|MESSAGE', response(1)) !== undefined) break;
    }
    expect(kept.get('again|h|MESSAGE')).toEqual(response(1));
    expect(kept.size).toBeLessThan(full);
  });

  it('forgets a key taken again only at the Timer J of its last record', () => {
    const kept = new CompletedResponses();
    const first = kept.add('k|h|NOTIFY', response(1))!;
    kept.delete('k|h|NOTIFY');
    kept.add('k|h|NOTIFY', response(2));
    kept.expire(first);
    expect(kept.get('k|h|NOTIFY')).toEqual(response(2));
  });
});
