/**
 * Issue 11 item 5: an MSRP session belongs to the client whose INVITE set it up. Another host
 * that learned both paths is refused (RFC 4975 §10.3: 403), never sent the message, and cannot
 * delete it with a 200; the client, connecting afterwards, still gets it.
 */
import { once } from 'node:events';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpmClient } from '#functions/edge/cpm-client.ts';
import { connectMsrp } from '#shared/msrp/client.ts';
import { MsrpParser, serializeRequest, type MsrpMessage } from '#shared/msrp/framing.ts';
import { parseMsrpUri } from '#shared/msrp/uri.ts';
import { parseMsrpOffer } from '#shared/sdp/msrp-sdp.ts';
import { depositHttp, pendingOf, startTestEdge, type TestEdge } from './support.ts';

describe('an MSRP session from another host', () => {
  let edge: TestEdge;
  beforeAll(async () => {
    edge = await startTestEdge();
  });
  afterAll(async () => {
    await edge?.close();
  });

  it('is refused with 403 and gets nothing; the client that sent the INVITE then receives the message', async () => {
    const user = 'sip:owner@example.com';
    const dep = await depositHttp(edge.adminUrl, { to: user, from: 'sip:bob@example.net', body: 'only for me' });
    expect(dep.status).toBe(201);
    // The client's SIP comes from 127.0.0.1, and its offer's a=path names 127.0.0.1.
    const client = await CpmClient.connect({
      transport: 'tcp',
      server: { host: '127.0.0.1', port: edge.ports.tcp! },
      user,
    });
    try {
      const inv = await client.invite([{ id: dep.json.id, action: 'retrieve' }]);
      expect(inv.response.status).toBe(200);
      const answer = parseMsrpOffer(inv.response.body.toString('utf8'));
      if (!answer.ok) throw new Error('no SDP answer');
      const target = parseMsrpUri(answer.path)!;

      // Someone at 127.0.0.2 who knows both paths connects first and binds with them.
      const foreign = connect({ host: target.host, port: target.port!, localAddress: '127.0.0.2' });
      const frames: MsrpMessage[] = [];
      const parser = new MsrpParser();
      foreign.on('data', (data: Buffer) => {
        for (const item of parser.push(data).items) if (item.kind !== 'malformed') frames.push(item);
      });
      await once(foreign, 'connect');
      foreign.write(
        serializeRequest({
          transactionId: 'steal0001',
          method: 'SEND',
          toPath: [answer.path],
          fromPath: [inv.msrpPath],
          messageId: 'steal0001',
        }),
      );
      await expect.poll(() => frames.length).toBe(1);
      expect(frames[0]).toMatchObject({ kind: 'response', transactionId: 'steal0001', status: 403 });

      const received: string[] = [];
      const msrp = await connectMsrp({
        localPath: inv.msrpPath,
        remotePath: answer.path,
        onMessage: (m) => received.push(m.body.toString('utf8')),
      });
      try {
        await client.nextBye(inv.dialog);
        expect(received).toHaveLength(1);
        expect(received[0]).toContain('only for me');
        expect((await pendingOf(edge.adminUrl, user)).total).toBe(0);
        // The foreign connection saw its 403 and nothing else: no SEND of the message.
        expect(frames).toHaveLength(1);
      } finally {
        msrp.close();
        foreign.destroy();
      }
    } finally {
      client.close();
    }
  });
});
