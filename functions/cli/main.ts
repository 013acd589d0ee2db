/**
 * `npx deferred-cpm`: the operator's command line over the admin port's API (docs/operations.md
 * "Operator CLI"). Every command takes --json for machine output; exit codes: 0 done, 1 the
 * service refused or failed, 2 bad input, 3 the service unreachable.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { CliError, call, resolveToken, type Connection } from './admin-client.ts';

const program = new Command();
program
  .name('deferred-cpm')
  .description('Operate a deferred-cpm service: deposit, list, purge, stats, trace, demo')
  .addOption(
    new Option('--url <url>', 'admin port of the service').env('DEFERRED_CPM_URL').default('http://127.0.0.1:8080'),
  )
  .option('--token <token>', 'operator token (default: ADMIN_TOKEN, else <data-dir>/admin-token)')
  .option('--data-dir <dir>', "the service's data folder, where it keeps admin-token (default: DATA_DIR or .data)")
  .option('--json', 'print JSON instead of text')
  .showHelpAfterError('(add --help for usage)')
  .exitOverride();

interface Globals {
  url: string;
  token?: string;
  dataDir?: string;
  json?: boolean;
}

const globals = (): Globals => program.opts<Globals>();

async function connection(): Promise<Connection> {
  const g = globals();
  try {
    new URL(g.url);
  } catch {
    throw new CliError(2, `--url: "${g.url}" is not a URL (e.g. http://127.0.0.1:8080)`);
  }
  return {
    url: g.url,
    token: await resolveToken({ ...(g.token ? { token: g.token } : {}), ...(g.dataDir ? { dataDir: g.dataDir } : {}) }),
  };
}

function out(value: unknown, text: () => string): void {
  process.stdout.write(globals().json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

/** sip:, sips: or tel: with something after the colon and no spaces (RFC 3261 §19.1, RFC 3966). */
function uri(name: string) {
  return (value: string): string => {
    if (!/^(sips?|tel):[^\s<>"]+$/i.test(value)) {
      throw new InvalidArgumentError(`${name} must be a SIP or tel URI (e.g. sip:alice@example.com), not "${value}"`);
    }
    return value;
  };
}

function positiveInt(name: string, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) {
      throw new InvalidArgumentError(`${name} must be a whole number from 1 to ${max}, not "${value}"`);
    }
    return Number(value);
  };
}

interface Entry {
  id: string;
  from: string;
  arrivedAt: string;
  expiresAt: number;
  contentType?: string;
  bytes: number;
}

program
  .command('deposit')
  .description('store a message for a user, as if sent while they were away')
  .requiredOption('--to <uri>', 'the recipient (a user of the served domain)', uri('--to'))
  .requiredOption('--from <uri>', 'the sender', uri('--from'))
  .requiredOption('--body <text>', 'the message text')
  .option('--content-type <type>', 'content type of the body', 'text/plain;charset=UTF-8')
  .option('--message-id <id>', 'imdn.Message-ID (a repeat with the same one is stored once)')
  .action(async (o: { to: string; from: string; body: string; contentType: string; messageId?: string }) => {
    const r = await call<{ id: string; user: string; created: boolean }>(await connection(), '/api/deposit', {
      to: o.to,
      from: o.from,
      body: o.body,
      contentType: o.contentType,
      ...(o.messageId ? { messageId: o.messageId } : {}),
    });
    out(r, () => `${r.created ? 'stored' : 'already stored'} ${r.id} for ${r.user}`);
  });

program
  .command('list')
  .description("a user's pending messages (metadata only), oldest first")
  .argument('<user>', 'the user, e.g. sip:alice@example.com', uri('<user>'))
  .option('--limit <n>', 'messages per page', positiveInt('--limit', 500), 100)
  .option('--cursor <cursor>', 'continue after a previous page (printed with it)')
  .option('--all', 'follow every page')
  .action(async (user: string, o: { limit: number; cursor?: string; all?: boolean }) => {
    const conn = await connection();
    const entries: Entry[] = [];
    let cursor = o.cursor;
    let total = 0;
    do {
      const q = new URLSearchParams({ user, limit: String(o.limit), ...(cursor ? { cursor } : {}) });
      const page = await call<{ total: number; entries: Entry[]; cursor?: string }>(conn, `/api/messages?${q}`);
      total = page.total;
      entries.push(...page.entries);
      cursor = page.cursor;
    } while (o.all && cursor);
    out({ user, total, entries, ...(cursor ? { cursor } : {}) }, () =>
      [
        `${user}: ${total} pending`,
        ...entries.map(
          (e) =>
            `  ${e.id}  ${e.arrivedAt}  from ${e.from}  ${e.bytes} B  expires ${new Date(e.expiresAt * 1000).toISOString()}`,
        ),
        ...(cursor ? [`  more: --cursor ${cursor}`] : []),
      ].join('\n'),
    );
  });

