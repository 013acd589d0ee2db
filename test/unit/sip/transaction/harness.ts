/**
 * A transport + transaction layer on 127.0.0.1 with short timers, and the records the tests read.
 */
import { afterEach } from 'vitest';
import type { SipRequest } from '#shared/sip/messages/index.ts';
import { TransactionLayer } from '#shared/sip/transaction/index.ts';
import type { ServerTransaction, Timers } from '#shared/sip/transaction/index.ts';
import { TransportLayer } from '#shared/sip/transport/index.ts';
import type { Source, TransportConfig } from '#shared/sip/transport/index.ts';
import { UdpPeer } from '../transport/peers.ts';

/** Short timers: T1 = 20 ms, so 64*T1 = 1.28 s. */
export const FAST: Timers = { t1: 20, t2: 80, t4: 100 };

export interface Harness {
  transport: TransportLayer;
  layer: TransactionLayer;
  ports: { udp?: number; tcp?: number; ws?: number };
  requests: Array<{ req: SipRequest; tx: ServerTransaction }>;
  acks: Array<{ ack: SipRequest; source: Source }>;
  cancels: SipRequest[];
  ackTimeouts: SipRequest[];
  stop(): Promise<void>;
}

export async function startHarness(
  opts: {
    timers?: Partial<Timers>;
    tryingDelayMs?: number;
    transport?: Partial<TransportConfig>;
    onRequest?: (req: SipRequest, tx: ServerTransaction) => void;
  } = {},
): Promise<Harness> {
  const transport = new TransportLayer({ host: '127.0.0.1', udpPort: 0, tcpPort: 0, ...opts.transport });
  const ports = await transport.start();
  const layer = new TransactionLayer(
    transport,
    { ...FAST, ...opts.timers },
    { tryingDelayMs: opts.tryingDelayMs ?? 5000 },
  );
  const h: Harness = {
    transport,
    layer,
    ports,
    requests: [],
    acks: [],
    cancels: [],
    ackTimeouts: [],
    async stop() {
      layer.stop();
      await transport.stop();
    },
  };
  layer.onRequest((req, tx) => {
    h.requests.push({ req, tx });
    opts.onRequest?.(req, tx);
  });
  layer.onAck((ack, source) => h.acks.push({ ack, source }));
  layer.onCancel((invite) => h.cancels.push(invite));
  layer.onAckTimeout((invite) => h.ackTimeouts.push(invite));
  return h;
}

/**
 * Harnesses and peers a test opens, closed after each test in reverse order; `cleanup` takes
 * anything else the test opens. Call once at the top of a test file.
 */
export function scopedResources() {
  const cleanup: Array<() => unknown> = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });
  return {
    cleanup,
    async harness(opts: Parameters<typeof startHarness>[0] = {}): Promise<Harness> {
      const h = await startHarness(opts);
      cleanup.push(() => h.stop());
      return h;
    },
    async udpPeer(): Promise<UdpPeer> {
      const p = await UdpPeer.open();
      cleanup.push(() => p.close());
      return p;
    },
  };
}
