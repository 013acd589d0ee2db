import { beforeEach, describe, expect, it } from 'vitest';
import { makeHttpHandler, makeSipHandler, type DepositDeps } from '#functions/deposit/logic.ts';
import { namespacedHeader, parseCpim, wrapAsCpim } from '#shared/cpim/cpim.ts';
import { defaultPolicy } from '#shared/deferred/policy.ts';
import type { SipRequestEvent } from '#shared/events.ts';
import { ManualClock, MemoryMessageStore } from '../../support/memory-ports.ts';
import { ALICE, BOB } from '../deferred/fixtures.ts';
import { protocolCpim } from '../deferred/protocol-doc.ts';
import { responseHeader, sipEvent, type RequestOptions } from './sip-request.ts';

const NOW = Date.UTC(2026, 10, 23, 10, 0, 5);

function message(
  body: Buffer | string,
  contentType: string,
  opts: RequestOptions & { uri?: string; from?: string; asserted?: string } = {},
): SipRequestEvent {
  return sipEvent(
    [
      `MESSAGE ${opts.uri ?? 'sip:alice@example.com'} SIP/2.0`,
      'Via: SIP/2.0/TCP 198.51.100.7:5060;branch=z9hG4bKmsg1',
      'Max-Forwards: 70',
      `From: <${opts.from ?? 'sip:bob@example.net'}>;tag=m1`,
      ...(opts.asserted ? [`P-Asserted-Identity: ${opts.asserted}`] : []),
      'To: <sip:alice@example.com>',
      'Call-ID: deposit-1',
      'CSeq: 1 MESSAGE',
      `Content-Type: ${contentType}`,
    ],
    { body, ...opts },
  );
}

function cpimFromBob(messageId: string, text = 'Lunch?', from = BOB): Buffer {
  return wrapAsCpim({
    from,
    to: ALICE,
    dateTime: '2026-11-23T10:00:00.000Z',
    messageId,
    contentType: 'text/plain;charset=UTF-8',
    body: Buffer.from(text),
  });
}

