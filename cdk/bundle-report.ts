/**
 * Bundle sizes and cold import times of the Lambda handlers, bundled exactly as `cdk deploy`
 * bundles them (the CDK app's own NodejsFunction settings). The import time of the bundle in a
 * fresh Node process is a local proxy for the function's cold-start init.
 *
 *   npx tsx cdk/bundle-report.ts [runs]     (default 5 runs per handler; the median is shown)
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { App } from 'aws-cdk-lib';
import { buildApp } from './build-app.ts';

const runs = Number(process.argv[2] ?? 5);
const outdir = mkdtempSync(path.join(tmpdir(), 'bundle-report-'));
const started = performance.now();
const app = new App({ outdir, context: { imageSource: 'ecr:edge:report' } });
const { stack } = buildApp(app);
const assembly = app.synth();
const synthMs = performance.now() - started;

const env = {
  PATH: process.env.PATH ?? '',
  MESSAGES_TABLE: 'messages',
  SUBSCRIPTIONS_TABLE: 'subscriptions',
  SESSIONS_TABLE: 'sessions',
  DELIVERY_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/delivery',
  AWS_REGION: 'eu-west-1',
};
const template = assembly.getStackByName(stack.stackName).template as {
  Resources: Record<string, { Type: string; Properties: { Code?: { S3Key?: string } } }>;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.log(`node ${process.version}, synth with bundling ${(synthMs / 1000).toFixed(1)} s, ${runs} runs per handler`);
console.log('handler     bundle KiB  gzip KiB  import ms (median, min-max)');
for (const [id, resource] of Object.entries(template.Resources)) {
  if (resource.Type !== 'AWS::Lambda::Function' || !id.startsWith('Functions')) continue;
  const dir = path.join(assembly.directory, `asset.${resource.Properties.Code!.S3Key!.replace(/\.zip$/, '')}`);
  const file = path.join(dir, 'index.mjs');
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const out = execFileSync(
      process.execPath,
      [
        '--no-warnings',
        '--input-type=module',
        '-e',
        "const t = performance.now(); await import('./index.mjs'); console.log(performance.now() - t);",
      ],
      { cwd: dir, env, encoding: 'utf8' },
    );
    times.push(Number(out.trim().split('\n').at(-1)));
  }
  const name = id
    .slice('Functions'.length)
    .replace(/[0-9A-F]{8}$/, '')
    .toLowerCase();
  console.log(
    `${name.padEnd(11)} ${(statSync(file).size / 1024).toFixed(0).padStart(10)}  ${(
      gzipSync(readFileSync(file)).length / 1024
    )
      .toFixed(0)
      .padStart(
        8,
      )}  ${median(times).toFixed(0).padStart(9)} (${Math.min(...times).toFixed(0)}-${Math.max(...times).toFixed(0)})`,
  );
}
