/**
 * Issue 11 item 10: above capacity every request gets an answer (2xx, or 503 + Retry-After) and
 * none goes unanswered; memory stays bounded. The edge's SIP stack and user agent core over real
 * UDP and TCP sockets on loopback, in front of handlers that are deliberately slow.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { SipHandlerResult } from '#shared/events.ts';
import type { HandlerInvoker } from '#shared/ports.ts';
import { TransactionLayer } from '#shared/sip/transaction/index.ts';
import { TransportLayer } from '#shared/sip/transport/index.ts';
import type { InDialogSender } from '#functions/edge/in-dialog-sender.ts';
import { OverloadGate } from '#functions/edge/overload-gate.ts';
import { RETRY_AFTER_SECONDS, SipApp } from '#functions/edge/sip-app.ts';
import { SubscribeLoad, openLoop, type FlowOutcome } from '../../support/subscribe-load.ts';

const accepted = (n: number): SipHandlerResult => ({
  response: { status: 200, toTag: `t${n}`, headers: [{ name: 'Expires', value: '3600' }] },
});

interface Stack {
  ports: { udp: number; tcp: number };
  transactions: TransactionLayer;
  shed: string[];
  stop(): Promise<void>;
}

const stacks: Stack[] = [];
afterEach(async () => {
  for (const s of stacks.splice(0)) await s.stop();
});

async function startStack(opts: {
  subscribe: HandlerInvoker['subscribe'];
  maxInFlight: number;
  maxServerTransactions?: number;
  /** T1 of the stack and its clients (RFC 3261 §17.1.1.1); the gate's bound on waiting is half of it, as in the edge. */
  t1?: number;
}): Promise<Stack> {
  const t1 = opts.t1 ?? 100;
  const transport = new TransportLayer({ host: '127.0.0.1', udpPort: 0, tcpPort: 0, maxReceiveWaitMs: t1 });
  const bound = await transport.start();
  const shed: string[] = [];
  const transactions = new TransactionLayer(
    transport,
    { t1 },
    {
      ...(opts.maxServerTransactions ? { maxServerTransactions: opts.maxServerTransactions } : {}),
      retryAfterSeconds: RETRY_AFTER_SECONDS,
      onRefused: () => shed.push('transactions'),
    },
  );
  const gate = new OverloadGate({
    maxInFlight: opts.maxInFlight,
    maxLagMs: 250,
    queueDelay: () => transport.receiveDelayMs,
    maxQueueDelayMs: t1 / 2,
  });
  const fail = () => Promise.reject(new Error('not in this test'));
  new SipApp({
    transactions,
    invoker: { subscribe: opts.subscribe, invite: fail, deposit: fail },
    sender: { hold: () => undefined, send: async () => undefined } as unknown as InDialogSender,
    msrp: { expect: () => undefined, closeSession: () => undefined },
    edgeId: 'local',
    isTrusted: () => false,
    isDirectClient: () => true,
    contactFor: () => '<sip:127.0.0.1>',
    userChanged: async () => undefined,
    gate,
    onShed: (reason) => shed.push(reason),
  });
  const stack: Stack = {
    ports: { udp: bound.udp!, tcp: bound.tcp! },
    transactions,
    shed,
    stop: async () => {
      gate.stop();
      transactions.stop();
      await transport.stop();
    },
  };
  stacks.push(stack);
  return stack;
}

/** Every flow answered, and each answer a 2xx or a 503 that says when to come back. */
function expectAllAnswered(flows: FlowOutcome[]): void {
  const unanswered = flows.filter((f) => f.status === undefined).length;
  expect(unanswered).toBe(0);
  const bad = flows.filter(
    (f) => !(f.status === 200 || (f.status === 503 && f.retryAfter === String(RETRY_AFTER_SECONDS))),
  );
  expect(bad.map((f) => `${f.status} ${f.retryAfter ?? ''}`)).toEqual([]);
}

/** Resolves once `count` of the flows have ended; the flows still open stay pending. */
async function firstEnded(flows: Promise<FlowOutcome>[], count: number): Promise<FlowOutcome[]> {
  const ended: FlowOutcome[] = [];
  return new Promise((resolve) => {
    for (const f of flows) {
      void f.then((o) => {
        ended.push(o);
        if (ended.length === count) resolve(ended);
      });
    }
  });
}