describe('deposit over SIP MESSAGE', () => {
  let messages: MemoryMessageStore;
  let deps: DepositDeps;
  let handle: ReturnType<typeof makeSipHandler>;

  beforeEach(() => {
    messages = new MemoryMessageStore();
    deps = {
      messages,
      policy: defaultPolicy(),
      servedDomain: 'example.com',
      warnAgent: 'pf.example.com',
      now: new ManualClock(NOW).now,
    };
    handle = makeSipHandler(deps);
  });

  it('stores the protocol.md CPIM and answers 202; the watchers get told', async () => {
    const result = await handle(message(protocolCpim(), 'message/cpim'));
    expect(result.response.status).toBe(202);
    expect(result.changedUsers).toEqual([ALICE]);
    const [stored] = messages.all();
    expect(stored).toMatchObject({
      user: ALICE,
      messageId: '34jk324j',
      from: BOB,
      size: 6,
      dispositionNotification: 'positive-delivery, display',
      arrivedAt: new Date(NOW).toISOString(),
    });
    expect(stored).not.toHaveProperty('subject');
    expect(Buffer.from(stored!.cpim).equals(protocolCpim())).toBe(true);
  });

  it('stores the same imdn.Message-ID from the same sender once, answering 202 again', async () => {
    expect((await handle(message(cpimFromBob('dup-1'), 'message/cpim'))).response.status).toBe(202);
    const again = await handle(message(cpimFromBob('dup-1', 'Lunch? (resent)'), 'message/cpim'));
    expect(again.response.status).toBe(202);
    expect(again.changedUsers).toEqual([]);
    expect(messages.all()).toHaveLength(1);
    expect((await handle(message(cpimFromBob('dup-2'), 'message/cpim'))).changedUsers).toEqual([ALICE]);
    expect(messages.all()).toHaveLength(2);
  });

  it('answers 413 over 1300 bytes on UDP, and takes the same body over TCP', async () => {
    const big = cpimFromBob('big', 'x'.repeat(1300));
    const udp = await handle(message(big, 'message/cpim', { transport: 'udp' }));
    expect(udp.response.status).toBe(413);
    expect(messages.all()).toHaveLength(0);
    expect((await handle(message(big, 'message/cpim', { transport: 'tcp' }))).response.status).toBe(202);
  });

  it('answers 413 over the configured stream limit', async () => {
    const small = makeSipHandler({ ...deps, policy: defaultPolicy({ maxDepositBytesStream: 100 }) });
    expect((await small(message(cpimFromBob('x'), 'message/cpim'))).response.status).toBe(413);
  });

  it('answers 400 to a broken CPIM and stores nothing', async () => {
    const result = await handle(message('From: <sip:bob@example.net>\r\nno empty line', 'message/cpim'));
    expect(result.response.status).toBe(400);
    expect(result.response.reason).toMatch(/^Bad Request - /);
    expect(messages.all()).toHaveLength(0);
  });

  it('answers 486 with a Warning when the store is full, but still 202 to a repeat of a stored message', async () => {
    const full = makeSipHandler({ ...deps, policy: defaultPolicy({ maxMessagesPerUser: 2 }) });
    await full(message(cpimFromBob('a'), 'message/cpim'));
    await full(message(cpimFromBob('b'), 'message/cpim'));
    const result = await full(message(cpimFromBob('c'), 'message/cpim'));
    expect(result.response.status).toBe(486);
    expect(responseHeader(result.response, 'Warning')).toBe('399 pf.example.com "Deferred message store full"');
    expect(messages.all()).toHaveLength(2);
    expect((await full(message(cpimFromBob('a'), 'message/cpim'))).response.status).toBe(202);
  });

  it('answers 486 over the user’s stored bytes, and 480 with Retry-After when the whole store is full', async () => {
    const one = Buffer.from(cpimFromBob('a')).length;
    const bytes = makeSipHandler({ ...deps, policy: defaultPolicy({ maxBytesPerUser: Math.floor(one * 1.5) }) });
    expect((await bytes(message(cpimFromBob('a'), 'message/cpim'))).response.status).toBe(202);
    const overBytes = await bytes(message(cpimFromBob('b'), 'message/cpim'));
    expect(overBytes.response.status).toBe(486);
    expect(responseHeader(overBytes.response, 'Warning')).toBe(
      '399 pf.example.com "Deferred message store full (bytes)"',
    );
    expect(overBytes.changedUsers ?? []).toEqual([]);
    const total = makeSipHandler({ ...deps, policy: defaultPolicy({ maxStoreBytes: Math.floor(one * 1.5) }) });
    const overTotal = await total(message(cpimFromBob('c'), 'message/cpim'));
    expect(overTotal.response.status).toBe(480);
    expect(responseHeader(overTotal.response, 'Retry-After')).toBe('3600');
    expect(responseHeader(overTotal.response, 'Warning')).toBe(
      '399 pf.example.com "Deferred message service out of storage"',
    );
    expect(messages.all().map((m) => m.messageId)).toEqual(['a']);
  });

  it('wraps any other body into CPIM, from the sender to the recipient', async () => {
    const result = await handle(message('Hello Alice', 'text/plain;charset=UTF-8'));
    expect(result.response.status).toBe(202);
    const [stored] = messages.all();
    expect(stored).toMatchObject({ from: BOB, to: ALICE, contentType: 'text/plain;charset=UTF-8', size: 11 });
    const cpim = parseCpim(Buffer.from(stored!.cpim));
    if (!cpim.ok) throw new Error(cpim.reason);
    expect(cpim.from).toBe(BOB);
    expect(cpim.body.toString()).toBe('Hello Alice');
    expect(namespacedHeader(cpim, 'urn:ietf:params:imdn', 'Message-ID')).toBe(stored!.messageId);
  });

  it('takes a plain body just under the UDP limit (the limit is on what was sent, not the wrapping)', async () => {
    const result = await handle(message('y'.repeat(1250), 'text/plain', { transport: 'udp' }));
    expect(result.response.status).toBe(202);
  });

  it('answers 400 to an empty body', async () => {
    expect((await handle(message('', 'message/cpim'))).response.status).toBe(400);
    expect(messages.all()).toHaveLength(0);
  });

  it('answers 400 naming the field to a CPIM From or imdn.Message-ID too large to key on (was 503)', async () => {
    const longFrom = `sip:${'b'.repeat(300)}@example.net`;
    const fromResult = await handle(message(cpimFromBob('m1', 'x', longFrom), 'message/cpim', { from: longFrom }));
    expect(fromResult.response).toMatchObject({ status: 400, reason: 'Bad Request - CPIM From over 256 octets' });
    const idResult = await handle(message(cpimFromBob('i'.repeat(1100)), 'message/cpim'));
    expect(idResult.response).toMatchObject({ status: 400, reason: 'Bad Request - imdn.Message-ID over 256 octets' });
    expect(messages.all()).toHaveLength(0);
  });

  it('refuses (403) a CPIM From that is not the direct client, so a forged copy cannot silence the real one', async () => {
    const forged = await handle(
      message(cpimFromBob('X', 'forged'), 'message/cpim', { from: 'sip:mallory@example.net' }),
    );
    expect(forged.response).toMatchObject({
      status: 403,
      reason: 'Forbidden - CPIM From is not the authenticated sender',
    });
    const genuine = await handle(message(cpimFromBob('X', 'genuine'), 'message/cpim'));
    expect(genuine.response.status).toBe(202);
    expect(genuine.changedUsers).toEqual([ALICE]);
    expect(messages.all().map((m) => Buffer.from(m.cpim).toString())).toEqual([expect.stringContaining('genuine')]);
  });

  it("takes a trusted peer's asserted identity as the sender, whatever the From says", async () => {
    const opts = { trusted: true, from: 'sip:anyone@example.net', asserted: '<sip:bob@example.net>, <tel:+15550001>' };
    expect((await handle(message(cpimFromBob('A'), 'message/cpim', opts))).response.status).toBe(202);
    const tel = await handle(message(cpimFromBob('B', 'x', 'tel:+15550001'), 'message/cpim', opts));
    expect(tel.response.status).toBe(202);
    const other = await handle(message(cpimFromBob('C', 'x', 'sip:carol@example.net'), 'message/cpim', opts));
    expect(other.response.status).toBe(403);
    expect(messages.all().map((m) => m.from)).toEqual([BOB, 'tel:+15550001']);
  });

  it('answers 404 to a deposit for a user outside the served domain, and stores nothing', async () => {
    const result = await handle(message(cpimFromBob('d'), 'message/cpim', { uri: 'sip:alice@elsewhere.example' }));
    expect(result.response).toMatchObject({
      status: 404,
      reason: 'Not Found - Request-URI is not a user of example.com',
    });
    expect(messages.all()).toHaveLength(0);
  });

  it('stores for a tel: recipient', async () => {
    const result = await handle(message(cpimFromBob('t'), 'message/cpim', { uri: 'tel:+15551234' }));
    expect(result.response.status).toBe(202);
    expect(result.changedUsers).toHaveLength(1);
    expect(messages.all()[0]!.user).toMatch(/^tel:\+15551234$/);
  });
});

