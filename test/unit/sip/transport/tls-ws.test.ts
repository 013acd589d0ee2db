import tls from 'node:tls';
import { once } from 'node:events';
import { generate } from 'selfsigned';
import { WebSocket } from 'ws';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createResponse, getHeader } from '#shared/sip/messages/index.ts';
import type { SipMessage, SipRequest, SipResponse } from '#shared/sip/messages/index.ts';
import { TransportLayer } from '#shared/sip/transport/index.ts';
import type { Source } from '#shared/sip/transport/index.ts';
import { TcpPeer, parsed, requestText, until } from './peers.ts';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

let pems: { private: string; cert: string };
beforeAll(async () => {
  pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [
      {
        name: 'subjectAltName',
        altNames: [
          { type: 7, ip: '127.0.0.1' },
          { type: 2, value: 'localhost' },
        ],
      },
    ],
  });
});

async function secureTransport() {
  const transport = new TransportLayer({
    host: '127.0.0.1',
    tlsPort: 0,
    wsPort: 0,
    wssPort: 0,
    tls: { key: pems.private, cert: pems.cert },
  });
  const ports = await transport.start();
  cleanup.push(() => transport.stop());
  const seen: Array<{ msg: SipMessage; source: Source }> = [];
  transport.onMessage((msg, source) => {
    seen.push({ msg, source });
    if (msg.kind === 'request') void transport.sendResponse(createResponse(msg, 200), source);
  });
  return { transport, ports, seen };
}

