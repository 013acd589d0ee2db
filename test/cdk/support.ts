/**
 * Synthesizes the app the way `cdk synth` does (cdk-nag attached), with Lambda bundling skipped
 * unless asked for: `aws:cdk:bundling-stacks: []` is the CDK's own switch for that.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../cdk/build-app.ts';

/** The feature flags cdk.json pins, so the tests synthesize what `cdk deploy` does. */
export const PINNED_CONTEXT = (
  JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as { context: Record<string, unknown> }
).context;

/** The one context value without a default (the SIP/IP Core's ranges); TEST-NET-2 here. */
export const REQUIRED_CONTEXT = { trustedPeers: '198.51.100.0/24' };

export function synth(context: Record<string, unknown> = {}, options: { bundle?: boolean } = {}) {
  const outdir = mkdtempSync(path.join(tmpdir(), 'cdk-test-'));
  const app = new App({
    outdir,
    context: {
      ...PINNED_CONTEXT,
      ...REQUIRED_CONTEXT,
      ...(options.bundle ? {} : { 'aws:cdk:bundling-stacks': [] }),
      ...context,
    },
  });
  const built = buildApp(app);
  // Runs the cdk-nag plugin: throws on any finding not fixed or acknowledged.
  const assembly = app.synth();
  const template = Template.fromJSON(assembly.getStackByName(built.stack.stackName).template);
  return { ...built, assembly, template, outdir };
}

type Resources = Record<string, { Type: string; Properties?: Record<string, unknown> } & Record<string, unknown>>;

export function resourcesOfType(template: Template, type: string): Resources {
  return template.findResources(type) as Resources;
}

/** The logical id of the only resource of a type whose id starts with `prefix`. */
export function logicalId(template: Template, type: string, prefix: string): string {
  const ids = Object.keys(resourcesOfType(template, type)).filter((id) => id.startsWith(prefix));
  if (ids.length !== 1) throw new Error(`expected one ${type} named ${prefix}*, found ${ids.join(', ') || 'none'}`);
  return ids[0]!;
}
