import { beforeEach, describe, expect, it } from 'vitest';
import { makeHandler, type SubscribeDeps } from '#functions/subscribe/logic.ts';
import { decodeList } from '#shared/deferred/list-codec.ts';
import { defaultPolicy } from '#shared/deferred/policy.ts';
import type { InDialogRequestSpec, SipRequestEvent } from '#shared/events.ts';
import { ManualClock, MemoryMessageStore, MemorySubscriptionStore } from '../../support/memory-ports.ts';
import { ALICE, sampleMessage } from '../deferred/fixtures.ts';
import { bodyText, responseHeader, sipEvent, type RequestOptions } from './sip-request.ts';

const NOW = Date.UTC(2026, 10, 24, 8, 0, 0);
const SERVICE_URI = 'sip:deferred@example.com';

/** The protocol.md SUBSCRIBE, with lines replaced or dropped by name. */
function subscribe(
  changes: Record<string, string | null> = {},
  opts: RequestOptions & { uri?: string } = {},
): SipRequestEvent {
  const headers: [string, string][] = [
    ['Via', 'SIP/2.0/TCP 192.0.2.10:50211;branch=z9hG4bK776asdhds;rport'],
    ['Max-Forwards', '70'],
    ['From', '<sip:alice@example.com>;tag=1928301774'],
    ['To', '<sip:alice@example.com>'],
    ['Call-ID', 'a84b4c76e66710'],
    ['CSeq', '1 SUBSCRIBE'],
    ['Contact', '<sip:alice@192.0.2.10:50211;transport=tcp>'],
    ['Event', 'deferred-messages'],
    ['Accept', 'application/vnd.oma.im.deferred-list+xml'],
    ['Expires', '3600'],
  ];
  const lines = [`SUBSCRIBE ${opts.uri ?? 'sip:alice@example.com'} SIP/2.0`];
  for (const [name, value] of headers) {
    if (name in changes) {
      if (changes[name] !== null) lines.push(`${name}: ${changes[name]}`);
    } else lines.push(`${name}: ${value}`);
  }
  for (const [name, value] of Object.entries(changes)) {
    if (value !== null && !headers.some(([n]) => n === name)) lines.push(`${name}: ${value}`);
  }
  return sipEvent(lines, opts);
}

/** An in-dialog SUBSCRIBE of the dialog the first one created (our tag `pf-5f2c9`). */
function inDialog(expires: string | null, cseq = 2): SipRequestEvent {
  return subscribe({
    To: '<sip:alice@example.com>;tag=pf-5f2c9',
    CSeq: `${cseq} SUBSCRIBE`,
    Expires: expires,
  });
}

function notifyOf(requests: InDialogRequestSpec[] | undefined): InDialogRequestSpec {
  expect(requests).toHaveLength(1);
  return requests![0]!;
}

function header(request: InDialogRequestSpec, name: string): string | undefined {
  return request.headers.find((h) => h.name === name)?.value;
}

function listOf(request: InDialogRequestSpec) {
  const list = decodeList(bodyText(request.body));
  if (!list.ok) throw new Error(list.reason);
  return list;
}

