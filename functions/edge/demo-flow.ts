/**
 * Figure 30 of the seed, played by client A against a running edge: bob deposits three messages
 * by SIP MESSAGE, then alice subscribes, reads the list, retrieves two and deletes one, and gets
 * the two over MSRP. Each step is reported with the seed's numbers. Used by `npm run demo` and by
 * the end-to-end test, which asserts the transcript.
 */
import { decodeList } from '#shared/deferred/list-codec.ts';
import { wrapAsCpim } from '#shared/cpim/cpim.ts';
import { CPIM_CONTENT_TYPE } from '#shared/deferred/names.ts';
import { connectMsrp } from '#shared/msrp/client.ts';
import { parseMsrpOffer } from '#shared/sdp/msrp-sdp.ts';
import { getHeader } from '#shared/sip/messages/index.ts';
import { CpmClient } from './cpm-client.ts';

export interface DemoStep {
  step: string;
  what: string;
  detail?: Record<string, unknown>;
}

export interface DemoTarget {
  transport: 'udp' | 'tcp';
  sipPort: number;
  host?: string;
  /** Step 14 over TLS: offer TCP/TLS/MSRP, check the service by its answer's a=fingerprint. */
  msrps?: boolean;
}

const ALICE = 'sip:alice@example.com';
const BOB = 'sip:bob@example.net';
const TEXTS = ['Lunch?', 'Running late, start without me', 'Here is the agenda for Monday'];

export async function runDemo(
  target: DemoTarget,
  report: (s: DemoStep) => void = () => undefined,
): Promise<DemoStep[]> {
  const steps: DemoStep[] = [];
  const say = (step: string, what: string, detail?: Record<string, unknown>) => {
    const s: DemoStep = { step, what, ...(detail ? { detail } : {}) };
    steps.push(s);
    report(s);
  };
  const server = { host: target.host ?? '127.0.0.1', port: target.sipPort };
  const stamp = Date.now().toString(36);

  // Before Figure 30: bob writes to alice while she is away; each MESSAGE is stored (202).
  const bob = await CpmClient.connect({ transport: target.transport, server, user: BOB });
  try {
    for (const [i, text] of TEXTS.entries()) {
      const cpim = wrapAsCpim({
        from: BOB,
        to: ALICE,
        dateTime: new Date().toISOString(),
        messageId: `demo-${stamp}-${i}`,
        contentType: 'text/plain;charset=UTF-8',
        body: Buffer.from(text, 'utf8'),
        dispositionNotification: 'positive-delivery, display',
      });
      const res = await bob.request(
        bob.buildRequest('MESSAGE', { uri: ALICE, body: cpim, contentType: CPIM_CONTENT_TYPE }),
      );
      say('deposit', `MESSAGE from bob -> ${res.status} ${res.reason}`, { text });
    }
  } finally {
    bob.close();
  }

  const alice = await CpmClient.connect({ transport: target.transport, server, user: ALICE });
  try {
    // Steps 2-5.
    const sub = await alice.subscribe({ expires: 3600 });
    say('2-5', `SUBSCRIBE Event: deferred-messages -> ${sub.response.status} ${sub.response.reason}`, {
      expires: getHeader(sub.response, 'Expires'),
    });
    // Steps 6-9.
    const first = await alice.nextNotify(sub.dialog);
    const list = decodeList(first.body.toString('utf8'));
    if (!list.ok) throw new Error(`NOTIFY body is not a deferred list: ${list.reason}`);
    say('6-9', `NOTIFY with ${list.entries.length} entries (total ${list.total}) -> 200 OK`, {
      state: getHeader(first, 'Subscription-State'),
      entries: list.entries.map((e) => `${e.id} ${e.from} ${e.size} bytes`),
    });

    // Steps 10-13: retrieve the two oldest, delete the third.
    const [a, b, c] = list.entries;
    if (!a || !b || !c) throw new Error(`expected at least 3 entries, got ${list.entries.length}`);
    const inv = await alice.invite(
      [
        { id: a.id, action: 'retrieve' },
        { id: b.id, action: 'retrieve' },
        { id: c.id, action: 'delete' },
      ],
      target.msrps ? { msrps: {} } : {},
    );
    say('10-13', `INVITE retrieve 2, delete 1 -> ${inv.response.status} ${inv.response.reason}, ACK sent`);
    if (inv.response.status !== 200) throw new Error(`INVITE answered ${inv.response.status}`);
    const answer = parseMsrpOffer(inv.response.body.toString('utf8'));
    if (!answer.ok) throw new Error(`SDP answer unusable: ${answer.reason}`);

    // Step 14: connect to the path of the answer, get the two messages, 200 each.
    const received: { messageId: string; body: Buffer }[] = [];
    const bye = alice.nextBye(inv.dialog);
    let gotTwo: () => void = () => undefined;
    const two = new Promise<void>((resolve) => (gotTwo = resolve));
    if (target.msrps) say('14', `MSRP over TLS to ${answer.path}`, { fingerprint: answer.fingerprint?.value });
    const msrp = await connectMsrp({
      localPath: inv.msrpPath,
      remotePath: answer.path,
      // RFC 8122 §5: the answer's fingerprint authenticates the service's self-signed certificate.
      ...(answer.fingerprint ? { tls: { serverFingerprint: answer.fingerprint } } : {}),
      onMessage: (m) => {
        received.push(m);
        say('14', `MSRP SEND ${m.messageId} (${m.body.length} bytes) -> 200 OK`);
        if (received.length === 2) gotTwo();
      },
    });
    await two;
    const byeReq = await bye;
    say('14', `BYE from the service -> 200 OK`, { callId: getHeader(byeReq, 'Call-ID') });
    msrp.close();

    // The list changed: every subscription of alice hears of it.
    for (;;) {
      const next = await alice.nextNotify(sub.dialog);
      const l = decodeList(next.body.toString('utf8'));
      if (l.ok && l.total === 0) {
        say('after 14', `NOTIFY with total 0 -> 200 OK`, { version: l.version });
        break;
      }
    }
    await alice.refresh(sub.dialog, 0);
    return steps;
  } finally {
    alice.close();
  }
}
