/** Self-signed certificates for TLS tests on loopback (the edge's own default is made the same way). */
import { generate } from 'selfsigned';

export interface CertificatePair {
  key: string;
  cert: string;
}

/** A fresh P-256 key and a self-signed certificate for `commonName` (and 127.0.0.1). */
export async function selfSignedPair(commonName = 'localhost'): Promise<CertificatePair> {
  const pems = await generate([{ name: 'commonName', value: commonName }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    extensions: [
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: commonName },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  });
  return { key: pems.private, cert: pems.cert };
}
