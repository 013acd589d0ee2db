import { beforeEach, describe, expect, it } from 'vitest';
import { makeHandler, type InviteDeps } from '#functions/invite/logic.ts';
import { encodeActionList, type EntryAction } from '#shared/deferred/actions.ts';
import type { DeferredMessageEntry } from '#shared/deferred/model.ts';
import { defaultPolicy } from '#shared/deferred/policy.ts';
import { decodeSessionOwner, edgeSessionOwner, newSessionId } from '#shared/msrp/session-owner.ts';
import type { SipRequestEvent } from '#shared/events.ts';
import { buildMsrpOffer, parseMsrpOffer } from '#shared/sdp/msrp-sdp.ts';
import { buildMultipart } from '#shared/sip/messages/index.ts';
import { ManualClock, MemoryMessageStore, MemoryQueue, MemorySessionStore } from '../../support/memory-ports.ts';
import { ALICE, sampleMessage } from '../deferred/fixtures.ts';
import { protocolExample } from '../deferred/protocol-doc.ts';
import { bodyText, crlf, responseHeader, sipEvent } from './sip-request.ts';

const NOW = Date.UTC(2026, 10, 24, 8, 0, 0);
const LIST_TYPE = 'application/vnd.oma.im.deferred-list+xml';
const CLIENT = buildMsrpOffer({ host: '192.0.2.10', port: 9, sessionId: 's111271' });

function invite(body: Buffer | string, contentType: string, uri = 'sip:alice@example.com'): SipRequestEvent {
  return sipEvent(
    [
      `INVITE ${uri} SIP/2.0`,
      'Via: SIP/2.0/TCP 192.0.2.10:50211;branch=z9hG4bKinv1',
      'Max-Forwards: 70',
      'From: <sip:alice@example.com>;tag=inv-from',
      'To: <sip:alice@example.com>',
      'Call-ID: invite-call-1',
      'CSeq: 1 INVITE',
      'Contact: <sip:alice@192.0.2.10:50211;transport=tcp>',
      'Accept-Contact: *;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.deferred"',
      `Content-Type: ${contentType}`,
    ],
    { body },
  );
}

/** An INVITE body as protocol.md shows it: the SDP offer and the action list. */
function actionsInvite(actions: EntryAction[], sdp: string = CLIENT.sdp, uri?: string): SipRequestEvent {
  const body = buildMultipart(
    [
      { headers: [{ name: 'Content-Type', value: 'application/sdp' }], body: Buffer.from(sdp) },
      {
        headers: [
          { name: 'Content-Type', value: LIST_TYPE },
          { name: 'Content-Disposition', value: 'render;handling=required' },
        ],
        body: Buffer.from(encodeActionList(actions)),
      },
    ],
    'b1',
  );
  return invite(body, 'multipart/mixed;boundary=b1', uri);
}