describe('a burst far above a tiny MAX_IN_FLIGHT', () => {
  for (const transport of ['udp', 'tcp'] as const) {
    it(`over ${transport.toUpperCase()}: every request answered, the excess at once with 503 + Retry-After; refreshes still served`, async () => {
      let hold = false;
      let release: () => void = () => undefined;
      const held = new Promise<void>((resolve) => (release = resolve));
      let n = 0;
      const stack = await startStack({
        maxInFlight: 2,
        subscribe: async (event) => {
          const refresh =
            'headers' in event && /;\s*tag=/.test(event.headers.find((h) => h.name === 'To')?.value ?? '');
          if (refresh) return { response: { status: 200 } };
          // The slow store: the two calls of the burst that get in hold their slots until released.
          if (hold) await held;
          return accepted(n++);
        },
      });
      const load = await SubscribeLoad.open({
        transport,
        host: '127.0.0.1',
        port: transport === 'udp' ? stack.ports.udp : stack.ports.tcp,
        t1Ms: 100,
      });
      try {
        const established = await load.subscribe();
        expect(established.status).toBe(200);
        hold = true;
        const flows = Array.from({ length: 150 }, () => load.subscribe());
        // Both slots taken: every other request of the burst is refused without waiting for them.
        const refused = await firstEnded(flows, 148);
        expectAllAnswered(refused);
        expect(refused.every((f) => f.status === 503)).toBe(true);
        expect(stack.shed.length).toBeGreaterThanOrEqual(148);

        if (transport === 'udp') {
          // RFC 3261 §17.2.2: a retransmission of a refused request is answered by its server
          // transaction with the same 503 (same To tag), and is not new work for the handlers.
          const again = await load.resend(refused[0]!);
          expect(again).toEqual({ status: 503, toTag: refused[0]!.toTag });
        }

        // A refresh of a subscription set up before the burst is existing work: still served.
        expect(await load.refresh(established)).toBe(200);

        release();
        const all = await Promise.all(flows);
        expectAllAnswered(all);
        expect(all.filter((f) => f.status === 200)).toHaveLength(2);
      } finally {
        release();
        load.close();
      }
    });
  }
});

describe('handlers that take the CPU (the local default: SQLite on the event loop)', () => {
  it('at eight times their capacity over UDP, every request is answered within Timer F: the excess with 503', async () => {
    // 20 ms of synchronous work per call: 50 calls a second; the default MAX_IN_FLIGHT, which
    // such calls never reach (each finishes before the next datagram is read).
    const stack = await startStack({
      maxInFlight: 500,
      subscribe: async () => {
        const until = performance.now() + 20;
        while (performance.now() < until);
        return accepted(0);
      },
    });
    const load = await SubscribeLoad.open({ transport: 'udp', host: '127.0.0.1', port: stack.ports.udp, t1Ms: 100 });
    try {
      // Timer F is 64*T1 = 6.4 s: 400 requests would need 8 s of handler time.
      const flows = await openLoop(load, 400, 1);
      expectAllAnswered(flows);
      expect(flows.filter((f) => f.status === 503).length).toBeGreaterThan(0);
      expect(stack.shed.length).toBeGreaterThan(0);
      expect(stack.shed.every((reason) => reason === 'queue-delay' || reason === 'loop-lag')).toBe(true);
    } finally {
      load.close();
    }
  });

  it('a burst over UDP that fills many reads but is served within T1/2 is served whole, none refused', async () => {
    // 1 ms of synchronous work per call, 150 at once: about 150 ms of work, read 32 a turn by
    // libuv, so the socket holds datagrams for many turns in a row; each waits well under T1/2.
    const stack = await startStack({
      maxInFlight: 500,
      t1: 2000,
      subscribe: async () => {
        const until = performance.now() + 1;
        while (performance.now() < until);
        return accepted(0);
      },
    });
    const load = await SubscribeLoad.open({ transport: 'udp', host: '127.0.0.1', port: stack.ports.udp, t1Ms: 2000 });
    try {
      const flows = await Promise.all(Array.from({ length: 150 }, () => load.subscribe()));
      expectAllAnswered(flows);
      expect(stack.shed).toEqual([]);
      expect(flows.every((f) => f.status === 200)).toBe(true);
    } finally {
      load.close();
    }
  });
});

describe('server transactions under a flood', () => {
  it('stay under MAX_TRANSACTIONS: past it requests get a 503 + Retry-After without one', async () => {
    const stack = await startStack({ maxInFlight: 500, maxServerTransactions: 40, subscribe: async () => accepted(0) });
    const load = await SubscribeLoad.open({ transport: 'udp', host: '127.0.0.1', port: stack.ports.udp, t1Ms: 100 });
    let most = 0;
    const watch = setInterval(() => (most = Math.max(most, stack.transactions.size.server)), 1);
    try {
      // Each UDP transaction is held for Timer J (64*T1 = 6.4 s) after its answer.
      const flows: Promise<FlowOutcome>[] = [];
      for (let i = 0; i < 120; i++) {
        flows.push(load.subscribe());
        if (i % 10 === 9) await new Promise((r) => setTimeout(r, 5));
      }
      const all = await Promise.all(flows);
      expectAllAnswered(all);
      expect(all.filter((f) => f.status === 200).length).toBe(40);
      expect(most).toBeLessThanOrEqual(40);
      expect(stack.shed.filter((r) => r === 'transactions').length).toBe(80);
    } finally {
      clearInterval(watch);
      load.close();
    }
  });
});
