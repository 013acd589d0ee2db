/**
 * The CDK app: `npm run synth` (or `npx cdk synth --app 'npx tsx cdk/app.ts'`), `cdk deploy`
 * with the same --app. Settings come from context (see ./config.ts); cdk-nag's AwsSolutions
 * checks run at every synth and stop it on any finding not fixed or acknowledged.
 */
import { App } from 'aws-cdk-lib';
import { buildApp } from './build-app.ts';
import { DeployConfigError } from './config.ts';

try {
  const { app } = buildApp(new App());
  app.synth();
} catch (err) {
  if (err instanceof DeployConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  throw err;
}