describe('subscribe handler', () => {
  let messages: MemoryMessageStore;
  let subscriptions: MemorySubscriptionStore;
  let clock: ManualClock;
  let deps: SubscribeDeps;
  let handle: ReturnType<typeof makeHandler>;

  beforeEach(async () => {
    messages = new MemoryMessageStore();
    subscriptions = new MemorySubscriptionStore();
    clock = new ManualClock(NOW);
    deps = {
      messages,
      subscriptions,
      policy: defaultPolicy(),
      now: clock.now,
      serviceUris: [SERVICE_URI],
      newTag: () => 'pf-5f2c9',
    };
    handle = makeHandler(deps);
    await messages.put(sampleMessage(2));
    await messages.put(sampleMessage(1));
  });

  it('answers 200 with a To tag and Expires, then NOTIFYs the list oldest first', async () => {
    const result = await handle(subscribe());
    expect(result.response.status).toBe(200);
    expect(result.response.toTag).toBe('pf-5f2c9');
    expect(responseHeader(result.response, 'Expires')).toBe('3600');

    const notify = notifyOf(result.requests);
    expect(notify.method).toBe('NOTIFY');
    expect(notify.cseq).toBe(1);
    expect(header(notify, 'Event')).toBe('deferred-messages');
    expect(header(notify, 'Subscription-State')).toBe('active;expires=3600');
    expect(notify.contentType).toBe('application/vnd.oma.im.deferred-list+xml');
    expect(notify.dialog).toMatchObject({
      callId: 'a84b4c76e66710',
      localTag: 'pf-5f2c9',
      remoteTag: '1928301774',
      remoteTarget: 'sip:alice@192.0.2.10:50211;transport=tcp',
    });
    const list = listOf(notify);
    expect(list.version).toBe(0);
    expect(list.total).toBe(2);
    expect(list.entries.map((e) => e.messageId)).toEqual(['msg-1', 'msg-2']);

    const [sub] = subscriptions.all();
    expect(sub).toMatchObject({ user: ALICE, dialogId: 'a84b4c76e66710;pf-5f2c9;1928301774', state: 'active' });
    expect(sub!.expiresAt).toBe(NOW / 1000 + 3600);
  });

  it('sends an empty list as a valid first NOTIFY', async () => {
    const empty = new MemoryMessageStore();
    const result = await makeHandler({ ...deps, messages: empty })(subscribe());
    expect(listOf(notifyOf(result.requests))).toMatchObject({ total: 0, entries: [] });
  });

  it('grants 3600 when Expires is absent and at most 86400', async () => {
    expect(responseHeader((await handle(subscribe({ Expires: null }))).response, 'Expires')).toBe('3600');
    const long = await handle(subscribe({ Expires: '999999', 'Call-ID': 'other-call' }));
    expect(responseHeader(long.response, 'Expires')).toBe('86400');
  });

  it('caps the entries per NOTIFY while total tells the whole count', async () => {
    await messages.put(sampleMessage(3));
    const result = await makeHandler({ ...deps, policy: defaultPolicy({ notifyMaxEntries: 2 }) })(subscribe());
    const list = listOf(notifyOf(result.requests));
    expect(list.total).toBe(3);
    expect(list.entries.map((e) => e.messageId)).toEqual(['msg-1', 'msg-2']);
  });

  it.each([
    ['a missing Event', { Event: null }],
    ['another package', { Event: 'presence' }],
  ])('answers 489 with Allow-Events for %s', async (_name, changes) => {
    const result = await handle(subscribe(changes));
    expect(result.response.status).toBe(489);
    expect(responseHeader(result.response, 'Allow-Events')).toBe('deferred-messages');
    expect(result.requests ?? []).toHaveLength(0);
    expect(subscriptions.all()).toHaveLength(0);
  });

  it('answers 423 with Min-Expires: 60 for 0 < Expires < 60', async () => {
    const result = await handle(subscribe({ Expires: '59' }));
    expect(result.response.status).toBe(423);
    expect(responseHeader(result.response, 'Min-Expires')).toBe('60');
    expect(subscriptions.all()).toHaveLength(0);
  });

  it('answers 406 when Accept admits neither the list type nor a wildcard covering it', async () => {
    const result = await handle(subscribe({ Accept: 'application/pidf+xml, text/*' }));
    expect(result.response.status).toBe(406);
    expect(responseHeader(result.response, 'Accept')).toBe('application/vnd.oma.im.deferred-list+xml');
    expect((await handle(subscribe({ Accept: 'application/*', 'Call-ID': 'c2' }))).response.status).toBe(200);
  });

  it('answers 406 to an empty Accept, and takes the list type when Accept is absent (RFC 3261 §20.1)', async () => {
    expect((await handle(subscribe({ Accept: '' }))).response.status).toBe(406);
    expect(subscriptions.all()).toHaveLength(0);
    expect((await handle(subscribe({ Accept: null, 'Call-ID': 'c2' }))).response.status).toBe(200);
  });

  it('answers 400 to a SUBSCRIBE without Contact', async () => {
    const result = await handle(subscribe({ Contact: null }));
    expect(result.response.status).toBe(400);
    expect(result.response.reason).toMatch(/Contact/);
    expect(subscriptions.all()).toHaveLength(0);
  });

  it("answers 403 to a request for another user's list", async () => {
    const result = await handle(subscribe({}, { uri: 'sip:bob@example.net' }));
    expect(result.response.status).toBe(403);
    expect(result.requests ?? []).toHaveLength(0);
  });

  it("accepts the service's own URI as the target", async () => {
    expect((await handle(subscribe({}, { uri: SERVICE_URI }))).response.status).toBe(200);
  });

  it('believes P-Asserted-Identity only from a trusted peer', async () => {
    const asserted = {
      From: '<sip:anonymous@anonymous.invalid>;tag=x1',
      'P-Asserted-Identity': '<sip:alice@example.com>',
    };
    const trusted = await handle(subscribe(asserted, { trusted: true }));
    expect(trusted.response.status).toBe(200);
    expect(subscriptions.all()[0]!.user).toBe(ALICE);
    const untrusted = await handle(subscribe({ ...asserted, 'Call-ID': 'c3' }, { trusted: false }));
    expect(untrusted.response.status).toBe(403);
  });

  it('answers 481 to a refresh of an unknown dialog', async () => {
    const result = await handle(inDialog('3600'));
    expect(result.response.status).toBe(481);
  });

  it('treats Expires: 0 on a new dialog as a fetch: 200, one terminated NOTIFY with the list, nothing kept', async () => {
    const result = await handle(subscribe({ Expires: '0' }));
    expect(result.response.status).toBe(200);
    expect(responseHeader(result.response, 'Expires')).toBe('0');
    const notify = notifyOf(result.requests);
    expect(header(notify, 'Subscription-State')).toBe('terminated;reason=timeout');
    expect(listOf(notify).entries).toHaveLength(2);
    expect(subscriptions.all()).toHaveLength(0);
  });

  it('refreshes in the dialog: new expiry, next CSeq and version', async () => {
    await handle(subscribe());
    clock.advance(600_000);
    const result = await handle(inDialog('7200'));
    expect(result.response.status).toBe(200);
    expect(responseHeader(result.response, 'Expires')).toBe('7200');
    const notify = notifyOf(result.requests);
    expect(notify.cseq).toBe(2);
    expect(header(notify, 'Subscription-State')).toBe('active;expires=7200');
    expect(listOf(notify).version).toBe(1);
    expect(subscriptions.all()[0]!.expiresAt).toBe(NOW / 1000 + 600 + 7200);
  });

  it('moves the subscription to the edge task the refresh came through (the first one was replaced)', async () => {
    await handle(subscribe());
    expect(subscriptions.all()[0]!.dialog.flow.edgeId).toBe('edge-1');
    clock.advance(60_000);
    const refresh = inDialog('600');
    refresh.flow = { ...refresh.flow, edgeId: 'edge-2', remotePort: 50999, connectionId: 'conn-9' };
    const result = await handle(refresh);
    expect(result.response.status).toBe(200);
    expect(subscriptions.all()[0]!.dialog.flow).toMatchObject({ edgeId: 'edge-2', connectionId: 'conn-9' });
    // The NOTIFY answering the refresh goes out through that task too.
    expect(notifyOf(result.requests).dialog.flow.edgeId).toBe('edge-2');
  });

  it('keeps the remote CSeq of the dialog: set by the SUBSCRIBE, raised by each refresh (RFC 3261 §12.1.1, §12.2.2)', async () => {
    await handle(subscribe({ CSeq: '4 SUBSCRIBE' }));
    expect(subscriptions.all()[0]!.dialog.remoteCSeq).toBe(4);
    clock.advance(60_000);
    const result = await handle(inDialog('7200', 9));
    expect(result.response.status).toBe(200);
    const [sub] = subscriptions.all();
    expect(sub!.dialog.remoteCSeq).toBe(9);
    expect(sub!.expiresAt).toBe(NOW / 1000 + 60 + 7200);
  });

  it('answers 500 to a refresh with a lower CSeq than the last one and does not renew (RFC 3261 §12.2.2)', async () => {
    await handle(subscribe());
    expect((await handle(inDialog('3600', 5))).response.status).toBe(200);
    const before = subscriptions.all()[0]!;
    clock.advance(600_000);
    const result = await handle(inDialog('7200', 4));
    expect(result.response.status).toBe(500);
    expect(result.response.reason).toMatch(/Out of Order/i);
    expect(result.requests ?? []).toHaveLength(0);
    expect(subscriptions.all()).toEqual([before]);
  });

  it('answers 500 to an out-of-order unsubscribe and keeps the subscription (RFC 3261 §12.2.2)', async () => {
    await handle(subscribe({ CSeq: '3 SUBSCRIBE' }));
    const result = await handle(inDialog('0', 2));
    expect(result.response.status).toBe(500);
    expect(result.requests ?? []).toHaveLength(0);
    expect(subscriptions.all()).toHaveLength(1);
    expect((await handle(inDialog('0', 4))).response.status).toBe(200);
    expect(subscriptions.all()).toHaveLength(0);
  });

  it('answers 423 to a refresh below the minimum and keeps the subscription', async () => {
    await handle(subscribe());
    expect((await handle(inDialog('10'))).response.status).toBe(423);
    expect(subscriptions.all()).toHaveLength(1);
  });

  it('unsubscribes with Expires: 0 in the dialog: 200 and a final terminated NOTIFY', async () => {
    await handle(subscribe());
    const result = await handle(inDialog('0'));
    expect(result.response.status).toBe(200);
    const notify = notifyOf(result.requests);
    expect(header(notify, 'Subscription-State')).toBe('terminated;reason=timeout');
    expect(notify.cseq).toBe(2);
    expect(subscriptions.all()).toHaveLength(0);
    expect((await handle(inDialog('3600', 3))).response.status).toBe(481);
  });

  it('NOTIFYs every device of a user when told the list changed', async () => {
    await handle(subscribe());
    await handle(subscribe({ 'Call-ID': 'second-device', From: '<sip:alice@example.com>;tag=dev2' }));
    await messages.put(sampleMessage(3));
    const result = await handle({ type: 'user-changed', user: ALICE });
    expect(result.requests).toHaveLength(2);
    for (const notify of result.requests!) {
      expect(notify.cseq).toBe(2);
      expect(listOf(notify)).toMatchObject({ version: 1, total: 3 });
    }
    expect(new Set(result.requests!.map((r) => r.dialog.callId))).toEqual(new Set(['a84b4c76e66710', 'second-device']));
  });

  it('NOTIFYs the watchers the change fan-out names without listing the subscriptions again', async () => {
    await handle(subscribe());
    await handle(subscribe({ 'Call-ID': 'second-device', From: '<sip:alice@example.com>;tag=dev2' }));
    const [first, second] = subscriptions.all();
    await messages.put(sampleMessage(2));
    subscriptions.listByUser = () => Promise.reject(new Error('listed again'));
    const result = await handle({ type: 'user-changed', user: ALICE, dialogIds: [second!.dialogId] });
    const notify = notifyOf(result.requests);
    expect(notify.dialog.callId).toBe(second!.dialog.callId);
    expect(notify.cseq).toBe(2);
    expect(listOf(notify)).toMatchObject({ version: 1, total: 2 });
    // One that moved to another edge task (a refresh through it) is that task's to notify, and
    // one that ended meanwhile is skipped.
    await subscriptions.renew(ALICE, first!.dialogId, first!.expiresAt, undefined, {
      ...first!.dialog.flow,
      edgeId: 'http://10.0.1.99:8080',
    });
    await subscriptions.delete(ALICE, second!.dialogId);
    const later = await handle({
      type: 'user-changed',
      user: ALICE,
      edgeId: first!.dialog.flow.edgeId,
      dialogIds: [first!.dialogId, second!.dialogId],
    });
    expect(later.requests).toEqual([]);
  });

  it('ends a subscription whose NOTIFY failed', async () => {
    await handle(subscribe());
    const dialogId = subscriptions.all()[0]!.dialogId;
    await handle({ type: 'notify-failed', user: ALICE, dialogId, status: 481 });
    expect(subscriptions.all()).toHaveLength(0);
    expect((await handle({ type: 'user-changed', user: ALICE })).requests).toEqual([]);
  });
});
