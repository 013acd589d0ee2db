/**
 * The RFC 4475 / RFC 5118 torture messages fed to the running service over its real transports
 * (stream files over TCP, datagram files over UDP), checked against verdicts.json: a rejected
 * request gets its status, a response is never answered, an accepted request gets an answer from
 * the application, and the service keeps serving after every one of them. Responses to the TCP
 * ones come back on the connection; outbound SIP is limited to loopback.
 */
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frameStream, parseMessage, serializeMessage } from '#shared/sip/messages/index.ts';
import { CpmClient } from '#functions/edge/cpm-client.ts';
import { startTestEdge, type TestEdge } from '../e2e/support.ts';
import { serverTransactionKey } from '#shared/sip/transaction/keys.ts';
import { loadTortureCases, type TortureCase } from './verdicts.ts';

const cases = loadTortureCases();

/** A response as it came off the wire: status and raw text (some echo broken headers back). */
interface RawResponse {
  status: number;
  text: string;
}

/** Everything the service answered on one TCP connection, until it closes or `until` holds. */
function tcpExchange(port: number, writes: Buffer[], until: (got: RawResponse[]) => boolean): Promise<RawResponse[]> {
  return new Promise((resolve, reject) => {
    const got: RawResponse[] = [];
    let buffer: Buffer = Buffer.alloc(0);
    const sock: Socket = connect({ host: '127.0.0.1', port }, () => {
      for (const w of writes) sock.write(w);
    });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no end of exchange; got ${got.map((r) => r.status).join(',')}`));
    }, 10_000);
    const done = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(got);
    };
    sock.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const f = frameStream(buffer, 1 << 20);
        if (f.kind !== 'message' && f.kind !== 'keepalive') break;
        buffer = f.rest;
        if (f.kind === 'keepalive') continue;
        const text = f.bytes.toString('latin1');
        const m = /^SIP\/2\.0 (\d{3}) /.exec(text);
        if (m) got.push({ status: Number(m[1]), text });
      }
      if (until(got)) done();
    });
    sock.on('close', done);
    sock.on('error', () => undefined);
  });
}

/**
 * The bytes one message occupies on a stream. A few RFC 5118 files carry octets past their
 * Content-Length (a datagram would drop them, RFC 3261 §18.3); on a stream those would be the
 * start of a next message, so they are left out.
 */
function streamBytes(bytes: Buffer): Buffer {
  const end = bytes.indexOf('\r\n\r\n');
  const cl = /^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*$/im.exec(bytes.subarray(0, end).toString('latin1'));
  if (end < 0 || !cl) return bytes;
  const length = end + 4 + Number(cl[1]);
  return length < bytes.length ? bytes.subarray(0, length) : bytes;
}

describe('torture messages over the real transports', () => {
  let edge: TestEdge;
  let probe: CpmClient;
  beforeAll(async () => {
    edge = await startTestEdge();
    probe = await CpmClient.connect({
      transport: 'udp',
      server: { host: '127.0.0.1', port: edge.ports.udp! },
      user: 'sip:probe@example.com',
    });
  });
  afterAll(async () => {
    probe?.close();
    await edge?.close();
  });

  /** What the service must do with a case: the verdict, or for `either` the parser's own choice. */
  const expected = (c: TortureCase): { answer: 'none' | 'status' | 'any'; status?: number } => {
    const isResponse = c.bytes.subarray(0, 8).toString('latin1') === 'SIP/2.0 ';
    if (isResponse) return { answer: 'none' };
    if (c.verdict.expect === 'reject') return { answer: 'status', status: c.verdict.status ?? 400 };
    if (c.verdict.expect === 'accept') return { answer: 'any' };
    const p = parseMessage(c.bytes, { datagram: c.datagram });
    return p.ok ? { answer: 'any' } : { answer: 'status', status: p.status };
  };

  const streamCases = cases.filter((c) => !c.datagram);
  // Some files share branch, sent-by and method (cparam01/02, port-ambiguous/unambiguous): by
  // §17.2.3 the later one is a retransmission of the earlier, which the server absorbs or answers
  // on the earlier connection, so only "no parse error here, and the service goes on" holds.
  const seenKeys = new Set<string>();
  const retransmissions = new Set<string>();
  for (const c of streamCases) {
    const p = parseMessage(streamBytes(c.bytes), { datagram: false });
    const key = p.ok && p.message.kind === 'request' ? serverTransactionKey(p.message) : undefined;
    if (key === undefined) continue;
    if (seenKeys.has(key)) retransmissions.add(c.name);
    seenKeys.add(key);
  }
  it.each(streamCases.map((c) => [`${c.folder}/${c.name}`, c] as const))('%s over TCP', async (_name, c) => {
    const want = expected(c);
    const isAck = c.bytes.subarray(0, 4).toString('latin1') === 'ACK ';
    // An OPTIONS after the torture message on the same connection: its 200 marks the end, so a
    // message that must not be answered is known to have been passed over.
    const marker = probe.buildRequest('OPTIONS', { callId: `marker-${c.name}@127.0.0.1` });
    const isMarker = (r: RawResponse) => r.text.includes(`marker-${c.name}@127.0.0.1`);
    const retransmission = retransmissions.has(c.name);
    const silent = want.answer === 'none' || isAck || retransmission;
    // Handlers answer asynchronously: the marker may overtake the answer, so wait for both.
    const got = await tcpExchange(edge.ports.tcp!, [streamBytes(c.bytes), serializeMessage(marker)], (rs) =>
      silent ? rs.some(isMarker) : rs.some(isMarker) && rs.some((r) => !isMarker(r) && r.status >= 200),
    );
    const answers = got.filter((r) => !isMarker(r) && r.status >= 200);
    if (retransmission) {
      expect(answers.filter((r) => [400, 505, 513].includes(r.status))).toEqual([]);
      expect(got.some(isMarker)).toBe(true);
    } else if (silent) {
      expect(answers).toEqual([]);
      expect(got.some(isMarker)).toBe(true);
    } else if (want.answer === 'status') {
      expect(answers[0]?.status, `answers: ${answers.map((r) => r.text.split('\r\n')[0]).join('; ')}`).toBe(
        want.status,
      );
    } else {
      // Accepted: the application answered it with its own status, never a parse error.
      expect(answers).toHaveLength(1);
      expect([400, 505, 513]).not.toContain(answers[0]!.status);
    }
  });

  it('takes every datagram case over UDP and keeps answering', async () => {
    const sock = createSocket('udp4');
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()));
    for (const c of cases.filter((x) => x.datagram)) sock.send(c.bytes, edge.ports.udp!, '127.0.0.1');
    sock.close();
    const res = await probe.request(probe.buildRequest('OPTIONS'));
    expect(res.status).toBe(200);
  });
});
