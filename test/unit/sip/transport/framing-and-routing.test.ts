import { describe, expect, it } from 'vitest';
import { createResponse, parseMessage, parseVia, topVia } from '#shared/sip/messages/index.ts';
import type { SipRequest } from '#shared/sip/messages/index.ts';
import { StreamFramer, plainAddress, responseDestination, stampTopVia } from '#shared/sip/transport/index.ts';
import type { FramerEvent, Source } from '#shared/sip/transport/index.ts';
import { requestText } from './peers.ts';

function request(text: string): SipRequest {
  const r = parseMessage(Buffer.from(text), { datagram: true });
  if (!r.ok || r.message.kind !== 'request') throw new Error('bad test request');
  return r.message;
}

const kinds = (events: FramerEvent[]) => events.map((e) => e.kind);

describe('StreamFramer', () => {
  it('yields each message once whole, whatever the chunking', () => {
    const text = requestText({ method: 'MESSAGE', body: 'abcdef' }) + requestText({ method: 'OPTIONS' });
    for (const size of [1, 7, 64, text.length]) {
      const framer = new StreamFramer(65535);
      const events: FramerEvent[] = [];
      for (let i = 0; i < text.length; i += size) events.push(...framer.push(Buffer.from(text.slice(i, i + size))));
      expect(kinds(events)).toEqual(['message', 'message']);
      const first = events[0]!;
      if (first.kind === 'message') expect(first.bytes.toString()).toMatch(/abcdef$/);
      expect(framer.pending).toBe(0);
    }
  });

  it('reports a ping for CRLFCRLF, ignores a lone CRLF, even split across reads', () => {
    const framer = new StreamFramer(65535);
    expect(kinds(framer.push(Buffer.from('\r\n')))).toEqual([]);
    expect(kinds(framer.push(Buffer.from('\r\n')))).toEqual(['ping']);
    expect(kinds(framer.push(Buffer.from(`\r\n${requestText({ method: 'OPTIONS' })}\r\n\r\n`)))).toEqual([
      'message',
      'ping',
    ]);
  });

  it('stops at a framing error and marks an oversize message', () => {
    const missingLength = new StreamFramer(65535);
    const events = missingLength.push(Buffer.from(requestText({ method: 'OPTIONS', omit: ['Content-Length'] })));
    expect(kinds(events)).toEqual(['error']);
    expect(events[0]).toMatchObject({ oversize: false });
    expect(missingLength.push(Buffer.from(requestText({ method: 'OPTIONS' })))).toEqual([]);

    const big = new StreamFramer(500);
    const bigEvents = big.push(Buffer.from(requestText({ method: 'MESSAGE', body: 'z'.repeat(600) })));
    expect(kinds(bigEvents)).toEqual(['error']);
    expect(bigEvents[0]).toMatchObject({ oversize: true });
  });

  it('marks an endless header as oversize', () => {
    const framer = new StreamFramer(300);
    const events = framer.push(Buffer.from(`OPTIONS sip:a@example.com SIP/2.0\r\nX-Long: ${'a'.repeat(400)}`));
    expect(kinds(events)).toEqual(['error']);
    expect(events[0]).toMatchObject({ oversize: true });
  });
});

const udpSource: Source = {
  transport: 'udp',
  remoteAddress: '192.0.2.7',
  remotePort: 40000,
  localAddress: '127.0.0.1',
  localPort: 5060,
};