function wsOpen(url: string, protocols?: string[], ca?: string): Promise<WebSocket> {
  const ws = protocols ? new WebSocket(url, protocols, { ca }) : new WebSocket(url, { ca });
  cleanup.push(() => ws.terminate());
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function nextWsMessage(ws: WebSocket): Promise<SipMessage> {
  return new Promise((resolve) => ws.once('message', (data: Buffer) => resolve(parsed(data))));
}

describe('TLS transport', () => {
  it('answers a TLS client over its connection', async () => {
    const { ports, seen } = await secureTransport();
    const socket = tls.connect({ host: '127.0.0.1', port: ports.tls!, ca: pems.cert });
    await once(socket, 'secureConnect');
    const c = new TcpPeer(socket);
    cleanup.push(() => c.close());
    await c.write(requestText({ method: 'OPTIONS', transport: 'TLS' }));
    const [answer] = await c.waitForMessages(1);
    expect(answer).toMatchObject({ kind: 'response', status: 200 });
    expect(seen[0]!.source.transport).toBe('tls');
  });
});

describe('TLS between two transport layers', () => {
  it('opens a verified TLS connection for a request and gets the response back over it', async () => {
    const { ports, seen } = await secureTransport();
    const sender = new TransportLayer({
      host: '127.0.0.1',
      tlsPort: 0,
      tls: { key: pems.private, cert: pems.cert, ca: pems.cert },
    });
    await sender.start();
    cleanup.push(() => sender.stop());
    const answers: SipMessage[] = [];
    sender.onMessage((msg) => answers.push(msg));
    const options: SipRequest = {
      kind: 'request',
      method: 'OPTIONS',
      uri: `sips:pf@127.0.0.1:${ports.tls}`,
      headers: [
        { name: 'Via', value: `SIP/2.0/TLS 127.0.0.1:${sender.ports.tls};branch=z9hG4bKtls1` },
        { name: 'Max-Forwards', value: '70' },
        { name: 'From', value: '<sips:a@example.com>;tag=t1' },
        { name: 'To', value: '<sips:pf@example.com>' },
        { name: 'Call-ID', value: 'tls-out-1' },
        { name: 'CSeq', value: '1 OPTIONS' },
      ],
      body: Buffer.alloc(0),
    };
    const used = await sender.sendRequest(options, { transport: 'tls', address: '127.0.0.1', port: ports.tls! });
    expect(used.transport).toBe('tls');
    await until(() => answers.length === 1);
    expect(answers[0]).toMatchObject({ kind: 'response', status: 200 });
    expect(seen[0]!.source.transport).toBe('tls');
  });
});

describe('WebSocket transport (RFC 7118)', () => {
  it('answers a client that negotiated the sip subprotocol, one SIP message per WebSocket message', async () => {
    const { ports, seen } = await secureTransport();
    const ws = await wsOpen(`ws://127.0.0.1:${ports.ws}`, ['sip']);
    expect(ws.protocol).toBe('sip');
    const answer = nextWsMessage(ws);
    ws.send(requestText({ method: 'OPTIONS', transport: 'WS', sentBy: 'df7jal23ls0d.invalid' }));
    expect(await answer).toMatchObject({ kind: 'response', status: 200 });
    expect(seen[0]!.source).toMatchObject({ transport: 'ws', remoteAddress: '127.0.0.1' });
    expect(seen[0]!.source.connectionId).toBeDefined();
  });

  it('refuses a handshake without the sip subprotocol', async () => {
    const { ports, transport } = await secureTransport();
    await expect(wsOpen(`ws://127.0.0.1:${ports.ws}`)).rejects.toThrow(/400/);
    await expect(wsOpen(`ws://127.0.0.1:${ports.ws}`, ['chat'])).rejects.toThrow(/400/);
    expect(transport.connectionCount).toBe(0);
  });

  it('answers over secure WebSocket and can send a request back over the client connection', async () => {
    const { ports, seen, transport } = await secureTransport();
    const ws = await wsOpen(`wss://127.0.0.1:${ports.wss}`, ['sip'], pems.cert);
    const answer = nextWsMessage(ws);
    ws.send(requestText({ method: 'SUBSCRIBE', transport: 'WSS', sentBy: 'df7jal23ls0d.invalid' }));
    expect(await answer).toMatchObject({ status: 200 });
    const source = seen[0]!.source;
    expect(source.transport).toBe('wss');

    const notify: SipRequest = {
      kind: 'request',
      method: 'NOTIFY',
      uri: 'sip:alice@df7jal23ls0d.invalid;transport=ws',
      headers: [
        { name: 'Via', value: 'SIP/2.0/WSS pf.invalid;branch=z9hG4bKws1' },
        { name: 'From', value: '<sip:alice@example.com>;tag=pf' },
        { name: 'To', value: '<sip:alice@example.com>;tag=from-1' },
        { name: 'Call-ID', value: 'call-1@test' },
        { name: 'CSeq', value: '1 NOTIFY' },
      ],
      body: Buffer.alloc(0),
    };
    const incoming = nextWsMessage(ws);
    await transport.sendRequest(notify, {
      transport: 'wss',
      address: source.remoteAddress,
      port: source.remotePort,
      connectionId: source.connectionId,
    });
    const got = await incoming;
    expect(got).toMatchObject({ kind: 'request', method: 'NOTIFY' });
    expect(getHeader(got, 'CSeq')).toBe('1 NOTIFY');

    ws.close();
    await until(() => !transport.connectionOpen(source.connectionId!));
    await expect(transport.sendResponse(createResponse(seen[0]!.msg as SipRequest, 200), source)).rejects.toThrow(
      /closed/,
    );
    await expect(
      transport.sendRequest(notify, { transport: 'wss', address: source.remoteAddress, port: source.remotePort }),
    ).rejects.toThrow(/no open WebSocket/);
    expect((seen[0]!.msg as SipRequest).method).toBe('SUBSCRIBE');
  });

  it('answers a broken request over WebSocket with 400', async () => {
    const { ports, seen } = await secureTransport();
    const ws = await wsOpen(`ws://127.0.0.1:${ports.ws}`, ['sip']);
    const answer = nextWsMessage(ws);
    ws.send(requestText({ method: 'OPTIONS', transport: 'WS', omit: ['Call-ID'] }));
    const res = (await answer) as SipResponse;
    expect(res.status).toBe(400);
    expect(res.reason).toMatch(/Call-ID/i);
    expect(seen).toHaveLength(0);
  });
});
