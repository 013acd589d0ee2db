/**
 * SIPp (Debian sip-tester) scenarios through Kamailio to the service, over UDP and TCP: a
 * subscription with its NOTIFYs and an unsubscribe sent along the route set, and a deposit by
 * MESSAGE. SIPp exits 0 only when every step of its scenario matched.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { depositHttp, pendingOf, startTestEdge, type TestEdge } from '../e2e/support.ts';
import { freePort } from '../support/free-port.ts';
import { Kamailio } from './kamailio.ts';

const scenario = (name: string) => fileURLToPath(new URL(`./sipp/${name}.xml`, import.meta.url));

/** One call of a scenario; resolves with SIPp's exit code and what it printed. */
async function sipp(
  name: string,
  user: string,
  transport: 'udp' | 'tcp',
  proxyPort: number,
): Promise<{ code: number | null; output: string }> {
  const args = [
    `127.0.0.1:${proxyPort}`,
    '-sf',
    scenario(name),
    '-s',
    user,
    '-t',
    transport === 'udp' ? 'u1' : 't1',
    '-i',
    '127.0.0.1',
    '-p',
    String(await freePort()),
    '-m',
    '1',
    '-nostdin',
    '-recv_timeout',
    '20000',
    '-timeout',
    '40s',
    '-timeout_error',
  ];
  const child = spawn('/usr/bin/sipp', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output = (output + b.toString()).slice(-16_000)));
  child.stderr.on('data', (b: Buffer) => (output = (output + b.toString()).slice(-16_000)));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  return { code, output };
}

describe('SIPp through Kamailio', () => {
  let edge: TestEdge;
  let proxy: Kamailio;

  beforeAll(async () => {
    edge = await startTestEdge();
    proxy = await Kamailio.start({ service: { udp: edge.ports.udp!, tcp: edge.ports.tcp! } });
  }, 60_000);
  afterAll(async () => {
    await proxy?.stop();
    await edge?.close();
  });

  for (const transport of ['udp', 'tcp'] as const) {
    it(`${transport}: SUBSCRIBE, NOTIFY with the list, unsubscribe along the route set`, async () => {
      const user = `sipp-sub-${transport}`;
      await depositHttp(edge.adminUrl, { to: `sip:${user}@example.com`, from: 'sip:bob@example.net', body: 'hi' });
      const run = await sipp('subscribe', user, transport, proxy.ports.main);
      expect(run.code, run.output).toBe(0);
    }, 60_000);

    it(`${transport}: MESSAGE is deposited (202 with a To tag)`, async () => {
      const user = `sipp-msg-${transport}`;
      const run = await sipp('message', user, transport, proxy.ports.main);
      expect(run.code, run.output).toBe(0);
      expect((await pendingOf(edge.adminUrl, `sip:${user}@example.com`)).total).toBe(1);
    }, 60_000);
  }
});
