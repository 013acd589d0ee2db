/**
 * The CLI's way to the service: the admin port's operator API with the operator token. Errors
 * carry the exit code the CLI ends with (docs/operations.md "Operator CLI").
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** 1: the service refused or failed the request; 2: bad input; 3: the service could not be reached. */
export class CliError extends Error {
  constructor(
    readonly exitCode: 1 | 2 | 3,
    message: string,
  ) {
    super(message);
  }
}

export interface Connection {
  url: string;
  token: string;
}

/** The token from --token, ADMIN_TOKEN, or the data folder's admin-token file, in that order. */
export async function resolveToken(opts: { token?: string; dataDir?: string }): Promise<string> {
  if (opts.token) return opts.token;
  if (process.env.ADMIN_TOKEN) return process.env.ADMIN_TOKEN;
  const dir = opts.dataDir ?? process.env.DATA_DIR ?? '.data';
  try {
    return (await readFile(join(dir, 'admin-token'), 'utf8')).trim();
  } catch {
    throw new CliError(
      2,
      `no operator token: pass --token, set ADMIN_TOKEN, or point --data-dir at the service's data folder (${join(dir, 'admin-token')} not readable)`,
    );
  }
}

export async function call<T>(conn: Connection, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(new URL(path, conn.url), {
      method: body === undefined ? 'GET' : 'POST',
      headers: {
        authorization: `Bearer ${conn.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new CliError(3, `cannot reach the service at ${conn.url} (${cause}); is it running? (--url)`);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = { error: text.slice(0, 200) };
  }
  if (res.status === 401) throw new CliError(1, 'the service refused the operator token (--token, ADMIN_TOKEN)');
  if (!res.ok) {
    const error = (json as { error?: string; detail?: string }).error ?? `HTTP ${res.status}`;
    throw new CliError(res.status >= 400 && res.status < 500 ? 2 : 1, `${error} (HTTP ${res.status})`);
  }
  return json as T;
}
