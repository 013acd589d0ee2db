/**
 * One NodejsFunction subclass holding every handler's defaults: Node.js 22 on ARM64 (cheaper per
 * GB-second than x86), bundled by the local esbuild as ESM (no Docker), Powertools configured
 * by environment, X-Ray active, its own log group and its own role. The role starts with no
 * managed policy: each function is granted exactly what it uses (see ./grants.ts).
 */
import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Validations } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { NAMESPACE, SERVICE_NAME } from '#shared/observability/metrics.ts';

/** The repository root: esbuild's working directory and where `functions/` lives. */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export type HandlerName = 'subscribe' | 'invite' | 'deposit' | 'deliver' | 'expire';

/**
 * ESM output still meets CommonJS dependencies that call `require` for Node built-ins; give
 * them a real one (esbuild's shim would throw "Dynamic require is not supported").
 */
const REQUIRE_SHIM =
  "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);";

export interface HandlerFunctionProps {
  name: HandlerName;
  timeout: Duration;
  memorySize?: number;
  environment?: Record<string, string>;
  logRetentionDays: number;
  /** X-Ray: Lambda's sampling (ACTIVE), upstream's decision (PASS_THROUGH), or none. */
  tracing: lambda.Tracing;
  /** Runs in these subnets with this security group (to reach the edge's control API). */
  vpc?: { vpc: ec2.IVpc; subnets: ec2.SubnetSelection; securityGroup: ec2.ISecurityGroup };
}

export class HandlerFunction extends NodejsFunction {
  readonly handlerName: HandlerName;

  constructor(scope: Construct, id: string, props: HandlerFunctionProps) {
    const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
      retention: props.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(scope, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `deferred-cpm ${props.name} handler`,
    });
    super(scope, id, {
      entry: `${PROJECT_ROOT}functions/${props.name}/handler.ts`,
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: `${PROJECT_ROOT}package-lock.json`,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout,
      tracing: props.tracing,
      logGroup,
      role,
      environment: {
        POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: NAMESPACE,
        POWERTOOLS_LOG_LEVEL: 'INFO',
        ...props.environment,
      },
      ...(props.vpc
        ? { vpc: props.vpc.vpc, vpcSubnets: props.vpc.subnets, securityGroups: [props.vpc.securityGroup] }
        : {}),
      bundling: {
        format: OutputFormat.ESM,
        target: 'node22',
        mainFields: ['module', 'main'],
        minify: true,
        sourceMap: false,
        // Bundle the pinned AWS SDK instead of the runtime's: the versions tested are the ones run.
        externalModules: [],
        banner: REQUIRE_SHIM,
        forceDockerBundling: false,
      },
    });
    this.handlerName = props.name;

    logGroup.grantWrite(role);
    if (props.vpc) {
      // Lambda creates and removes the function's network interfaces with the function's role.
      role.addToPolicy(
        new iam.PolicyStatement({
          actions: [
            'ec2:CreateNetworkInterface',
            'ec2:DescribeNetworkInterfaces',
            'ec2:DescribeSubnets',
            'ec2:DeleteNetworkInterface',
            'ec2:AssignPrivateIpAddresses',
            'ec2:UnassignPrivateIpAddresses',
          ],
          resources: ['*'],
        }),
      );
    }
    Validations.of(this).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'Node.js 22 is pinned on purpose: the LTS line the edge image also runs, supported by Lambda into 2027. Moving on is this one runtime line.',
    });
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'X-Ray PutTraceSegments/PutTelemetryRecords and the EC2 network-interface actions Lambda needs in a VPC ' +
        'have no resource-level permissions; every data-plane grant names its table, index or queue.',
    });
  }
}
