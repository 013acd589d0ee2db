/**
 * The TLS key and certificate for SIPS (RFC 3261 §26.2.1): the configured PEM files, or for the
 * local default a self-signed pair made once and kept under the data folder, so restarts keep the
 * same certificate a client may have pinned.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface TlsMaterial {
  key: string;
  cert: string;
}

export async function loadTlsMaterial(opts: {
  keyFile?: string;
  certFile?: string;
  dataDir: string;
  commonName: string;
}): Promise<TlsMaterial> {
  if (opts.keyFile && opts.certFile) {
    return { key: await readFile(opts.keyFile, 'utf8'), cert: await readFile(opts.certFile, 'utf8') };
  }
  const dir = join(opts.dataDir, 'tls');
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  try {
    return { key: await readFile(keyPath, 'utf8'), cert: await readFile(certPath, 'utf8') };
  } catch {
    const pems = await selfSignedPair(opts.commonName);
    await mkdir(dir, { recursive: true });
    await writeFile(keyPath, pems.key, { mode: 0o600 });
    await writeFile(certPath, pems.cert);
    return pems;
  }
}

/** A fresh P-256 key and a self-signed certificate for `commonName` (and 127.0.0.1). */
export async function selfSignedPair(commonName: string): Promise<TlsMaterial> {
  // Loaded only when needed: the X.509 toolkit is most of what the edge would parse at start.
  const { default: selfsigned } = await import('selfsigned');
  const pems = await selfsigned.generate([{ name: 'commonName', value: commonName }], {
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
