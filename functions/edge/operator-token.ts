/**
 * The operator credential for /api and the console: ADMIN_TOKEN when set, otherwise a random
 * token made at first start and kept in DATA_DIR/admin-token (mode 0600, readable by the
 * service's user only), so the CLI on the same machine finds it and a restart keeps it.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const TOKEN_FILE = 'admin-token';

export async function loadOperatorToken(dataDir: string, fromEnv?: string): Promise<string> {
  if (fromEnv) return fromEnv;
  const file = join(dataDir, TOKEN_FILE);
  try {
    const stored = (await readFile(file, 'utf8')).trim();
    if (stored.length > 0) return stored;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = randomBytes(24).toString('base64url');
  // `wx`: two first starts racing keep one token (the loser reads the winner's).
  try {
    await writeFile(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return (await readFile(file, 'utf8')).trim();
    throw err;
  }
  await chmod(file, 0o600);
  return token;
}

/** Whether an Authorization header carries the token (`Bearer <token>`), compared in constant time. */
export function authorized(header: string | undefined, token: string): boolean {
  if (!header?.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice(7).trim(), 'utf8');
  const want = Buffer.from(token, 'utf8');
  return given.length === want.length && timingSafeEqual(given, want);
}
