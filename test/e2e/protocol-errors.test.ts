/**
 * Every error of protocol.md over real sockets: each request gets the status and headers the
 * wire profile names, and a refused request changes nothing in the store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpmClient } from '#functions/edge/cpm-client.ts';
import { EVENT_PACKAGE, LIST_CONTENT_TYPE } from '#shared/deferred/names.ts';
import { getHeader } from '#shared/sip/messages/index.ts';
import { depositHttp, pendingOf, startTestEdge, type TestEdge } from './support.ts';

const ALICE = 'sip:alice@example.com';
const CAROL = 'sip:carol@example.com';

describe('protocol.md errors', () => {
  let edge: TestEdge;
  let alice: CpmClient;
  let aliceIds: string[] = [];
  let carolId = '';

  beforeAll(async () => {
    edge = await startTestEdge({ policy: { maxInviteBodyBytes: 4096 } });
    for (const text of ['one', 'two']) {
      const r = await depositHttp(edge.adminUrl, { to: ALICE, from: 'sip:bob@example.net', body: text });
      expect(r.status).toBe(201);
    }
    const c = await depositHttp(edge.adminUrl, { to: CAROL, from: 'sip:bob@example.net', body: 'for carol only' });
    carolId = c.json.id;
    aliceIds = (await pendingOf(edge.adminUrl, ALICE)).entries.map((e) => e.id);
    alice = await CpmClient.connect({
      transport: 'tcp',
      server: { host: '127.0.0.1', port: edge.ports.tcp! },
      user: ALICE,
    });
  });
  afterAll(async () => {
    alice?.close();
    await edge?.close();
  });

  const subscribeWith = (headers: { name: string; value: string }[], opts: { omit?: string[]; uri?: string } = {}) => {
    const req = alice.buildRequest('SUBSCRIBE', { ...(opts.uri ? { uri: opts.uri } : {}), headers });
    req.headers = req.headers.filter((h) => !(opts.omit ?? []).includes(h.name));
    return alice.request(req);
  };

  it('489 with Allow-Events for a missing or other Event', async () => {
    const missing = await subscribeWith([]);
    expect(missing.status).toBe(489);
    expect(getHeader(missing, 'Allow-Events')).toBe(EVENT_PACKAGE);
    const other = await subscribeWith([{ name: 'Event', value: 'presence' }]);
    expect(other.status).toBe(489);
    expect(getHeader(other, 'Allow-Events')).toBe(EVENT_PACKAGE);
  });

  it('423 with Min-Expires: 60 for 0 < Expires < 60', async () => {
    const res = await subscribeWith([
      { name: 'Event', value: EVENT_PACKAGE },
      { name: 'Expires', value: '30' },
    ]);
    expect(res.status).toBe(423);
    expect(getHeader(res, 'Min-Expires')).toBe('60');
  });

  it('406 when Accept admits neither the list type nor a wildcard', async () => {
    const res = await subscribeWith([
      { name: 'Event', value: EVENT_PACKAGE },
      { name: 'Accept', value: 'application/pidf+xml' },
    ]);
    expect(res.status).toBe(406);
    const wildcard = await subscribeWith([
      { name: 'Event', value: EVENT_PACKAGE },
      { name: 'Accept', value: 'application/*' },
      { name: 'Expires', value: '0' },
    ]);
    expect(wildcard.status).toBe(200);
  });

  it("403 for another user's list", async () => {
    const res = await subscribeWith([{ name: 'Event', value: EVENT_PACKAGE }], { uri: CAROL });
    expect(res.status).toBe(403);
  });

  it('400 for a missing Contact', async () => {
    const res = await subscribeWith([{ name: 'Event', value: EVENT_PACKAGE }], { omit: ['Contact'] });
    expect(res.status).toBe(400);
  });

  it('481 for an in-dialog refresh of an unknown dialog', async () => {
    const res = await alice.refresh({ callId: 'nope@127.0.0.1', localTag: 'a1', remoteTag: 'unknown', cseq: 1 }, 3600);
    expect(res.status).toBe(481);
  });

  it("404 when the INVITE names no known message; another user's id is never revealed", async () => {
    const res = await alice.invite([{ id: carolId, action: 'delete' }]);
    expect(res.response.status).toBe(404);
    expect(res.response.body.toString()).not.toContain(carolId);
    // Carol's message is untouched.
    expect((await pendingOf(edge.adminUrl, CAROL)).total).toBe(1);
  });

  it("skips an id of another user among known ones, and touches only the caller's messages", async () => {
    const [first] = aliceIds;
    const res = await alice.invite([
      { id: carolId, action: 'delete' },
      { id: first!, action: 'delete' },
    ]);
    expect(res.response.status).toBe(200);
    expect(res.response.body.toString()).not.toContain(carolId);
    expect((await pendingOf(edge.adminUrl, CAROL)).total).toBe(1);
    // The deletion was done before the 200.
    expect((await pendingOf(edge.adminUrl, ALICE)).entries.map((e) => e.id)).not.toContain(first);
    await alice.bye(res.dialog);
  });

  it('415 with Accept when the body has no list part', async () => {
    const res = await alice.invite([{ id: aliceIds[1]!, action: 'retrieve' }], { omitList: true });
    expect(res.response.status).toBe(415);
    expect(getHeader(res.response, 'Accept')).toContain(LIST_CONTENT_TYPE);
  });

  it('400 for a malformed list', async () => {
    const res = await alice.invite([], { rawList: '<history-list xmlns="urn:oma:xml:im:history-list"><entry' });
    expect(res.response.status).toBe(400);
  });

  it('400 for a malformed SDP, 488 for an SDP without usable MSRP media', async () => {
    const bad = await alice.invite([{ id: aliceIds[1]!, action: 'retrieve' }], { sdp: 'this is not sdp' });
    expect(bad.response.status).toBe(400);
    const audio = [
      'v=0',
      'o=alice 1 1 IN IP4 127.0.0.1',
      's=-',
      'c=IN IP4 127.0.0.1',
      't=0 0',
      'm=audio 49170 RTP/AVP 0',
      'a=rtpmap:0 PCMU/8000',
      '',
    ].join('\r\n');
    const noMsrp = await alice.invite([{ id: aliceIds[1]!, action: 'retrieve' }], { sdp: audio });
    expect(noMsrp.response.status).toBe(488);
  });

  it('413 for a body over the configured limit', async () => {
    const huge = `<history-list xmlns="urn:oma:xml:im:history-list">${'<entry id="x" action="delete"/>'.repeat(300)}</history-list>`;
    const res = await alice.invite([], { rawList: huge });
    expect(res.response.status).toBe(413);
    // The remaining message is still there after all these refusals.
    expect((await pendingOf(edge.adminUrl, ALICE)).entries.map((e) => e.id)).toContain(aliceIds[1]);
  });
});
