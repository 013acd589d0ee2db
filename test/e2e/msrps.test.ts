/**
 * MSRP over TLS ended by the edge (RFC 4975 §15, msrps), on real TLS sockets on loopback: the
 * answer names the edge's certificate by fingerprint (RFC 8122 §5), and the client's certificate
 * must have the fingerprint its offer named, or its connection is refused (RFC 4975 §10.3: 403)
 * and the message stays stored for the real client.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpmClient } from '#functions/edge/cpm-client.ts';
import { connectMsrp } from '#shared/msrp/client.ts';
import { certificateFingerprint } from '#shared/msrp/fingerprint.ts';
import { parseMsrpUri } from '#shared/msrp/uri.ts';
import { parseMsrpOffer } from '#shared/sdp/msrp-sdp.ts';
import { selfSignedPair, type CertificatePair } from '../support/certificates.ts';
import { depositHttp, pendingOf, startTestEdge, type TestEdge } from './support.ts';

describe('a pull over msrps', () => {
  let edge: TestEdge;
  let mine: CertificatePair;
  let other: CertificatePair;
  beforeAll(async () => {
    [edge, mine, other] = await Promise.all([
      startTestEdge({ env: { MSRPS_PORT: '0' } }),
      selfSignedPair('alice-phone'),
      selfSignedPair('mallory'),
    ]);
  });
  afterAll(async () => {
    await edge?.close();
  });

  /** Deposit one message for `user`, then INVITE for it offering TCP/TLS/MSRP with our fingerprint. */
  async function inviteOverTls(user: string, body: string) {
    const dep = await depositHttp(edge.adminUrl, { to: user, from: 'sip:bob@example.net', body });
    expect(dep.status).toBe(201);
    const client = await CpmClient.connect({
      transport: 'tcp',
      server: { host: '127.0.0.1', port: edge.ports.tcp! },
      user,
    });
    const inv = await client.invite([{ id: dep.json.id, action: 'retrieve' }], {
      msrps: { fingerprint: certificateFingerprint(mine.cert) },
    });
    expect(inv.response.status).toBe(200);
    const answer = parseMsrpOffer(inv.response.body.toString('utf8'));
    if (!answer.ok) throw new Error(`no SDP answer: ${answer.reason}`);
    return { client, inv, answer };
  }

  /** Connect over TLS with our certificate and the answer's fingerprint; the bodies received until the BYE. */
  async function pullWithMine(pull: Awaited<ReturnType<typeof inviteOverTls>>): Promise<string[]> {
    const { client, inv, answer } = pull;
    const received: string[] = [];
    const msrp = await connectMsrp({
      localPath: inv.msrpPath,
      remotePath: answer.path,
      tls: { ...mine, serverFingerprint: answer.fingerprint! },
      onMessage: (m) => received.push(m.body.toString('utf8')),
    });
    try {
      await client.nextBye(inv.dialog);
      return received;
    } finally {
      await msrp.close();
    }
  }

  it("answers with msrps: on the TLS port and the edge certificate's fingerprint; the client pulls over TLS", async () => {
    const user = 'sip:tls-alice@example.com';
    const pull = await inviteOverTls(user, 'over tls');
    const { client, answer } = pull;
    try {
      expect(answer.tls).toBe(true);
      expect(parseMsrpUri(answer.path)).toMatchObject({ secure: true, port: edge.ports.msrps });
      // The local default's self-signed certificate, made under DATA_DIR/tls.
      const cert = await readFile(join(edge.dataDir, 'tls', 'cert.pem'), 'utf8');
      expect(answer.fingerprint).toEqual({ hash: 'sha-256', value: new X509Certificate(cert).fingerprint256 });

      const received = await pullWithMine(pull);
      expect(received).toHaveLength(1);
      expect(received[0]).toContain('over tls');
      expect((await pendingOf(edge.adminUrl, user)).total).toBe(0);
    } finally {
      client.close();
    }
  });

  it('refuses a client whose certificate is not the one its offer named; the message stays stored', async () => {
    const user = 'sip:tls-bob@example.com';
    const pull = await inviteOverTls(user, 'not for mallory');
    const { client, inv, answer } = pull;
    try {
      await expect(
        connectMsrp({
          localPath: inv.msrpPath,
          remotePath: answer.path,
          tls: { ...other, serverFingerprint: answer.fingerprint! },
        }),
      ).rejects.toThrow('status 403');
      expect((await pendingOf(edge.adminUrl, user)).total).toBe(1);

      // The client with the offered certificate, connecting next, still gets it.
      expect((await pullWithMine(pull)).join()).toContain('not for mallory');
      expect((await pendingOf(edge.adminUrl, user)).total).toBe(0);
    } finally {
      client.close();
    }
  });
});