describe('received / rport (RFC 3261 §18.2.1, RFC 3581 §4)', () => {
  it('adds received when the sent-by is a name or another address, and fills an empty rport', () => {
    const named = request(requestText({ method: 'OPTIONS', sentBy: 'client.example.com:5070' }));
    stampTopVia(named, udpSource);
    expect(topVia(named)).toMatchObject({ host: 'client.example.com', port: 5070, received: '192.0.2.7' });

    const same = request(requestText({ method: 'OPTIONS', sentBy: '192.0.2.7:5070' }));
    stampTopVia(same, udpSource);
    expect(topVia(same)!.received).toBeUndefined();

    const rport = request(requestText({ method: 'OPTIONS', sentBy: '192.0.2.7:5070', rport: true }));
    stampTopVia(rport, udpSource);
    expect(topVia(rport)).toMatchObject({ received: '192.0.2.7', rport: 40000 });
  });

  it('reads the stamped Via back as its text alone reads (the value noted while stamping is the same)', () => {
    const sources: Source[] = [
      udpSource,
      { ...udpSource, remoteAddress: '::ffff:198.51.100.4', remotePort: 5 },
      { ...udpSource, remoteAddress: '2001:db8::9', remotePort: 65535 },
    ];
    for (const source of sources) {
      for (const sentBy of ['client.example.com:5070', '192.0.2.7', '[2001:db8::1]:5061']) {
        const req = request(requestText({ method: 'OPTIONS', sentBy, rport: true }));
        stampTopVia(req, source);
        const noted = topVia(req);
        const text = req.headers.find((h) => h.name === 'Via')!.value;
        // Other Vias read meanwhile push the noted one out: the last read is from the text.
        for (let i = 0; i < 64; i++) parseVia(`SIP/2.0/UDP h${i}.example.com;branch=z9hG4bK${i}`);
        expect(noted).toEqual(parseVia(text));
        expect(noted).toMatchObject({ received: plainAddress(source.remoteAddress), rport: source.remotePort });
      }
    }
  });

  it('touches only the top via-parm when several share one Via field', () => {
    const text = requestText({ method: 'OPTIONS', sentBy: 'a.example.com', rport: true }).replace(
      /^(Via: .*)$/m,
      '$1, SIP/2.0/UDP b.example.com;branch=z9hG4bKsecond',
    );
    const req = request(text);
    stampTopVia(req, udpSource);
    const via = req.headers.find((h) => h.name === 'Via')!.value;
    expect(via).toMatch(/received=192\.0\.2\.7/);
    expect(via).toMatch(/, SIP\/2\.0\/UDP b\.example\.com;branch=z9hG4bKsecond$/);
  });
});

describe('response destination (RFC 3261 §18.2.2)', () => {
  it('uses received + rport over UDP, the sent-by port without rport, and maddr when given', () => {
    const withRport = request(requestText({ method: 'OPTIONS', sentBy: '10.0.0.1:5070', rport: true }));
    stampTopVia(withRport, udpSource);
    expect(responseDestination(createResponse(withRport, 200), udpSource)).toMatchObject({
      address: '192.0.2.7',
      port: 40000,
    });

    const plain = request(requestText({ method: 'OPTIONS', sentBy: '10.0.0.1:5070' }));
    stampTopVia(plain, udpSource);
    expect(responseDestination(createResponse(plain, 200), udpSource)).toMatchObject({
      address: '192.0.2.7',
      port: 5070,
    });

    const noPort = request(requestText({ method: 'OPTIONS', sentBy: '192.0.2.7' }));
    expect(responseDestination(createResponse(noPort, 200), udpSource)).toMatchObject({
      address: '192.0.2.7',
      port: 5060,
    });

    const maddr = request(
      requestText({ method: 'OPTIONS', sentBy: '10.0.0.1:5070' }).replace('branch=', 'maddr=239.255.255.1;branch='),
    );
    expect(responseDestination(createResponse(maddr, 200), udpSource)).toMatchObject({
      address: '239.255.255.1',
      port: 5070,
    });
  });

  it('prefers the request connection over stream transports', () => {
    const tcpSource: Source = { ...udpSource, transport: 'tcp', connectionId: 'tcp-9' };
    const req = request(requestText({ method: 'OPTIONS', transport: 'TCP', sentBy: '10.0.0.1:5070' }));
    stampTopVia(req, tcpSource);
    expect(responseDestination(createResponse(req, 200), tcpSource)).toMatchObject({
      transport: 'tcp',
      connectionId: 'tcp-9',
      address: '192.0.2.7',
      port: 5070,
    });
  });
});