describe('deposit over HTTP', () => {
  let messages: MemoryMessageStore;
  let handle: ReturnType<typeof makeHttpHandler>;
  let deps: DepositDeps;

  beforeEach(() => {
    messages = new MemoryMessageStore();
    deps = {
      messages,
      policy: defaultPolicy(),
      servedDomain: 'example.com',
      warnAgent: 'pf.example.com',
      now: new ManualClock(NOW).now,
    };
    handle = makeHttpHandler(deps);
  });

  it('stores a ready CPIM once: 201, then 200 for the repeat', async () => {
    const input = { to: ALICE, cpim: protocolCpim().toString('base64') };
    const first = await handle(input);
    expect(first.statusCode).toBe(201);
    expect(first.changedUsers).toEqual([ALICE]);
    const body = JSON.parse(first.body) as { id: string; user: string; created: boolean };
    expect(body).toMatchObject({ user: ALICE, created: true });
    const second = await handle(input);
    expect(second.statusCode).toBe(200);
    expect(JSON.parse(second.body)).toEqual({ ...body, created: false });
    expect(messages.all()).toHaveLength(1);
  });

  it('wraps a plain body with the given Message-ID, subject and disposition', async () => {
    const result = await handle({
      to: 'sip:alice@EXAMPLE.com',
      from: BOB,
      body: 'Hi',
      messageId: 'op-1',
      subject: 'Ops',
      dispositionNotification: 'negative-delivery',
    });
    expect(result.statusCode).toBe(201);
    expect(messages.all()[0]).toMatchObject({
      user: ALICE,
      messageId: 'op-1',
      subject: 'Ops',
      dispositionNotification: 'negative-delivery',
      contentType: 'text/plain;charset=UTF-8',
    });
  });

  it.each([
    ['no recipient', { cpim: 'eA==' }],
    ['an unknown field', { to: ALICE, cpim: 'eA==', extra: 1 }],
    ['a recipient that is not SIP or tel', { to: 'mailto:alice@example.com', from: BOB, body: 'x' }],
    ['a broken CPIM', { to: ALICE, cpim: Buffer.from('garbage').toString('base64') }],
  ])('answers 400 to %s', async (_name, input) => {
    const result = await handle(input);
    expect(result.statusCode).toBe(400);
    expect(JSON.parse(result.body)).toHaveProperty('error');
    expect(messages.all()).toHaveLength(0);
  });

  it.each([
    ['a missing sender', { to: ALICE, body: 'x' }, /^"from": /],
    ['a sender that is not a URI', { to: ALICE, from: 'Bob Smith', body: 'x' }, /^"from": not a SIP or tel URI/],
    ['a body of the wrong type', { to: ALICE, from: BOB, body: 5 }, /^"body": /],
    ['a recipient that is not a URI', { to: 'alice', from: BOB, body: 'x' }, /^"to": /],
    ['an unknown field', { to: ALICE, from: BOB, body: 'x', colour: 'red' }, /^"colour": /],
    ['no object at all', 'hello', /^body: a JSON object/],
  ])('names the field in the 400 for %s, and stores nothing', async (_name, input, error) => {
    const result = await handle(input);
    expect(result.statusCode).toBe(400);
    const message = (JSON.parse(result.body) as { error: string }).error;
    expect(message).toMatch(error);
    expect(message).not.toContain('Invalid input');
    expect(messages.all()).toHaveLength(0);
  });

  it('answers 404 to a recipient outside the served domain and 400 naming an oversized field', async () => {
    const away = await handle({ to: 'sip:alice@elsewhere.example', from: BOB, body: 'x' });
    expect(away.statusCode).toBe(404);
    expect(JSON.parse(away.body).error).toContain('`to`');
    const long = await handle({ to: ALICE, from: BOB, body: 'x', messageId: 'm'.repeat(2000) });
    expect(long.statusCode).toBe(400);
    expect(JSON.parse(long.body).error).toContain('imdn.Message-ID');
    expect(messages.all()).toHaveLength(0);
  });

  it('answers 413 over the limit and 507 when the store is full', async () => {
    const small = makeHttpHandler({
      ...deps,
      policy: defaultPolicy({ maxDepositBytesStream: 10, maxMessagesPerUser: 1 }),
    });
    expect((await small({ to: ALICE, from: BOB, body: 'x'.repeat(11) })).statusCode).toBe(413);
    expect((await small({ to: ALICE, from: BOB, body: 'one' })).statusCode).toBe(201);
    expect((await small({ to: ALICE, from: BOB, body: 'two' })).statusCode).toBe(507);
  });
});
