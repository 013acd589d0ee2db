/**
 * The pull benches' load generator (test/bench/pull-load.ts) against the service: a pull is whole
 * and checked (the count the NOTIFY lists, every message over MSRP, the mailbox emptied), and
 * what the service sends again is counted as a retransmission.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMessage } from '#shared/sip/messages/index.ts';
import { PullLoad } from '../bench/pull-load.ts';
import { depositHttp, pendingOf, startTestEdge, type TestEdge } from './support.ts';

let edge: TestEdge;
let load: PullLoad;

beforeAll(async () => {
  edge = await startTestEdge();
  load = await PullLoad.open({ host: '127.0.0.1', port: edge.ports.udp! });
});

afterAll(async () => {
  load?.close();
  await edge?.close();
});

async function deposit(user: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = await depositHttp(edge.adminUrl, { to: user, from: 'sip:bob@example.net', body: `message ${i}` });
    expect(r.status).toBe(201);
  }
}

describe('PullLoad', () => {
  it('pulls every message of a user, leaving the mailbox empty', async () => {
    await deposit('sip:full@example.com', 3);
    const times = await load.pull('sip:full@example.com', 3);
    expect(times.total).toBeGreaterThanOrEqual(times.toFirstNotify);
    expect((await pendingOf(edge.adminUrl, 'sip:full@example.com')).total).toBe(0);
    expect(load.retransmissionsReceived).toBe(0);
  });

  it('fails a pull whose NOTIFY lists another count, naming it', async () => {
    await deposit('sip:short@example.com', 2);
    await expect(load.pull('sip:short@example.com', 3)).rejects.toThrow(/lists 2 of 3/);
  });

  it('counts a request in no pull dialog as a retransmission, answering 481', async () => {
    const before = load.retransmissionsReceived;
    const socket = connect(load.port, '127.0.0.1');
    const answer = new Promise<Buffer>((resolve) => socket.once('data', resolve));
    socket.write(
      'NOTIFY sip:full@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKgone1\r\n' +
        'Max-Forwards: 70\r\nFrom: <sip:full@example.com>;tag=a\r\nTo: <sip:full@example.com>;tag=b\r\n' +
        'Call-ID: gone@127.0.0.1\r\nCSeq: 3 NOTIFY\r\nEvent: deferred-messages\r\n' +
        'Subscription-State: terminated\r\nContent-Length: 0\r\n\r\n',
    );
    const parsed = parseMessage(await answer);
    socket.destroy();
    expect(parsed.ok && parsed.message.kind === 'response' && parsed.message.status).toBe(481);
    expect(load.retransmissionsReceived).toBe(before + 1);
  });
});
