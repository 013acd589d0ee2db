import { describe, expect, it } from 'vitest';
import { decodeSessionOwner, edgeSessionOwner, encodeSessionId, newSessionId } from '#shared/msrp/session-owner.ts';
import { isValidSessionId, parseMsrpUri } from '#shared/msrp/uri.ts';

const OWNER = { address: '10.0.1.23', port: 2855 };

describe('session ids naming their owner', () => {
  it('round-trips the owner through an id that is a valid RFC 4975 session-id', () => {
    const id = encodeSessionId(OWNER, 'Zk3-x_9QpL2mWv7yT0aB');
    expect(id).toBe('r0a0001170b27.Zk3-x_9QpL2mWv7yT0aB');
    expect(isValidSessionId(id)).toBe(true);
    expect(parseMsrpUri(`msrp://nlb.example.net:2855/${id};tcp`)?.sessionId).toBe(id);
    expect(decodeSessionOwner(id)).toEqual(OWNER);
    expect(decodeSessionOwner(encodeSessionId({ address: '255.255.255.254', port: 65535 }, 'a.b=c+d/e~'))).toEqual({
      address: '255.255.255.254',
      port: 65535,
    });
  });

  it('keeps ids without an owner as the random part alone, naming no owner', () => {
    expect(encodeSessionId(undefined, 'Zk3-x_9QpL2mWv7y')).toBe('Zk3-x_9QpL2mWv7y');
    expect(decodeSessionOwner('Zk3-x_9QpL2mWv7y')).toBeUndefined();
    expect(decodeSessionOwner('s-7c41')).toBeUndefined();
  });

  it('makes fresh ids with at least 80 random bits after the owner (RFC 4975 §14.1)', () => {
    const a = newSessionId(OWNER);
    const b = newSessionId(OWNER);
    expect(a).not.toBe(b);
    expect(decodeSessionOwner(a)).toEqual(OWNER);
    // 16 base64url characters: 96 bits.
    expect(a.slice(a.indexOf('.') + 1)).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(newSessionId()).toMatch(/^[A-Za-z0-9_-]{16}$/);
  });

  it('refuses an owner that is not an IPv4 address and port, and a random part that is no session-id', () => {
    expect(() => encodeSessionId({ address: '::1', port: 2855 }, 'abc')).toThrow(TypeError);
    expect(() => encodeSessionId({ address: 'edge.internal', port: 2855 }, 'abc')).toThrow(TypeError);
    expect(() => encodeSessionId({ address: '10.0.1.23', port: 0 }, 'abc')).toThrow(TypeError);
    expect(() => encodeSessionId({ address: '10.0.1.23', port: 65536 }, 'abc')).toThrow(TypeError);
    expect(() => encodeSessionId({ address: '10.0.1.23', port: 28.5 }, 'abc')).toThrow(TypeError);
    expect(() => encodeSessionId(OWNER, '')).toThrow(TypeError);
    expect(() => encodeSessionId(OWNER, 'a b')).toThrow(TypeError);
    expect(() => encodeSessionId(undefined, 'a;tcp')).toThrow(TypeError);
  });

  it('names no owner for malformed ids', () => {
    for (const id of [
      'r0a000117',
      'r0a0001170b27',
      'r0a0001170b27.',
      'r0a0001170b27abc',
      'R0A0001170B27.abc',
      'x0a0001170b27.abc',
      'r0g0001170b27.abc',
      'r0a00011700000.abc',
      'r0a0001170b27.a b',
      'r0a0001170b27.a;b',
      'r0a00011:0b27.abc',
    ]) {
      expect(decodeSessionOwner(id), id).toBeUndefined();
    }
  });

  it("takes the owner from an edge id's IPv4 host, none from the local default's", () => {
    expect(edgeSessionOwner('http://10.0.1.23:8080', 2855)).toEqual(OWNER);
    expect(edgeSessionOwner('local', 2855)).toBeUndefined();
    expect(edgeSessionOwner('http://edge.internal:8080', 2855)).toBeUndefined();
    expect(edgeSessionOwner('http://[fd00::17]:8080', 2855)).toBeUndefined();
  });
});
