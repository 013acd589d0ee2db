/**
 * Certificate fingerprints as SDP carries them (RFC 8122 §5, `a=fingerprint:<hash-func>
 * <fingerprint>`): what the service announces for its own MSRP TLS certificate, and the check of
 * a client's certificate against the fingerprint its offer named (RFC 8122 §6: the fingerprint,
 * not a certificate authority, authenticates a self-signed certificate).
 */
import { createHash, X509Certificate } from 'node:crypto';

export interface CertificateFingerprint {
  /** RFC 8122 §5 hash-func, lower case: sha-1, sha-224, sha-256, sha-384, sha-512. */
  hash: string;
  /** Upper-case hex pairs joined by colons (RFC 8122 §5: 2UHEX *(":" 2UHEX)). */
  value: string;
}

/**
 * The hash functions a fingerprint may use. RFC 8122 §5: md2 and md5 MUST NOT be used; sha-1 is
 * still read (older clients) but never written.
 */
const HASHES: Record<string, string> = {
  'sha-1': 'sha1',
  'sha-224': 'sha224',
  'sha-256': 'sha256',
  'sha-384': 'sha384',
  'sha-512': 'sha512',
};

const HEX_PAIRS = /^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})*$/;

/** Split an `a=fingerprint` value; undefined when it is not `hash-func SP hex-pairs`. */
export function parseFingerprint(text: string): CertificateFingerprint | undefined {
  const [hash, value, ...rest] = text.trim().split(/\s+/);
  if (!hash || !value || rest.length > 0 || !HEX_PAIRS.test(value)) return undefined;
  return { hash: hash.toLowerCase(), value: value.toUpperCase() };
}

/** Whether the service can check a fingerprint made with this hash function. */
export function isSupportedHash(hash: string): boolean {
  return Object.hasOwn(HASHES, hash.toLowerCase());
}

/** The fingerprint of a certificate (PEM or DER); throws TypeError for an unsupported hash. */
export function certificateFingerprint(certificate: string | Buffer, hash = 'sha-256'): CertificateFingerprint {
  const algorithm = HASHES[hash.toLowerCase()];
  if (!algorithm) throw new TypeError(`unsupported fingerprint hash function: ${hash}`);
  const x509 = new X509Certificate(certificate);
  // X509Certificate computes SHA-256 itself; the others hash the DER encoding (RFC 8122 §5).
  const value =
    algorithm === 'sha256'
      ? x509.fingerprint256
      : (createHash(algorithm).update(x509.raw).digest('hex').toUpperCase().match(/../g)?.join(':') ?? '');
  return { hash: hash.toLowerCase(), value };
}

/** `hash-func SP fingerprint`, as it follows `a=fingerprint:`. */
export function formatFingerprint(fingerprint: CertificateFingerprint): string {
  return `${fingerprint.hash} ${fingerprint.value}`;
}

/** Does the certificate (DER or PEM) have this fingerprint? False for an unsupported hash. */
export function matchesFingerprint(certificate: string | Buffer, expected: CertificateFingerprint): boolean {
  if (!isSupportedHash(expected.hash)) return false;
  return certificateFingerprint(certificate, expected.hash).value === expected.value.toUpperCase();
}
