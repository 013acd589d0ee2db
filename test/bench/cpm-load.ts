/**
 * Load the benchmarks drive with the project's own client (functions/edge/cpm-client.ts):
 * deposits over SIP MESSAGE and full pulls (SUBSCRIBE, NOTIFY, INVITE retrieving every listed
 * message, the MSRP SENDs each answered 200, the service's BYE, the NOTIFY of an empty mailbox).
 */
import { CpmClient } from '#functions/edge/cpm-client.ts';
import { wrapAsCpim } from '#shared/cpim/cpim.ts';
import { decodeList } from '#shared/deferred/list-codec.ts';
import { CPIM_CONTENT_TYPE } from '#shared/deferred/names.ts';
import { connectMsrp } from '#shared/msrp/client.ts';
import { parseMsrpOffer } from '#shared/sdp/msrp-sdp.ts';
import { getHeader } from '#shared/sip/messages/index.ts';

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

/**
 * One full pull of `user`'s `expected` messages over UDP + MSRP; resolves with the time from
 * SUBSCRIBE to the first NOTIFY and to the NOTIFY of the emptied mailbox (ms), then unsubscribes
 * and answers the terminating NOTIFY; also how many SIP
 * retransmissions from the service the client received (CpmClient.retransmissionsReceived).
 */
export async function fullPull(
  port: number,
  user: string,
  expected = 10,
): Promise<{ toFirstNotify: number; total: number; retransmissions: number }> {
  const c = await CpmClient.connect({ transport: 'udp', server: { host: '127.0.0.1', port }, user });
  try {
    const t0 = performance.now();
    const sub = await c.subscribe({ expires: 600 });
    const first = await c.nextNotify(sub.dialog);
    const toFirstNotify = performance.now() - t0;
    const list = decodeList(first.body.toString('utf8'));
    if (!list.ok || list.entries.length !== expected)
      throw new Error(`${user}: first NOTIFY lists ${list.ok ? list.entries.length : 'nothing'} of ${expected}`);
    const inv = await c.invite(list.entries.map((e) => ({ id: e.id, action: 'retrieve' as const })));
    const answer = parseMsrpOffer(inv.response.body.toString('utf8'));
    if (!answer.ok) throw new Error(`${user}: INVITE ${inv.response.status}`);
    let got = 0;
    let done: () => void = () => undefined;
    const all = new Promise<void>((resolve) => (done = resolve));
    const msrp = await connectMsrp({
      localPath: inv.msrpPath,
      remotePath: answer.path,
      onMessage: () => ++got === expected && done(),
    });
    await all;
    await c.nextBye(inv.dialog);
    msrp.close();
    for (;;) {
      const l = decodeList((await c.nextNotify(sub.dialog)).body.toString('utf8'));
      if (l.ok && l.total === 0) break;
    }
    const total = performance.now() - t0;
    await c.refresh(sub.dialog, 0);
    // RFC 6665 §4.4.1: the unsubscribe is followed by a NOTIFY with Subscription-State
    // "terminated"; a subscriber answers it (closing first makes the service's NOTIFY fail).
    for (;;) {
      const notify = await c.nextNotify(sub.dialog);
      if (/^\s*terminated/i.test(getHeader(notify, 'Subscription-State') ?? '')) break;
    }
    return { toFirstNotify, total, retransmissions: c.retransmissionsReceived };
  } finally {
    c.close();
  }
}
