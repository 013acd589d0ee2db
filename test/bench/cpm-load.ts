/**
 * Deposits the benchmarks make with the project's own client (functions/edge/cpm-client.ts), over
 * SIP MESSAGE; full pulls are ./pull-load.ts's.
 */
import { CpmClient } from '#functions/edge/cpm-client.ts';
import { wrapAsCpim } from '#shared/cpim/cpim.ts';
import { CPIM_CONTENT_TYPE } from '#shared/deferred/names.ts';

export const BOB = 'sip:bob@example.net';

export const pct = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};

function cpimFor(to: string, id: string, text: string): Buffer {
  return wrapAsCpim({
    from: BOB,
    to,
    dateTime: new Date().toISOString(),
    messageId: id,
    contentType: 'text/plain;charset=UTF-8',
    body: Buffer.from(text),
  });
}

/** `n` deposits to `to(i)`, `concurrency` in flight; the rate at which their 202s came. */
export async function depositMany(
  port: number,
  to: (i: number) => string,
  n: number,
  concurrency = 32,
  idPrefix = 'm',
): Promise<number> {
  const clients = await Promise.all(
    Array.from({ length: concurrency }, () =>
      CpmClient.connect({ transport: 'udp', server: { host: '127.0.0.1', port }, user: BOB }),
    ),
  );
  let next = 0;
  const t0 = performance.now();
  try {
    await Promise.all(
      clients.map(async (c) => {
        for (let i = next++; i < n; i = next++) {
          const uri = to(i);
          for (let refused = 0; ; refused++) {
            const res = await c.request(
              c.buildRequest('MESSAGE', {
                uri,
                body: cpimFor(uri, `${idPrefix}-${i}`, `message ${i}`),
                contentType: CPIM_CONTENT_TYPE,
              }),
            );
            if (res.status === 202) break;
            // A 503 for load (the overload gate) is tried again, as a client would after Retry-After;
            // the deposits only set up the measured load.
            if (res.status !== 503 || refused >= 50) throw new Error(`deposit ${i}: ${res.status}`);
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      }),
    );
  } finally {
    for (const c of clients) c.close();
  }
  return n / ((performance.now() - t0) / 1000);
}
