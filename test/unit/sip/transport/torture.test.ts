/**
 * The RFC 4475 / RFC 5118 torture messages sent as datagrams to a real UDP transport with a
 * transaction layer on top: what reaches the application, what the transport answers itself,
 * and what it drops (verdicts from test/conformance/sip-torture/verdicts.json).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { getHeader, serializeMessage } from '#shared/sip/messages/index.ts';
import type { SipMessage, SipRequest, SipResponse } from '#shared/sip/messages/index.ts';
import { TransactionLayer } from '#shared/sip/transaction/index.ts';
import { TransportLayer } from '#shared/sip/transport/index.ts';
import { UdpPeer, delay, until } from './peers.ts';

const base = path.resolve(process.cwd(), 'test/conformance/sip-torture');
type Verdict = { expect: 'accept' | 'reject' | 'either'; status?: number; note?: string };
const verdicts = JSON.parse(fs.readFileSync(path.join(base, 'verdicts.json'), 'utf8')) as Record<
  string,
  Record<string, Verdict>
>;
const cases = Object.entries(verdicts).flatMap(([set, files]) =>
  Object.entries(files).map(([name, verdict]) => {
    const dat = path.join(base, set, `${name}.dat`);
    return { id: `${set}/${name}`, file: fs.existsSync(dat) ? dat : path.join(base, set, name), verdict };
  }),
);

let transport: TransportLayer;
let layer: TransactionLayer;
let peer: UdpPeer;
let port: number;
const delivered: SipMessage[] = [];
const toTu: SipRequest[] = [];
const answered: SipResponse[] = [];
const dropped: string[] = [];
const errors: string[] = [];

beforeAll(async () => {
  transport = new TransportLayer(
    // The messages name hosts all over the Internet: nothing may leave loopback.
    { host: '127.0.0.1', udpPort: 0, supportedOptionTags: [], allowDestination: (a) => a === '127.0.0.1' },
    (level, msg) => {
      if (msg.startsWith('dropped')) dropped.push(msg);
      if (level === 'error') errors.push(msg);
    },
  );
  port = (await transport.start()).udp!;
  // Record what the transport answers instead of sending it to the Via of a torture message.
  transport.sendResponse = async (res) => {
    answered.push(res);
    return {
      status: res.status,
      bytes: serializeMessage(res),
      transport: 'udp',
      address: '127.0.0.1',
      port: 9,
    };
  };
  transport.onMessage((msg) => delivered.push(msg));
  peer = await UdpPeer.open();
});

afterAll(async () => {
  layer.stop();
  await transport.stop();
  peer.close();
});

beforeEach(() => {
  for (const list of [delivered, toTu, answered, dropped]) list.length = 0;
  // A fresh transaction layer each time: several files share a branch and sent-by, which one
  // layer would rightly take for retransmissions (§17.2.3). A stopped layer ignores traffic.
  layer?.stop();
  layer = new TransactionLayer(
    transport,
    { t1: 20 },
    { tryingDelayMs: 60_000, log: (level, msg) => level === 'error' && errors.push(msg) },
  );
  layer.onRequest((req) => toTu.push(req));
});

async function outcome(file: string): Promise<void> {
  await peer.send(fs.readFileSync(file), port);
  await until(() => delivered.length + answered.length + dropped.length > 0, 3000, 'the transport to act');
  await delay(10);
}

describe('torture messages over UDP', () => {
  it('finds the conformance files', () => {
    expect(cases.length).toBeGreaterThanOrEqual(60);
  });

  it.each(cases)('$id', async ({ file, verdict }) => {
    const isResponse = fs.readFileSync(file).subarray(0, 8).toString() === 'SIP/2.0 ';
    await outcome(file);
    const outcomes = [delivered.length > 0, answered.length > 0, dropped.length > 0].filter(Boolean);
    expect(outcomes).toHaveLength(1);
    expect(errors).toEqual([]);
    if (verdict.expect === 'accept' || (verdict.expect === 'reject' && verdict.status === 415)) {
      // 415 (invut) is the application's answer to a well-formed request.
      expect(delivered).toHaveLength(1);
      if (!isResponse) expect(toTu).toHaveLength(1);
      return;
    }
    if (verdict.expect === 'reject') {
      expect(delivered).toHaveLength(0);
      expect(toTu).toHaveLength(0);
      if (isResponse) {
        expect(dropped).toHaveLength(1);
        return;
      }
      expect(answered).toHaveLength(1);
      expect(answered[0]!.status).toBe(verdict.status ?? 400);
      if (verdict.status === 420) expect(getHeader(answered[0]!, 'Unsupported')).toBeDefined();
      return;
    }
    // "either": the stack made one clear choice (checked above); a request is never both
    // answered by the transport and passed to the application.
    if (!isResponse) expect(toTu.length + answered.length).toBe(1);
  });
});
