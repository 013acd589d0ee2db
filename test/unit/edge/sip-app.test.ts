/**
 * The edge's answer when a handler call fails or the edge is full (issue 11 items 6 and 10):
 * 503 + Retry-After only when a later try can succeed, 500 for a handler's own bug, and every
 * request above MAX_IN_FLIGHT answered at once.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LambdaFunctionError } from '#shared/adapters/lambda-invoker.ts';
import type { SipHandlerResult } from '#shared/events.ts';
import type { HandlerInvoker } from '#shared/ports.ts';
import { getHeader, parseMessage } from '#shared/sip/messages/index.ts';
import type { SipRequest, SipResponse } from '#shared/sip/messages/types.ts';
import type { ServerTransaction } from '#shared/sip/transaction/index.ts';
import type { Source } from '#shared/sip/transport/index.ts';
import { SipApp, type SipAppDeps } from '#functions/edge/sip-app.ts';
import type { InDialogSender } from '#functions/edge/in-dialog-sender.ts';
import { OverloadGate } from '#functions/edge/overload-gate.ts';

function request(n: number): SipRequest {
  const text = [
    'MESSAGE sip:alice@example.com SIP/2.0',
    `Via: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK${n}`,
    'Max-Forwards: 70',
    `From: <sip:bob@example.net>;tag=${n}`,
    'To: <sip:alice@example.com>',
    `Call-ID: call-${n}`,
    'CSeq: 1 MESSAGE',
    'Content-Type: text/plain',
    'Content-Length: 2',
    '',
    'hi',
  ].join('\r\n');
  const parsed = parseMessage(Buffer.from(text));
  if (!parsed.ok || parsed.message.kind !== 'request') throw new Error('bad test request');
  return parsed.message;
}

/**
 * A SipApp whose every handler is `handler`, from a direct client, with `overrides` for what a
 * test looks at; `onRequest` hands it a request as the transaction layer would.
 */
function appWith(handler: HandlerInvoker['deposit'], overrides: Partial<SipAppDeps> = {}) {
  let onRequest: (req: SipRequest, tx: ServerTransaction) => void = () => undefined;
  let onAck: (ack: SipRequest, source: Source) => void = () => undefined;
  const app = new SipApp({
    transactions: { onRequest: (cb) => (onRequest = cb), onAck: (cb) => (onAck = cb), onAckTimeout: () => undefined },
    invoker: { deposit: handler, subscribe: handler, invite: handler },
    sender: { hold: () => undefined, send: async () => undefined } as unknown as InDialogSender,
    msrp: { expect: () => undefined, closeSession: () => undefined },
    edgeId: 'local',
    isTrusted: () => false,
    isDirectClient: () => true,
    contactFor: () => '<sip:127.0.0.1:5060>',
    userChanged: async () => undefined,
    gate: new OverloadGate({ maxInFlight: 10, maxLagMs: 60_000 }),
    ...overrides,
  });
  return {
    app,
    onRequest: (req: SipRequest, tx: ServerTransaction) => onRequest(req, tx),
    /** An ACK matched to no transaction, as the transaction layer hands it on. */
    ack: (req: SipRequest) =>
      onAck(req, {
        transport: 'tcp',
        remoteAddress: '127.0.0.1',
        remotePort: 5070,
        localAddress: '127.0.0.1',
        localPort: 5060,
      }),
  };
}

function harness(deposit: HandlerInvoker['deposit'], maxInFlight = 10) {
  // Loop bounds no test run reaches: these tests are about the in-flight bound.
  const { onRequest } = appWith(deposit, { gate: new OverloadGate({ maxInFlight, maxLagMs: 60_000 }) });
  /** Send one request; resolves with its final response. */
  return (n: number) =>
    new Promise<SipResponse>((resolve) => {
      const req = request(n);
      const tx = {
        source: {
          transport: 'tcp',
          remoteAddress: '127.0.0.1',
          remotePort: 5070,
          localAddress: '127.0.0.1',
          localPort: 5060,
        },
        cancelled: false,
        respond: (res: SipResponse) => resolve(res),
      } as ServerTransaction;
      onRequest(req, tx);
    });
}

const accepted: SipHandlerResult = { response: { status: 202, reason: 'Accepted' } };