describe('invite handler', () => {
  let messages: MemoryMessageStore;
  let sessions: MemorySessionStore;
  let queue: MemoryQueue;
  let failureImdns: DeferredMessageEntry[];
  let deps: InviteDeps;
  let handle: ReturnType<typeof makeHandler>;
  const m1 = sampleMessage(1);
  const m2 = sampleMessage(2);
  const m3 = sampleMessage(3, { dispositionNotification: 'positive-delivery, negative-delivery' });
  const bobs = sampleMessage(4, {
    user: 'sip:bob@example.net',
    id: '01JDQ8BOBSMESSAGE000000000',
    to: 'sip:bob@example.net',
  });

  beforeEach(async () => {
    messages = new MemoryMessageStore();
    sessions = new MemorySessionStore();
    queue = new MemoryQueue();
    failureImdns = [];
    deps = {
      messages,
      sessions,
      queue,
      policy: defaultPolicy(),
      serviceUris: ['sip:deferred@example.com'],
      msrp: { host: 'pf.example.com', port: 2855 },
      newTag: () => 'inv-tag',
      newSessionId: () => 's-7c41',
      now: new ManualClock(NOW).now,
      sendFailureImdn: async (m) => {
        failureImdns.push(m);
      },
    };
    handle = makeHandler(deps);
    for (const m of [m1, m2, m3, bobs]) await messages.put(m);
  });

  it('answers an INVITE that came over TLS with an msrps: path on the MSRP TLS listener (RFC 4975 §15)', async () => {
    const secure = makeHandler({ ...deps, msrps: { host: 'nlb.example.net', port: 2856 } });
    const overTls = actionsInvite([{ id: m1.id, action: 'retrieve' }]);
    overTls.flow = { ...overTls.flow, transport: 'tls' };
    const result = await secure(overTls);
    expect(result.response.status).toBe(200);
    const answer = bodyText(result.response.body).split('\r\n');
    expect(answer).toContain('m=message 2856 TCP/TLS/MSRP *');
    expect(answer).toContain('a=path:msrps://nlb.example.net:2856/s-7c41;tcp');
    expect(result.session).toMatchObject({ sessionId: 's-7c41', secure: true });

    // Over TCP the same handler answers with the plain listener.
    const plain = await secure(actionsInvite([{ id: m2.id, action: 'retrieve' }]));
    expect(bodyText(plain.response.body)).toContain('a=path:msrp://pf.example.com:2855/s-7c41;tcp');
    expect(plain.session?.secure).toBeUndefined();
  });

  it('answers an offer of TCP/TLS/MSRP with msrps:, the fingerprint of its certificate, and the client fingerprint to check', async () => {
    const fingerprint = { hash: 'sha-256', value: 'AB:CD:EF' };
    const clientFingerprint = { hash: 'sha-256', value: '01:02:03' };
    const secure = makeHandler({ ...deps, msrps: { host: 'pf.example.com', port: 2856, fingerprint } });
    const offer = buildMsrpOffer({
      host: '192.0.2.10',
      port: 9,
      sessionId: 'c-tls',
      secure: true,
      fingerprint: clientFingerprint,
    });
    // Over plain TCP: the offer alone asks for TLS (RFC 3264 §6: the answer keeps its transport).
    const result = await secure(actionsInvite([{ id: m1.id, action: 'retrieve' }], offer.sdp));
    expect(result.response.status).toBe(200);
    const answer = bodyText(result.response.body).split('\r\n');
    expect(answer).toContain('m=message 2856 TCP/TLS/MSRP *');
    expect(answer).toContain('a=path:msrps://pf.example.com:2856/s-7c41;tcp');
    expect(answer).toContain('a=fingerprint:sha-256 AB:CD:EF');
    expect(result.session).toMatchObject({ secure: true, clientFingerprint, clientPath: offer.path });
  });

  it('refuses an offer of TCP/TLS/MSRP with 488 where no MSRP over TLS is served', async () => {
    const offer = buildMsrpOffer({ host: '192.0.2.10', port: 9, sessionId: 'c-tls', secure: true });
    const result = await handle(actionsInvite([{ id: m1.id, action: 'retrieve' }], offer.sdp));
    expect(result.response).toMatchObject({
      status: 488,
      reason: 'Not Acceptable Here - No MSRP over TLS (TCP/TLS/MSRP) here',
    });
    // Nothing was deleted or queued for a session that will not be.
    expect(result.session).toBeUndefined();
  });

  it('deletes before answering, queues retrievals oldest first and answers with the MSRP SDP', async () => {
    const result = await handle(
      actionsInvite([
        { id: m2.id, action: 'retrieve' },
        { id: m3.id, action: 'delete' },
        { id: m1.id, action: 'retrieve' },
      ]),
    );
    expect(result.response.status).toBe(200);
    expect(result.response.toTag).toBe('inv-tag');
    expect(result.response.contentType).toBe('application/sdp');
    const answer = bodyText(result.response.body).split('\r\n');
    expect(answer).toContain('m=message 2855 TCP/MSRP *');
    expect(answer).toContain('a=path:msrp://pf.example.com:2855/s-7c41;tcp');
    expect(answer).toContain('a=accept-types:message/cpim');
    expect(answer).toContain('a=setup:passive');
    expect(answer).toContain('a=sendonly');

    // The deletion is already done when the handler hands back its 200.
    expect(messages.all().map((m) => m.id)).toEqual([m1.id, m2.id, bobs.id]);
    expect(result.changedUsers).toEqual([ALICE]);
    // The sender of the deleted message asked for negative-delivery.
    expect(failureImdns.map((m) => m.id)).toEqual([m3.id]);

    const [session] = queue.jobs.map((j) => j.session!);
    expect(session).toMatchObject({
      user: ALICE,
      sessionId: 's-7c41',
      retrieve: [m1.id, m2.id],
      clientPath: CLIENT.path,
      localPath: 'msrp://pf.example.com:2855/s-7c41;tcp',
      state: 'waiting',
      dialogId: 'invite-call-1;inv-tag;inv-from',
    });
    expect(queue.jobs).toEqual([{ user: ALICE, sessionId: 's-7c41', edgeId: 'edge-1', session }]);
    expect(result.session).toEqual({
      sessionId: 's-7c41',
      user: ALICE,
      dialogId: 'invite-call-1;inv-tag;inv-from',
      clientPath: CLIENT.path,
    });
  });

  it('answers an action list of 1,500 unknown ids with 400 naming the list, reading nothing (issue 11)', async () => {
    const ids = Array.from({ length: 1500 }, (_, i) => `u${i}`);
    const event = actionsInvite(ids.map((id) => ({ id, action: 'retrieve' })));
    expect(Buffer.from(event.body, 'base64').length).toBeLessThan(deps.policy.maxInviteBodyBytes);
    messages.calls.length = 0;
    const result = await handle(event);
    expect(result.response.status).toBe(400);
    expect(result.response.reason).toBe('Bad Request - The action list names 1500 entries, at most 100');
    expect(messages.calls).toEqual([]);
    expect(queue.jobs.map((j) => j.session!)).toEqual([]);
    expect(queue.jobs).toEqual([]);
  });

  it('reads the ids of a full list in one batch: 100 unknown ids are one getMany and a 404', async () => {
    const ids = Array.from({ length: deps.policy.maxInviteIds }, (_, i) => `u${i}`);
    messages.calls.length = 0;
    const result = await handle(actionsInvite(ids.map((id) => ({ id, action: 'retrieve' }))));
    expect(result.response.status).toBe(404);
    expect(messages.calls).toEqual([{ method: 'getMany', ids }]);
  });

  it('finds the known ids among unknown ones with that one batch read', async () => {
    const ids = [...Array.from({ length: 98 }, (_, i) => `u${i}`), m2.id, m1.id];
    messages.calls.length = 0;
    const result = await handle(actionsInvite(ids.map((id) => ({ id, action: 'retrieve' }))));
    expect(result.response.status).toBe(200);
    expect(messages.calls).toEqual([{ method: 'getMany', ids }]);
    expect(queue.jobs.map((j) => j.session!)[0]!.retrieve).toEqual([m1.id, m2.id]);
  });

  it('accepts the protocol.md INVITE body as written', async () => {
    await messages.put(sampleMessage(5, { id: '01JDQ8R0Z5K3N1V6X7Y8Z9A0BC' }));
    await messages.put(sampleMessage(6, { id: '01JDQ8S4M2P7Q9R1T3V5W7X9YZ' }));
    const example = protocolExample('INVITE sip:alice@example.com');
    const body = crlf(example.slice(example.indexOf('--b1'))) + '\r\n';
    const result = await handle(invite(body, 'multipart/mixed;boundary=b1'));
    expect(result.response.status).toBe(200);
    expect(queue.jobs.map((j) => j.session!)[0]!.retrieve).toEqual(['01JDQ8R0Z5K3N1V6X7Y8Z9A0BC']);
    expect(messages.all().some((m) => m.id === '01JDQ8S4M2P7Q9R1T3V5W7X9YZ')).toBe(false);
  });

  it('answers with a session id that names the edge task holding the INVITE, for relaying MSRP to it', async () => {
    const aws = makeHandler({ ...deps, newSessionId: (edgeId) => newSessionId(edgeSessionOwner(edgeId, 2855)) });
    const event = actionsInvite([{ id: m1.id, action: 'retrieve' }]);
    const result = await aws({ ...event, flow: { ...event.flow, edgeId: 'http://10.0.1.23:8080' } });
    expect(result.response.status).toBe(200);
    const path = bodyText(result.response.body)
      .split('\r\n')
      .find((l) => l.startsWith('a=path:'))!;
    const sessionId = /^a=path:msrp:\/\/pf\.example\.com:2855\/([^;]+);tcp$/.exec(path)![1]!;
    expect(decodeSessionOwner(sessionId)).toEqual({ address: '10.0.1.23', port: 2855 });
    expect(queue.jobs.map((j) => j.session!)[0]!.sessionId).toBe(sessionId);
    expect(queue.jobs).toMatchObject([
      { user: ALICE, sessionId, edgeId: 'http://10.0.1.23:8080', session: { sessionId } },
    ]);
  });

  it("skips another user's id without touching or revealing it", async () => {
    const result = await handle(
      actionsInvite([
        { id: bobs.id, action: 'delete' },
        { id: m1.id, action: 'retrieve' },
      ]),
    );
    expect(result.response.status).toBe(200);
    expect(queue.jobs.map((j) => j.session!)[0]!.retrieve).toEqual([m1.id]);
    expect(messages.all().map((m) => m.id)).toContain(bobs.id);
    expect(result.changedUsers).toEqual([]);
  });

  it("answers 404 when no id is known, the same for another user's id as for a made-up one", async () => {
    const foreign = await handle(actionsInvite([{ id: bobs.id, action: 'delete' }]));
    const unknown = await handle(actionsInvite([{ id: '01JDQ8NOSUCHMESSAGE0000000', action: 'delete' }]));
    expect(foreign.response.status).toBe(404);
    expect(foreign.response).toEqual(unknown.response);
    expect(messages.all().map((m) => m.id)).toContain(bobs.id);
    expect(queue.jobs.map((j) => j.session!)).toHaveLength(0);
    expect(queue.jobs).toHaveLength(0);
  });

  it('answers 415 with Accept when the body has no list part', async () => {
    const result = await handle(invite(CLIENT.sdp, 'application/sdp'));
    expect(result.response.status).toBe(415);
    expect(responseHeader(result.response, 'Accept')).toContain(LIST_TYPE);
  });

  it('answers 400 to a malformed list and deletes nothing', async () => {
    const body = buildMultipart(
      [
        { headers: [{ name: 'Content-Type', value: 'application/sdp' }], body: Buffer.from(CLIENT.sdp) },
        {
          headers: [{ name: 'Content-Type', value: LIST_TYPE }],
          body: Buffer.from(`<history-list xmlns="urn:x"><entry id="${m1.id}" action="delete"/></history-list>`),
        },
      ],
      'b1',
    );
    const result = await handle(invite(body, 'multipart/mixed;boundary=b1'));
    expect(result.response.status).toBe(400);
    expect(messages.all()).toHaveLength(4);
  });

  it('answers 400 to a malformed SDP and deletes nothing', async () => {
    const result = await handle(actionsInvite([{ id: m1.id, action: 'delete' }], 'this is not SDP'));
    expect(result.response.status).toBe(400);
    expect(messages.all()).toHaveLength(4);
  });

  it('answers 488 when the SDP offers no usable MSRP media', async () => {
    const audio = crlf('v=0\no=a 1 1 IN IP4 192.0.2.10\ns=-\nc=IN IP4 192.0.2.10\nt=0 0\nm=audio 49170 RTP/AVP 0\n');
    expect(parseMsrpOffer(audio).ok).toBe(false);
    const result = await handle(actionsInvite([{ id: m1.id, action: 'delete' }], audio));
    expect(result.response.status).toBe(488);
    expect(messages.all()).toHaveLength(4);
  });

  it('answers 488 to a client that would wait for the service to connect', async () => {
    const passive = CLIENT.sdp.replace('a=setup:active', 'a=setup:passive');
    const result = await handle(actionsInvite([{ id: m1.id, action: 'retrieve' }], passive));
    expect(result.response.status).toBe(488);
    expect(queue.jobs.map((j) => j.session!)).toHaveLength(0);
  });

  it('answers 413 to a body over the configured limit', async () => {
    const small = makeHandler({ ...deps, policy: defaultPolicy({ maxInviteBodyBytes: 200 }) });
    const result = await small(actionsInvite([{ id: m1.id, action: 'delete' }]));
    expect(result.response.status).toBe(413);
    expect(messages.all()).toHaveLength(4);
  });

  it("answers 403 to an INVITE for another user's list", async () => {
    const result = await handle(actionsInvite([{ id: bobs.id, action: 'delete' }], CLIENT.sdp, 'sip:bob@example.net'));
    expect(result.response.status).toBe(403);
    expect(messages.all()).toHaveLength(4);
  });
});
