/** Self-signed certificates for TLS tests on loopback, made as the edge makes its own default. */
import { selfSignedPair as edgeSelfSignedPair, type TlsMaterial } from '#functions/edge/tls-material.ts';

export type CertificatePair = TlsMaterial;

/** A fresh P-256 key and a self-signed certificate for `commonName` (and 127.0.0.1). */
export function selfSignedPair(commonName = 'localhost'): Promise<CertificatePair> {
  return edgeSelfSignedPair(commonName);
}