describe('a failed handler call', () => {
  it('is 500 without Retry-After when the handler has a bug (a TypeError in it)', async () => {
    const send = harness(async () => {
      throw new TypeError("Cannot read properties of undefined (reading 'toLowerCase')");
    });
    const res = await send(1);
    expect(res.status).toBe(500);
    expect(getHeader(res, 'Retry-After')).toBeUndefined();
  });

  it('is 500 when the Lambda reports its own TypeError, 503 when it timed out', async () => {
    const bug = harness(async () => {
      throw new LambdaFunctionError(
        'deposit',
        'Unhandled',
        JSON.stringify({ errorType: 'TypeError', errorMessage: 'x' }),
      );
    });
    expect((await bug(1)).status).toBe(500);
    const timeout = harness(async () => {
      throw new LambdaFunctionError('deposit', 'Unhandled', JSON.stringify({ errorType: 'Sandbox.Timedout' }));
    });
    const res = await timeout(2);
    expect(res.status).toBe(503);
    expect(getHeader(res, 'Retry-After')).toBe('5');
  });

  it('is 503 + Retry-After when the handler or its store is unreachable', async () => {
    const send = harness(async () => {
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4567'), { code: 'ECONNREFUSED' });
    });
    const res = await send(1);
    expect(res.status).toBe(503);
    expect(getHeader(res, 'Retry-After')).toBe('5');
  });
});

describe('above MAX_IN_FLIGHT', () => {
  it('every request is answered: the ones in flight by the handler, the others 503 + Retry-After at once', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const send = harness(async () => {
      await gate;
      return accepted;
    }, 2);
    const pending = Array.from({ length: 50 }, (_, i) => send(i));
    const shed = await Promise.all(pending.slice(2));
    expect(shed.every((r) => r.status === 503 && getHeader(r, 'Retry-After') === '5')).toBe(true);
    release();
    const served = await Promise.all(pending.slice(0, 2));
    expect(served.map((r) => r.status)).toEqual([202, 202]);
    // Capacity is back once they are done.
    release();
    expect((await send(99)).status).toBe(202);
  });
});

