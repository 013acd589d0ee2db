/**
 * The Lambda code as `cdk deploy` would upload it: bundled for real by the local esbuild (no
 * Docker), ESM, loadable by a fresh Node process, and answering without AWS where the logic
 * needs none.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { HandlerName } from '../../cdk/constructs/handler-function.ts';
import { resourcesOfType, synth } from './support.ts';

const HANDLERS: HandlerName[] = ['subscribe', 'invite', 'deposit', 'deliver', 'expire'];

/** What the functions find in their environment in AWS (names only; nothing here is called). */
const ENV = {
  MESSAGES_TABLE: 'messages',
  SUBSCRIPTIONS_TABLE: 'subscriptions',
  SESSIONS_TABLE: 'sessions',
  DELIVERY_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/delivery',
  OUTBOUND_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/outbound',
  AWS_REGION: 'eu-west-1',
  AWS_ACCESS_KEY_ID: 'unused',
  AWS_SECRET_ACCESS_KEY: 'unused',
  POWERTOOLS_TRACE_ENABLED: 'false',
  POWERTOOLS_DEV: 'false',
  SIP_DOMAIN: 'example.com',
};

/** Run `script` as an ES module in a fresh Node with the bundle directory as cwd. */
function runInBundle(dir: string, script: string): string {
  return execFileSync(process.execPath, ['--no-warnings', '--input-type=module', '-e', script], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', ...ENV },
    encoding: 'utf8',
    timeout: 20_000,
  });
}

const CONTEXT = `{ functionName: 'f', functionVersion: '1', invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:f', memoryLimitInMB: '512', awsRequestId: 'r-1', logGroupName: 'g', logStreamName: 's', getRemainingTimeInMillis: () => 5000 }`;

describe('Lambda bundles', () => {
  const bundles = {} as Record<HandlerName, string>;

  beforeAll(() => {
    const { template, assembly } = synth({ imageSource: 'ecr:edge:test' }, { bundle: true });
    for (const [id, fn] of Object.entries(resourcesOfType(template, 'AWS::Lambda::Function'))) {
      const name = HANDLERS.find((h) => id.startsWith(`Functions${h[0]!.toUpperCase()}${h.slice(1)}`));
      const key = (fn.Properties!.Code as { S3Key: string }).S3Key;
      if (name) bundles[name] = path.join(assembly.directory, `asset.${key.replace(/\.zip$/, '')}`);
    }
    // The synth bundles five handlers with esbuild: vitest's hookTimeout (240 s) covers a loaded machine.
  });

  it('bundles each handler into one ESM file under Lambda limits', () => {
    expect(Object.keys(bundles).sort()).toEqual([...HANDLERS].sort());
    for (const [name, dir] of Object.entries(bundles)) {
      const file = path.join(dir, 'index.mjs');
      expect({ name, exists: existsSync(file) }).toEqual({ name, exists: true });
      // Far under Lambda's 50 MB zipped / 250 MB unzipped; more would mean a dependency gone astray.
      expect(statSync(file).size).toBeLessThan(3 * 1024 * 1024);
      expect(readFileSync(file, 'utf8')).toMatch(/export\s*\{[^}]*\bhandler\b/);
    }
  });

  it('loads every bundle in a fresh Node process, exporting `handler`', () => {
    for (const [name, dir] of Object.entries(bundles)) {
      const out = runInBundle(dir, `const m = await import('./index.mjs'); console.log(typeof m.handler);`);
      expect({ name, handler: out.trim().split('\n').at(-1) }).toEqual({ name, handler: 'function' });
    }
  });

  it('answers a SUBSCRIBE for an unknown event package with 489 (RFC 6665 §4.2.1.1)', () => {
    const event = {
      method: 'SUBSCRIBE',
      uri: 'sip:alice@example.com',
      headers: [
        { name: 'From', value: '<sip:alice@example.com>;tag=1' },
        { name: 'To', value: '<sip:alice@example.com>' },
        { name: 'Call-ID', value: 'c1' },
        { name: 'CSeq', value: '1 SUBSCRIBE' },
        { name: 'Event', value: 'presence' },
      ],
      body: '',
      flow: { edgeId: 'http://10.0.0.1:8080', transport: 'udp', remoteAddress: '192.0.2.1', remotePort: 5060 },
      trusted: false,
      receivedAt: 0,
    };
    const out = runInBundle(
      bundles.subscribe,
      `const { handler } = await import('./index.mjs');
       const r = await handler(${JSON.stringify(event)}, ${CONTEXT});
       console.log(JSON.stringify(r.response));`,
    );
    const response = JSON.parse(out.trim().split('\n').at(-1)!) as { status: number; headers: unknown[] };
    expect(response.status).toBe(489);
    expect(response.headers).toContainEqual({ name: 'Allow-Events', value: 'deferred-messages' });
  });

  it('refuses anything but POST on the operator deposit URL', () => {
    const event = {
      version: '2.0',
      rawPath: '/',
      rawQueryString: '',
      headers: {},
      isBase64Encoded: false,
      requestContext: { http: { method: 'GET', path: '/' } },
    };
    const out = runInBundle(
      bundles.deposit,
      `const { handler } = await import('./index.mjs');
       console.log(JSON.stringify(await handler(${JSON.stringify(event)}, ${CONTEXT})));`,
    );
    const result = JSON.parse(out.trim().split('\n').at(-1)!) as {
      statusCode: number;
      headers: Record<string, string>;
    };
    expect(result.statusCode).toBe(405);
    expect(result.headers.allow).toBe('POST');
  });
});
