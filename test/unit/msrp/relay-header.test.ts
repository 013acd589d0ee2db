import { describe, expect, it } from 'vitest';
import { encodeRelayHeader, MAX_RELAY_HEADER_BYTES, readRelayHeader } from '#shared/msrp/relay-header.ts';

const LOCAL4 = { address: '10.0.1.23', port: 2855 };

describe('relay header (PROXY protocol v2)', () => {
  it('carries an IPv4 client, its TLS and certificate, and leaves the bytes after it alone', () => {
    const certificate = Buffer.from('DER bytes of a certificate');
    const header = encodeRelayHeader({ address: '198.51.100.7', port: 50123, tls: true, certificate }, LOCAL4);
    // The v2 signature, version 2 PROXY, TCP over IPv4 (HAProxy PROXY protocol §2.2).
    expect(header.subarray(0, 14).toString('hex')).toBe('0d0a0d0a000d0a515549540a2111');
    const bytes = Buffer.concat([header, Buffer.from('MSRP a SEND\r\n')]);
    const read = readRelayHeader(bytes);
    expect(read).toEqual({
      state: 'complete',
      client: { address: '198.51.100.7', port: 50123, tls: true, certificate },
      consumed: header.length,
    });
    expect(bytes.subarray(header.length).toString()).toBe('MSRP a SEND\r\n');
  });

  it('carries an IPv6 client in plain TCP', () => {
    const header = encodeRelayHeader({ address: '2001:db8::7', port: 4000, tls: false }, LOCAL4);
    expect(readRelayHeader(header)).toMatchObject({
      state: 'complete',
      client: { address: '2001:db8:0:0:0:0:0:7', port: 4000, tls: false },
    });
  });

  it('waits for a header cut anywhere, and tells MSRP from a header at the first byte', () => {
    const header = encodeRelayHeader({ address: '192.0.2.1', port: 1, tls: false }, LOCAL4);
    for (let n = 1; n < header.length; n++) {
      expect(readRelayHeader(header.subarray(0, n))).toEqual({ state: 'partial', needed: n < 16 ? 16 : header.length });
    }
    expect(readRelayHeader(Buffer.from('M')).state).toBe('absent');
    expect(readRelayHeader(Buffer.from('MSRP abc SEND\r\n')).state).toBe('absent');
  });

  it('refuses a header longer than it reads, or cut inside a TLV, naming why', () => {
    const header = encodeRelayHeader({ address: '192.0.2.1', port: 1, tls: false }, LOCAL4);
    const long = Buffer.from(header);
    long.writeUInt16BE(MAX_RELAY_HEADER_BYTES, 14);
    expect(readRelayHeader(long)).toEqual({ state: 'invalid', reason: 'header too long' });
    const cut = Buffer.concat([header, Buffer.from([0xe0, 0x00, 0x10, 0x01])]);
    cut.writeUInt16BE(header.length - 16 + 4, 14);
    expect(readRelayHeader(cut)).toEqual({ state: 'invalid', reason: 'TLV cut short' });
    const local = Buffer.from(header);
    local[12] = 0x20;
    expect(readRelayHeader(local)).toMatchObject({ state: 'invalid', reason: 'not a version 2 PROXY command' });
  });
});