// Issue 11 item 5: the MSRP listener learns where a direct client's INVITE came from.
describe('an accepted INVITE', () => {
  function invite(trusted: boolean): Promise<unknown[]> {
    const text = [
      'INVITE sip:alice@example.com SIP/2.0',
      'Via: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bKinv1',
      'Max-Forwards: 70',
      'From: <sip:alice@example.com>;tag=a1',
      'To: <sip:alice@example.com>',
      'Call-ID: inv-1',
      'CSeq: 1 INVITE',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    const parsed = parseMessage(Buffer.from(text));
    if (!parsed.ok || parsed.message.kind !== 'request') throw new Error('bad test request');
    const req = parsed.message;
    return new Promise((resolve) => {
      const accept = async (): Promise<SipHandlerResult> => ({
        response: { status: 200, toTag: 't1' },
        session: {
          sessionId: 's1',
          user: 'sip:alice@example.com',
          dialogId: 'd1',
          clientPath: 'msrp://127.0.0.1:9/c1;tcp',
        },
      });
      const { onRequest } = appWith(accept, {
        msrp: { expect: (...args: unknown[]) => resolve(args), closeSession: () => undefined },
        isTrusted: () => trusted,
        isDirectClient: () => !trusted,
      });
      const tx = {
        request: req,
        source: {
          transport: 'tcp',
          remoteAddress: '127.0.0.1',
          remotePort: 5070,
          localAddress: '127.0.0.1',
          localPort: 5060,
        },
        cancelled: false,
        respond: () => undefined,
      } as unknown as ServerTransaction;
      onRequest(req, tx);
    });
  }

  it("from a direct client: its MSRP session is tied to the INVITE's source address", async () => {
    expect(await invite(false)).toEqual(['s1', 'msrp://127.0.0.1:9/c1;tcp', { clientAddress: '127.0.0.1' }]);
  });

  it('via a trusted peer: only to the host its offer names (the source is the peer, not the client)', async () => {
    expect(await invite(true)).toEqual(['s1', 'msrp://127.0.0.1:9/c1;tcp', {}]);
  });
});

describe("the service's BYE ending a delivery session (RFC 3261 §15)", () => {
  function sipRequest(lines: string[]): SipRequest {
    const parsed = parseMessage(Buffer.from([...lines, 'Content-Length: 0', '', ''].join('\r\n')));
    if (!parsed.ok || parsed.message.kind !== 'request') throw new Error('bad test request');
    return parsed.message;
  }
  const headers = (method: string, cseq: number, toTag = '') => [
    `${method} sip:alice@example.com SIP/2.0`,
    `Via: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK${method}${cseq}`,
    'Max-Forwards: 70',
    'From: <sip:alice@example.com>;tag=a1',
    `To: <sip:alice@example.com>${toTag}`,
    'Call-ID: inv-bye',
    `CSeq: ${cseq} ${method}`,
  ];

  /** The INVITE's handler accepts (once `until` resolves); `send` hands a request in, `onAnswer` sees its answer as it is sent. */
  function app(overrides: Partial<SipAppDeps> = {}, until: Promise<void> = Promise.resolve()) {
    const accept = async (): Promise<SipHandlerResult> => {
      await until;
      return {
        response: { status: 200, toTag: 't1' },
        session: {
          sessionId: 's1',
          user: 'sip:alice@example.com',
          dialogId: 'inv-bye;t1;a1',
          clientPath: 'msrp://127.0.0.1:9/c1;tcp',
        },
      };
    };
    const { app: sip, onRequest, ack } = appWith(accept, overrides);
    const source = {
      transport: 'tcp',
      remoteAddress: '127.0.0.1',
      remotePort: 5070,
      localAddress: '127.0.0.1',
      localPort: 5060,
    };
    const send = (req: SipRequest, onAnswer: (res: SipResponse) => void = () => undefined) =>
      new Promise<SipResponse>((resolve) => {
        const respond = (res: SipResponse) => {
          onAnswer(res);
          resolve(res);
        };
        onRequest(req, { request: req, source, cancelled: false, respond } as unknown as ServerTransaction);
      });
    return { sip, send, ack };
  }

  it('goes out once per dialog: a report settled twice asks twice', () => {
    const { sip } = app();
    expect(sip.byeWanted('inv-bye;t1;a1')).toBe(true);
    expect(sip.byeWanted('inv-bye;t1;a1')).toBe(false);
    expect(sip.byeWanted('other;t1;a1')).toBe(true);
  });

  it('waits for the INVITE of its Call-ID to be answered, so the ACK gate holds it', async () => {
    const events: string[] = [];
    let release: () => void = () => undefined;
    const handlerDone = new Promise<void>((resolve) => (release = resolve));
    const { sip, send } = app(
      {
        sender: {
          hold: (id: string) => events.push(`gate ${id}`),
          send: async () => undefined,
        } as unknown as InDialogSender,
      },
      handlerDone,
    );
    void send(sipRequest(headers('INVITE', 1)), (res) => events.push(`${res.status}`));
    await new Promise((resolve) => setImmediate(resolve));
    // The delivery's BYE is asked for while the handler still runs (its job already queued).
    const bye = sip.inviteAnswered('inv-bye').then(() => events.push('bye may go'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(events).toEqual([]);
    release();
    await bye;
    expect(events).toEqual(['gate inv-bye;t1;a1', '200', 'bye may go']);
    // No INVITE in hand: at once.
    await sip.inviteAnswered('other-call');
  });

  describe('the ACK gate', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it('opens with the ACK, which drops its 32 s timer: nothing of the INVITE waits that out', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const held: Promise<void>[] = [];
      const { send, ack } = app({
        sender: {
          hold: (_id: string, gate: Promise<void>) => held.push(gate),
          send: async () => undefined,
        } as unknown as InDialogSender,
      });
      expect((await send(sipRequest(headers('INVITE', 1)))).status).toBe(200);
      expect(held).toHaveLength(1);
      const running = vi.getTimerCount();
      ack(sipRequest(headers('ACK', 1, ';tag=t1')));
      await held[0];
      expect(vi.getTimerCount()).toBe(running - 1);
    });

    it('opens without an ACK once its wait is over', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const held: Promise<void>[] = [];
      const { send } = app({
        ackWaitMs: 32_000,
        sender: {
          hold: (_id: string, gate: Promise<void>) => held.push(gate),
          send: async () => undefined,
        } as unknown as InDialogSender,
      });
      expect((await send(sipRequest(headers('INVITE', 1)))).status).toBe(200);
      let opened = false;
      void held[0]!.then(() => (opened = true));
      vi.advanceTimersByTime(31_999);
      await Promise.resolve();
      expect(opened).toBe(false);
      vi.advanceTimersByTime(1);
      await held[0];
      expect(opened).toBe(true);
    });
  });

  it('a closed MSRP session keeps its dialog for 64*T1, then the dialog is gone (a BYE gets 481)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    try {
      for (const [waited, status] of [
        [63_000, 200],
        [65_000, 481],
      ] as const) {
        const { sip, send } = app({ ackWaitMs: 32_000 });
        expect((await send(sipRequest(headers('INVITE', 1)))).status).toBe(200);
        sip.msrpSessionClosed('s1');
        vi.advanceTimersByTime(waited);
        expect((await send(sipRequest(headers('BYE', 2, ';tag=t1')))).status).toBe(status);
      }
    } finally {
      vi.useRealTimers();
    }
  });

  it("does not go out once the client's BYE ended the dialog", async () => {
    const { sip, send } = app();
    expect((await send(sipRequest(headers('INVITE', 1)))).status).toBe(200);
    expect((await send(sipRequest(headers('BYE', 2, ';tag=t1')))).status).toBe(200);
    expect(sip.byeWanted('inv-bye;t1;a1')).toBe(false);
  });
});
