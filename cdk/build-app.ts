/**
 * Builds the stack into an app with the cdk-nag checks attached; shared by the CDK entry
 * (./app.ts) and the tests, so both synthesize the same thing.
 */
import { Validations, type App } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readDeployConfig, type DeployConfig } from './config.ts';
import { DeferredCpmStack } from './stack.ts';

export const STACK_NAME = 'DeferredCpm';

export function buildApp(app: App): { app: App; stack: DeferredCpmStack; config: DeployConfig } {
  const config = readDeployConfig((key) => app.node.tryGetContext(key));
  const stack = new DeferredCpmStack(app, STACK_NAME, {
    config,
    description: 'OMA CPM deferred messages: SIP edge on Fargate, Lambda handlers, DynamoDB, SQS',
    // Region and account from the CLI's environment at deploy; none needed to synthesize.
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { app, stack, config };
}
