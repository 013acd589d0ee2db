/**
 * `npx deferred-cpm` as an operator runs it: a child process against a running service, its
 * output, its JSON and its exit codes (0 done, 1 refused, 2 bad input, 3 unreachable).
 */
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_ADMIN_TOKEN, startTestEdge, type TestEdge } from './support.ts';

let edge: TestEdge;
beforeAll(async () => {
  edge = await startTestEdge();
});
afterAll(async () => {
  await edge?.close();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['bin/deferred-cpm.mjs', ...args],
      { env: { ...process.env, ADMIN_TOKEN: '', DEFERRED_CPM_URL: edge.adminUrl, ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
const withToken = (args: string[]) => cli(['--token', TEST_ADMIN_TOKEN, ...args]);

// Each run starts a Node process with tsx: slow on a loaded two-core machine.
describe('deferred-cpm CLI', { timeout: 120_000 }, () => {
  it('prints help for the program and for every command, exit 0', async () => {
    const top = await cli(['--help']);
    expect(top.code).toBe(0);
    for (const command of ['deposit', 'list', 'purge', 'stats', 'trace', 'demo']) {
      expect(top.stdout).toContain(command);
      const sub = await cli([command, '--help']);
      expect(sub.code).toBe(0);
      expect(sub.stdout).toContain(`Usage: deferred-cpm ${command}`);
    }
  });

  it('deposits, lists with paging, purges one and all, with --json', async () => {
    const user = 'sip:cli@example.com';
    const ids: string[] = [];
    for (const i of [1, 2, 3]) {
      const r = await withToken([
        '--json',
        'deposit',
        '--to',
        user,
        '--from',
        'sip:bob@example.net',
        '--body',
        `m${i}`,
      ]);
      expect(r.code).toBe(0);
      const json = JSON.parse(r.stdout) as { id: string; created: boolean };
      expect(json.created).toBe(true);
      ids.push(json.id);
    }
    const page = await withToken(['--json', 'list', user, '--limit', '2']);
    const first = JSON.parse(page.stdout) as { total: number; entries: { id: string }[]; cursor: string };
    expect(first.total).toBe(3);
    expect(first.entries.map((e) => e.id)).toEqual(ids.slice(0, 2));
    const rest = JSON.parse(
      (await withToken(['--json', 'list', user, '--limit', '2', '--cursor', first.cursor])).stdout,
    ) as {
      entries: { id: string }[];
    };
    expect(rest.entries.map((e) => e.id)).toEqual(ids.slice(2));
    const text = await withToken(['list', user, '--all', '--limit', '1']);
    expect(text.stdout).toContain(`${user}: 3 pending`);
    for (const id of ids) expect(text.stdout).toContain(id);

    const one = await withToken(['purge', user, ids[0]!]);
    expect(one.code).toBe(0);
    expect(one.stdout).toContain(`purged 1 message(s) of ${user}`);
    const all = JSON.parse((await withToken(['--json', 'purge', user, '--all'])).stdout) as { purged: string[] };
    expect(all.purged).toEqual(ids.slice(1));
    const stats = JSON.parse((await withToken(['--json', 'stats'])).stdout) as { pending: number };
    expect(stats.pending).toBe(0);
  });

  it('reads the token from the data folder when none is given', async () => {
    const own = await startTestEdge({ env: { ADMIN_TOKEN: '' } });
    try {
      const r = await cli(['--json', 'stats', '--url', own.adminUrl, '--data-dir', own.dataDir]);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toHaveProperty('pending', 0);
    } finally {
      await own.close();
    }
  });

  it('traces a demo run by Call-ID', async () => {
    const demo = await withToken(['--json', 'demo', '--sip-port', String(edge.ports.udp)]);
    expect(demo.code).toBe(0);
    const flows = (await (
      await fetch(`${edge.adminUrl}/api/flows`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } })
    ).json()) as { calls: { callId: string; first_label: string }[] };
    const invite = flows.calls.find((c) => c.first_label === 'INVITE')!;
    const trace = await withToken(['trace', invite.callId]);
    expect(trace.code).toBe(0);
    expect(trace.stdout).toMatch(/-> edge {2}SIP INVITE/);
    expect(trace.stdout).toMatch(/edge -> .* {2}MSRP SEND/);
    const none = await withToken(['trace', 'no-such-call@nowhere']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no messages of Call-ID no-such-call@nowhere');
  });

  it('names the bad input and exits 2; a refused token exits 1; no service exits 3', async () => {
    const badTo = await withToken(['deposit', '--to', 'alice', '--from', 'sip:bob@example.net', '--body', 'x']);
    expect(badTo.code).toBe(2);
    expect(badTo.stderr).toContain('--to must be a SIP or tel URI');
    const missing = await withToken(['deposit', '--to', 'sip:alice@example.com']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("required option '--from <uri>'");
    const limit = await withToken(['list', 'sip:alice@example.com', '--limit', '0']);
    expect(limit.code).toBe(2);
    expect(limit.stderr).toContain('--limit must be a whole number');
    const vague = await withToken(['purge', 'sip:alice@example.com']);
    expect(vague.code).toBe(2);
    expect(vague.stderr).toContain('--all');
    const unknown = await withToken(['frobnicate']);
    expect(unknown.code).toBe(2);
    const gone = await withToken(['purge', 'sip:alice@example.com', 'no-such-id']);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain('id: no pending message no-such-id');

    const refused = await cli(['--token', 'wrong-token-wrong-token', 'stats']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('refused the operator token');
    const down = await withToken(['stats', '--url', 'http://127.0.0.1:9']);
    expect(down.code).toBe(3);
    expect(down.stderr).toContain('cannot reach the service at http://127.0.0.1:9');
  });
});
