import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  certificateFingerprint,
  formatFingerprint,
  matchesFingerprint,
  parseFingerprint,
} from '#shared/msrp/fingerprint.ts';
import { selfSignedPair, type CertificatePair } from '../../support/certificates.ts';

describe('certificate fingerprints (RFC 8122 §5)', () => {
  let pair: CertificatePair;
  let x509: X509Certificate;
  beforeAll(async () => {
    pair = await selfSignedPair('fp.test');
    x509 = new X509Certificate(pair.cert);
  });

  it('hashes the DER certificate as X509Certificate does, for each hash function it names', () => {
    expect(certificateFingerprint(pair.cert)).toEqual({ hash: 'sha-256', value: x509.fingerprint256 });
    expect(certificateFingerprint(pair.cert, 'SHA-1').value).toBe(x509.fingerprint);
    expect(certificateFingerprint(x509.raw, 'sha-512').value).toBe(x509.fingerprint512);
    expect(certificateFingerprint(pair.cert, 'sha-384').value).toMatch(/^[0-9A-F]{2}(:[0-9A-F]{2}){47}$/);
    expect(() => certificateFingerprint(pair.cert, 'md5')).toThrow(TypeError);
  });

  it('reads and writes the attribute value, and compares whatever the case of the hex', () => {
    const fp = parseFingerprint(`SHA-256 ${x509.fingerprint256.toLowerCase()}`)!;
    expect(fp).toEqual({ hash: 'sha-256', value: x509.fingerprint256 });
    expect(formatFingerprint(fp)).toBe(`sha-256 ${x509.fingerprint256}`);
    expect(matchesFingerprint(x509.raw, fp)).toBe(true);
    expect(matchesFingerprint(x509.raw, { hash: 'sha-256', value: x509.fingerprint512 })).toBe(false);
    expect(matchesFingerprint(x509.raw, { hash: 'md5', value: 'AB' })).toBe(false);
  });

  it.each(['sha-256', 'sha-256 AB:C', 'sha-256 AB::CD', 'sha-256 AB CD', 'sha-256 :AB', ''])('refuses "%s"', (text) => {
    expect(parseFingerprint(text)).toBeUndefined();
  });
});