program
  .command('purge')
  .description("remove one pending message, or all of a user's (the senders who asked get an IMDN failed)")
  .argument('<user>', 'the user', uri('<user>'))
  .argument('[id]', 'the message id (from list)')
  .option('--all', 'purge every pending message of the user')
  .action(async (user: string, id: string | undefined, o: { all?: boolean }) => {
    if (id === undefined && !o.all)
      throw new CliError(2, 'purge: name a message id, or pass --all for every message of the user');
    if (id !== undefined && o.all) throw new CliError(2, 'purge: a message id and --all together; choose one');
    const r = await call<{ purged: string[] }>(
      await connection(),
      '/api/purge',
      id ? { user, id } : { user, all: true },
    );
    out(r, () => `purged ${r.purged.length} message(s) of ${user}${r.purged.length ? `: ${r.purged.join(' ')}` : ''}`);
  });

program
  .command('stats')
  .description('current state: pending messages, users, subscriptions, sessions, queues, store size')
  .action(async () => {
    const s = await call<Record<string, unknown>>(await connection(), '/api/stats');
    out(s, () =>
      Object.entries(s)
        .map(([k, v]) => `${k.padEnd(14)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
        .join('\n'),
    );
  });

program
  .command('trace')
  .description("the SIP and MSRP messages of one Call-ID, from the service's flow ring (FLOW_TRACE)")
  .argument('<call-id>', 'the Call-ID')
  .action(async (callId: string) => {
    const r = await call<{
      messages: { t: number; proto: string; dir: string; peer: string; label: string; seq?: string }[];
    }>(await connection(), `/api/flows?${new URLSearchParams({ callId })}`);
    if (r.messages.length === 0)
      throw new CliError(1, `no messages of Call-ID ${callId} in the ring (too old, or never seen)`);
    const t0 = r.messages[0]!.t;
    out(r, () =>
      r.messages
        .map(
          (m) =>
            `+${String(m.t - t0).padStart(6)} ms  ${m.dir === 'in' ? `${m.peer} -> edge` : `edge -> ${m.peer}`}  ${m.proto} ${m.label}${m.seq ? ` (${m.seq})` : ''}`,
        )
        .join('\n'),
    );
  });

program
  .command('demo')
  .description("play client A through Figure 30 against a running service's SIP port")
  .option('--host <address>', 'SIP address of the service', '127.0.0.1')
  .option('--sip-port <port>', 'SIP port of the service', positiveInt('--sip-port', 65535), 5060)
  .option('--tcp', 'SIP over TCP instead of UDP')
  .action(async (o: { host: string; sipPort: number; tcp?: boolean }) => {
    // Loaded only for this command: the SIP and MSRP client code is not needed by the others.
    const { runDemo } = await import('#functions/edge/demo-flow.ts');
    const steps = await runDemo({ transport: o.tcp ? 'tcp' : 'udp', sipPort: o.sipPort, host: o.host }, (s) => {
      if (!globals().json) process.stdout.write(`[${s.step.padEnd(8)}] ${s.what}\n`);
    }).catch((err: unknown) => {
      throw new CliError(1, `demo failed: ${err instanceof Error ? err.message : String(err)}`);
    });
    if (globals().json) out(steps, () => '');
  });

try {
  await program.parseAsync();
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version end with 0; a usage error (commander printed it) with 2.
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else if (err instanceof CliError) {
    process.stderr.write(`deferred-cpm: ${err.message}\n`);
    process.exitCode = err.exitCode;
  } else {
    process.stderr.write(`deferred-cpm: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
