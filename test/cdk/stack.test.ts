/**
 * The synthesized template (as `npm run synth` makes it, cdk-nag included): each construct's
 * key properties, least privilege, and the dashboard against the metrics the code emits.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { App, Stack, Validations, type CfnElement } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { TABLE_SPECS } from '#shared/adapters/dynamodb/tables.ts';
import { OUTBOUND_QUEUE } from '#shared/adapters/sqs/queues.ts';
import { createMetrics } from '#shared/observability/powertools.ts';
import { MetricBatch, emitMetric } from '#shared/observability/recorder.ts';
import { METRICS, NAMESPACE, allSeries, seriesKey, type MetricNameValue } from '#shared/observability/metrics.ts';
import { HANDLER_ACCESS } from '../../cdk/constructs/grants.ts';
import { CONTAINER_PORTS, FUNCTION_NAME_ENV, HEALTH_CHECK_PATH } from '../../cdk/constructs/edge.ts';
import { DELIVER_TIMEOUT } from '../../cdk/constructs/functions.ts';
import { VISIBILITY_FACTOR } from '../../cdk/constructs/queues.ts';
import type { HandlerName } from '../../cdk/constructs/handler-function.ts';
import { logicalId, resourcesOfType, synth } from './support.ts';

const HANDLERS: HandlerName[] = ['subscribe', 'invite', 'deposit', 'deliver', 'expire'];
const CERT = 'arn:aws:acm:eu-west-1:123456789012:certificate/0f0e0d0c-1111-2222-3333-444455556666';

type Statement = { Effect: string; Action: string | string[]; Resource: unknown };
const list = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

/** The statements of every policy attached to a role (by the role's logical id). */
function statementsOfRole(template: Template, roleId: string): Statement[] {
  return Object.values(resourcesOfType(template, 'AWS::IAM::Policy'))
    .filter((p) => JSON.stringify(p.Properties!.Roles).includes(`"${roleId}"`))
    .flatMap((p) => (p.Properties!.PolicyDocument as { Statement: Statement[] }).Statement);
}

/** A resource as text, with CloudFormation references shown as `<logicalId>`. */
function resourceText(resource: unknown): string {
  if (typeof resource === 'string') return resource;
  const r = resource as Record<string, unknown>;
  if (r['Fn::GetAtt']) {
    const [id, attribute] = r['Fn::GetAtt'] as [string, string];
    return attribute === 'Arn' ? `<${id}>` : `<${id}>.${attribute}`;
  }
  if (r['Ref']) return `<${String(r['Ref'])}>`;
  if (r['Fn::Join']) return ((r['Fn::Join'] as [string, unknown[]])[1] ?? []).map(resourceText).join('');
  return JSON.stringify(resource);
}

/** Metric series named by the dashboard in a namespace, as `name{dim=value,...}` keys. */
function dashboardSeries(template: Template, namespace: string): Set<string> {
  const [dashboard] = Object.values(resourcesOfType(template, 'AWS::CloudWatch::Dashboard'));
  const parts = (dashboard!.Properties!.DashboardBody as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1];
  const body = JSON.parse(parts.map((p) => (typeof p === 'string' ? p : 'TOKEN')).join('')) as {
    widgets: { properties: { metrics?: unknown[][] } }[];
  };
  const out = new Set<string>();
  for (const widget of body.widgets) {
    for (const entry of widget.properties.metrics ?? []) {
      if (entry[0] !== namespace) continue;
      const fields = entry.filter((x): x is string => typeof x === 'string');
      const dimensions: Record<string, string> = {};
      for (let i = 2; i + 1 < fields.length; i += 2) dimensions[fields[i]!] = fields[i + 1]!;
      out.add(seriesKey({ name: fields[1] as MetricNameValue, dimensions }));
    }
  }
  return out;
}

/** Run `fn` and collect the EMF records Powertools writes to stdout meanwhile. */
function captureEmf(fn: () => void): { name: string; dimensions: Record<string, string> }[] {
  const lines: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    lines.push(
      ...String(chunk)
        .split('\n')
        .filter((l) => l.trim().startsWith('{')),
    );
    return true;
  }) as typeof process.stdout.write;
  try {
    fn();
  } finally {
    process.stdout.write = write;
  }
  return lines.flatMap((line) => {
    const record = JSON.parse(line) as Record<string, unknown> & {
      _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] };
    };
    return record._aws.CloudWatchMetrics.flatMap((d) =>
      d.Metrics.flatMap((m) =>
        d.Dimensions.map((set) => ({
          name: m.Name,
          dimensions: Object.fromEntries(set.map((k) => [k, String(record[k])])),
        })),
      ),
    );
  });
}

/** The default deployment, synthesized once for the whole file (a cold synth takes seconds). */
let base: ReturnType<typeof synth>;
/** Everything optional given: certificate, ECR image, alarm e-mail, outbound proxy. */
let variant: ReturnType<typeof synth>;
const PROXY = 'sip:10.20.0.5:5060;transport=tcp';

beforeAll(() => {
  base = synth();
  variant = synth({
    certificateArn: CERT,
    imageSource: 'ecr:deferred-cpm/edge:1.4.0',
    alarmEmail: 'noc@example.net',
    outboundProxy: PROXY,
  });
});

/** The logical id CloudFormation gives a construct's resource. */
const idOf = (built: ReturnType<typeof synth>, construct: { node: { defaultChild?: unknown } }) =>
  built.stack.getLogicalId(construct.node.defaultChild as CfnElement);

function assetManifest(assembly: ReturnType<typeof synth>['assembly']) {
  return JSON.parse(readFileSync(path.join(assembly.directory, 'DeferredCpm.assets.json'), 'utf8')) as {
    dockerImages: Record<string, { source: { directory: string; dockerFile: string; platform: string } }>;
  };
}

describe('the default deployment', () => {
  let template: Template;
  let functionIds: Record<HandlerName, string>;

  beforeAll(() => {
    template = base.template;
    functionIds = Object.fromEntries(
      HANDLERS.map((h) => [
        h,
        logicalId(template, 'AWS::Lambda::Function', `Functions${h[0]!.toUpperCase()}${h.slice(1)}`),
      ]),
    ) as Record<HandlerName, string>;
  });

  it('keeps three on-demand tables with TTL on expiresAt, point-in-time recovery, retained on delete', () => {
    const tables = Object.values(resourcesOfType(template, 'AWS::DynamoDB::Table'));
    expect(tables).toHaveLength(3);
    for (const table of tables) {
      expect(table.DeletionPolicy).toBe('Retain');
      expect(table.UpdateReplacePolicy).toBe('Retain');
      expect(table.Properties).toMatchObject({
        BillingMode: 'PAY_PER_REQUEST',
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      });
    }
    // Keys and indexes are the adapters' table specs, the same the local default creates.
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [
        { AttributeName: TABLE_SPECS.messages.partitionKey.name, KeyType: 'HASH' },
        { AttributeName: TABLE_SPECS.messages.sortKey!.name, KeyType: 'RANGE' },
      ],
      // No expiry index: messages expire by TTL only.
      GlobalSecondaryIndexes: Match.absent(),
      LocalSecondaryIndexes: [Match.objectLike({ IndexName: TABLE_SPECS.messages.localIndexes[0]!.indexName })],
      StreamSpecification: { StreamViewType: 'OLD_IMAGE' },
    });
  });

  it('queues deliveries and IMDN reports, each with a DLQ, SSL only, encrypted', () => {
    const queues = resourcesOfType(template, 'AWS::SQS::Queue');
    // delivery, outbound, their DLQs, and the TTL stream mapping's failure queue
    expect(Object.keys(queues)).toHaveLength(5);
    const delivery = queues[logicalId(template, 'AWS::SQS::Queue', 'FunctionsQueuesDelivery')]!;
    expect(delivery.Properties).toMatchObject({
      SqsManagedSseEnabled: true,
      VisibilityTimeout: DELIVER_TIMEOUT.toSeconds() * VISIBILITY_FACTOR,
      RedrivePolicy: { maxReceiveCount: 5 },
    });
    const { outbound, outboundDeadLetter } = base.stack.functions.queues;
    expect(queues[idOf(base, outbound)]!.Properties).toMatchObject({
      VisibilityTimeout: OUTBOUND_QUEUE.visibilityTimeoutSeconds,
      MessageRetentionPeriod: delivery.Properties!.MessageRetentionPeriod,
      RedrivePolicy: {
        deadLetterTargetArn: { 'Fn::GetAtt': [idOf(base, outboundDeadLetter), 'Arn'] },
        maxReceiveCount: OUTBOUND_QUEUE.maxReceiveCount,
      },
    });
    expect(queues[idOf(base, outboundDeadLetter)]!.Properties!.MessageRetentionPeriod).toBe(14 * 86_400);
    expect(Object.values(queues).every((q) => q.Properties!.SqsManagedSseEnabled === true)).toBe(true);
    const deliver = resourcesOfType(template, 'AWS::Lambda::Function')[functionIds.deliver]!;
    expect(delivery.Properties!.VisibilityTimeout).toBeGreaterThanOrEqual(
      (deliver.Properties!.Timeout as number) * VISIBILITY_FACTOR,
    );
    const policies = Object.values(resourcesOfType(template, 'AWS::SQS::QueuePolicy'));
    expect(policies).toHaveLength(5);
    for (const policy of policies) {
      expect(policy.Properties!.PolicyDocument).toMatchObject({
        Statement: [
          {
            Effect: 'Deny',
            Action: 'sqs:*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          },
        ],
      });
    }
  });

  it('runs every handler on Node.js 22, ARM64, traced as sampled, with the tables and queue in its environment', () => {
    for (const [h, id] of Object.entries(functionIds)) {
      const fn = resourcesOfType(template, 'AWS::Lambda::Function')[id]!;
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        // Traced when the edge (or SQS after it) says sampled; expire starts its own, once a minute.
        TracingConfig: { Mode: h === 'expire' ? 'Active' : 'PassThrough' },
        Environment: {
          Variables: {
            MESSAGES_TABLE: { Ref: logicalId(template, 'AWS::DynamoDB::Table', 'StorageMessages') },
            SUBSCRIPTIONS_TABLE: { Ref: logicalId(template, 'AWS::DynamoDB::Table', 'StorageSubscriptions') },
            SESSIONS_TABLE: { Ref: logicalId(template, 'AWS::DynamoDB::Table', 'StorageSessions') },
            DELIVERY_QUEUE_URL: { Ref: logicalId(template, 'AWS::SQS::Queue', 'FunctionsQueuesDelivery') },
            OUTBOUND_QUEUE_URL: { Ref: idOf(base, base.stack.functions.queues.outbound) },
            POWERTOOLS_SERVICE_NAME: 'deferred-cpm',
            POWERTOOLS_METRICS_NAMESPACE: NAMESPACE,
          },
        },
      });
    }
  });

  it('gives the edge and every handler CONTROL_TOKEN from one generated secret, never in the template', () => {
    const secretId = logicalId(template, 'AWS::SecretsManager::Secret', 'ControlToken');
    for (const id of Object.values(functionIds)) {
      const fn = resourcesOfType(template, 'AWS::Lambda::Function')[id] as unknown as {
        Properties: { Environment: { Variables: Record<string, unknown> } };
      };
      const token = JSON.stringify(fn.Properties.Environment.Variables.CONTROL_TOKEN);
      expect(token).toContain('{{resolve:secretsmanager:');
      expect(token).toContain(secretId);
    }
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: Match.arrayWith([
        Match.objectLike({ Secrets: [{ Name: 'CONTROL_TOKEN', ValueFrom: { Ref: secretId } }] }),
      ]),
    });
  });

  it('puts exactly the handlers that call the edge into the VPC', () => {
    const fns = resourcesOfType(template, 'AWS::Lambda::Function');
    for (const h of HANDLERS) {
      const inVpc = fns[functionIds[h]]!.Properties!.VpcConfig !== undefined;
      expect({ h, inVpc }).toEqual({ h, inVpc: h !== 'subscribe' });
    }
  });

  it('feeds deliver from the queue with per-record failures, expire from TTL removals and a schedule', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: functionIds.deliver },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    const stream = Object.values(resourcesOfType(template, 'AWS::Lambda::EventSourceMapping')).find(
      (m) => (m.Properties!.FunctionName as { Ref: string }).Ref === functionIds.expire,
    )!;
    const pattern = JSON.parse(
      (stream.Properties!.FilterCriteria as { Filters: { Pattern: string }[] }).Filters[0]!.Pattern,
    ) as unknown;
    expect(pattern).toEqual({
      eventName: ['REMOVE'],
      dynamodb: { OldImage: { arrival: { S: [{ exists: true }] } } },
    });
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [functionIds.expire, 'Arn'] } })],
    });
  });

  it('offers deposit over a Function URL that needs IAM-signed requests', () => {
    template.hasResourceProperties('AWS::Lambda::Url', {
      AuthType: 'AWS_IAM',
      TargetFunctionArn: { 'Fn::GetAtt': [functionIds.deposit, 'Arn'] },
    });
  });

  it('runs the edge on Fargate ARM64 with UDP and TCP SIP on distinct container ports', () => {
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' },
      ContainerDefinitions: [
        Match.objectLike({
          PortMappings: [
            { ContainerPort: CONTAINER_PORTS.sipUdp, Protocol: 'udp' },
            { ContainerPort: CONTAINER_PORTS.sipTcp, Protocol: 'tcp' },
            { ContainerPort: CONTAINER_PORTS.msrp, Protocol: 'tcp' },
            { ContainerPort: CONTAINER_PORTS.admin, Protocol: 'tcp' },
          ],
          Environment: Match.arrayWith([
            { Name: 'HANDLER_MODE', Value: 'lambda' },
            { Name: FUNCTION_NAME_ENV.subscribe, Value: { Ref: functionIds.subscribe } },
            { Name: FUNCTION_NAME_ENV.invite, Value: { Ref: functionIds.invite } },
            { Name: FUNCTION_NAME_ENV.deposit, Value: { Ref: functionIds.deposit } },
          ]),
        }),
      ],
    });
  });

  it('listens on UDP 5060, TCP 5062 and MSRP 2855, with no TLS listener without a certificate', () => {
    const listeners = Object.values(resourcesOfType(template, 'AWS::ElasticLoadBalancingV2::Listener')).map(
      (l) => `${l.Properties!.Protocol as string}/${l.Properties!.Port as number}`,
    );
    expect(listeners.sort()).toEqual(['TCP/2855', 'TCP/5062', 'UDP/5060']);
  });

  it('health-checks every target group over HTTP on the control port, keeping client addresses', () => {
    const groups = Object.values(resourcesOfType(template, 'AWS::ElasticLoadBalancingV2::TargetGroup'));
    expect(groups.map((g) => `${g.Properties!.Protocol as string}/${g.Properties!.Port as number}`).sort()).toEqual([
      `TCP/${CONTAINER_PORTS.msrp}`,
      `TCP/${CONTAINER_PORTS.sipTcp}`,
      `UDP/${CONTAINER_PORTS.sipUdp}`,
    ]);
    for (const group of groups) {
      expect(group.Properties).toMatchObject({
        TargetType: 'ip',
        HealthCheckProtocol: 'HTTP',
        HealthCheckPort: String(CONTAINER_PORTS.admin),
        HealthCheckPath: HEALTH_CHECK_PATH,
      });
      if (group.Properties!.Protocol === 'TCP') {
        expect(group.Properties!.TargetGroupAttributes).toContainEqual({
          Key: 'preserve_client_ip.enabled',
          Value: 'true',
        });
      }
    }
  });

  it('scales the edge service on CPU', () => {
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      PolicyType: 'TargetTrackingScaling',
      TargetTrackingScalingPolicyConfiguration: Match.objectLike({
        PredefinedMetricSpecification: { PredefinedMetricType: 'ECSServiceAverageCPUUtilization' },
      }),
    });
  });

  it("opens the control API only to the NLB's group, the calling handlers and other edge tasks", () => {
    const groups = resourcesOfType(template, 'AWS::EC2::SecurityGroup');
    const edgeSg = logicalId(template, 'AWS::EC2::SecurityGroup', 'EdgeTaskSg');
    const clientsSg = logicalId(template, 'AWS::EC2::SecurityGroup', 'NetworkEdgeClients');
    const inline = (groups[edgeSg]!.Properties!.SecurityGroupIngress as { CidrIp?: string; FromPort: number }[]) ?? [];
    const adminFromAnywhere = inline.filter((r) => r.FromPort === CONTAINER_PORTS.admin && r.CidrIp === '0.0.0.0/0');
    expect(adminFromAnywhere).toEqual([]);
    const separate = Object.values(resourcesOfType(template, 'AWS::EC2::SecurityGroupIngress')).map(
      (r) => r.Properties!,
    );
    expect(separate).toContainEqual(
      expect.objectContaining({
        FromPort: CONTAINER_PORTS.admin,
        SourceSecurityGroupId: { 'Fn::GetAtt': [clientsSg, 'GroupId'] },
      }),
    );
    // The handlers' group may leave only for the control API and HTTPS (DynamoDB endpoint).
    const egress = [
      ...((groups[clientsSg]!.Properties!.SecurityGroupEgress as { FromPort: number }[]) ?? []),
      ...Object.values(resourcesOfType(template, 'AWS::EC2::SecurityGroupEgress'))
        .map((r) => r.Properties! as { FromPort: number; GroupId: unknown })
        .filter((r) => JSON.stringify(r.GroupId).includes(`"${clientsSg}"`)),
    ];
    // HTTPS to the DynamoDB gateway and to the SQS endpoint's group; the control API.
    expect(egress.map((r) => r.FromPort).sort()).toEqual([443, 443, CONTAINER_PORTS.admin]);
  });

  it('lets an edge task hand MSRP connections to another task in the VPC, over MSRP from the edge group', () => {
    const vpcId = logicalId(template, 'AWS::EC2::VPC', 'NetworkVpc');
    const edgeSg = logicalId(template, 'AWS::EC2::SecurityGroup', 'EdgeTaskSg');
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [
        Match.objectLike({
          Environment: Match.arrayWith([
            { Name: 'MSRP_PORT', Value: String(CONTAINER_PORTS.msrp) },
            { Name: 'MSRP_RELAY_ALLOW', Value: { 'Fn::GetAtt': [vpcId, 'CidrBlock'] } },
          ]),
        }),
      ],
    });
    const separate = Object.values(resourcesOfType(template, 'AWS::EC2::SecurityGroupIngress')).map(
      (r) => r.Properties!,
    );
    expect(separate).toContainEqual(
      expect.objectContaining({
        IpProtocol: 'tcp',
        FromPort: CONTAINER_PORTS.msrp,
        ToPort: CONTAINER_PORTS.msrp,
        GroupId: { 'Fn::GetAtt': [edgeSg, 'GroupId'] },
        SourceSecurityGroupId: { 'Fn::GetAtt': [edgeSg, 'GroupId'] },
      }),
    );
  });

  describe('least privilege', () => {
    it('grants no wildcard action anywhere, and `*` resources only to actions that take no other', () => {
      const resourceless = new Set([
        'xray:PutTraceSegments',
        'xray:PutTelemetryRecords',
        'ec2:CreateNetworkInterface',
        'ec2:DescribeNetworkInterfaces',
        'ec2:DescribeSubnets',
        'ec2:DeleteNetworkInterface',
        'ec2:AssignPrivateIpAddresses',
        'ec2:UnassignPrivateIpAddresses',
        'ecr:GetAuthorizationToken',
        'dynamodb:ListStreams',
      ]);
      for (const policy of Object.values(resourcesOfType(template, 'AWS::IAM::Policy'))) {
        for (const s of (policy.Properties!.PolicyDocument as { Statement: Statement[] }).Statement) {
          for (const action of list(s.Action)) expect(action).not.toMatch(/\*/);
          if (list(s.Resource).includes('*')) {
            for (const action of list(s.Action)) expect(resourceless).toContain(action);
          }
        }
      }
    });

    it('gives each handler exactly the DynamoDB actions its ports use, per table', () => {
      const tableIds = {
        messages: logicalId(template, 'AWS::DynamoDB::Table', 'StorageMessages'),
        subscriptions: logicalId(template, 'AWS::DynamoDB::Table', 'StorageSubscriptions'),
        sessions: logicalId(template, 'AWS::DynamoDB::Table', 'StorageSessions'),
      };
      for (const h of HANDLERS) {
        const fn = resourcesOfType(template, 'AWS::Lambda::Function')[functionIds[h]]!;
        const roleId = (fn.Properties!.Role as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0]!;
        const granted: Record<string, Set<string>> = {};
        for (const s of statementsOfRole(template, roleId)) {
          for (const resource of list(s.Resource)) {
            const text = resourceText(resource);
            for (const [role, id] of Object.entries(tableIds)) {
              if (!text.startsWith(`<${id}>`)) continue;
              const where = text === `<${id}>` ? role : `${role}${text.slice(id.length + 2)}`;
              for (const action of list(s.Action)) {
                if (action === 'dynamodb:DescribeTable') continue;
                (granted[where] ??= new Set()).add(action);
              }
            }
          }
        }
        const expected: Record<string, Set<string>> = {};
        for (const [role, access] of Object.entries(HANDLER_ACCESS[h].tables)) {
          expected[role] = new Set(access.actions);
          for (const index of access.indexes ?? []) expected[`${role}/index/${index}`] = new Set(['dynamodb:Query']);
        }
        if (h === 'expire') {
          // The TTL stream, read by the event source mapping.
          expected['messages.StreamArn'] = new Set([
            'dynamodb:DescribeStream',
            'dynamodb:GetRecords',
            'dynamodb:GetShardIterator',
          ]);
        }
        expect({ h, granted }).toEqual({ h, granted: expected });
      }
    });

    it('lets invite send deliveries, invite and expire send IMDN reports, and only deliver consume deliveries', () => {
      const delivery = `<${logicalId(template, 'AWS::SQS::Queue', 'FunctionsQueuesDelivery')}>`;
      const outbound = `<${idOf(base, base.stack.functions.queues.outbound)}>`;
      for (const h of HANDLERS) {
        const fn = resourcesOfType(template, 'AWS::Lambda::Function')[functionIds[h]]!;
        const roleId = (fn.Properties!.Role as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0]!;
        const sqs: Record<string, string[]> = {};
        for (const s of statementsOfRole(template, roleId)) {
          const actions = list(s.Action).filter((a) => a.startsWith('sqs:'));
          if (actions.length > 0) for (const r of list(s.Resource)) (sqs[resourceText(r)] ??= []).push(...actions);
        }
        const sends = ['sqs:SendMessage'];
        if (h === 'deliver') {
          expect(Object.keys(sqs)).toEqual([delivery]);
          expect(sqs[delivery]).toContain('sqs:DeleteMessage');
        } else {
          const streamFailures = `<${idOf(base, base.stack.functions.streamFailures)}>`;
          const expected = {
            ...(h === 'invite' ? { [delivery]: sends } : {}),
            ...(h === 'invite' || h === 'expire' ? { [outbound]: sends } : {}),
            // The TTL stream mapping's on-failure destination, written by the mapping with expire's role.
            ...(h === 'expire'
              ? { [streamFailures]: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'] }
              : {}),
          };
          for (const actions of Object.values(sqs)) actions.sort();
          for (const actions of Object.values(expected)) actions.sort();
          expect({ h, sqs }).toEqual({ h, sqs: expected });
        }
      }
    });

    it('lets the edge invoke exactly subscribe, invite and deposit, unqualified, and consume exactly the outbound queue', () => {
      const task = Object.values(resourcesOfType(template, 'AWS::ECS::TaskDefinition'))[0]!;
      const taskRole = (task.Properties!.TaskRoleArn as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0]!;
      const outbound = idOf(base, base.stack.functions.queues.outbound);
      const statements = statementsOfRole(template, taskRole);
      const invoked = statements.find((s) => s.Action === 'lambda:InvokeFunction')!.Resource as unknown[];
      expect(new Set(invoked.map(resourceText))).toEqual(
        new Set([functionIds.subscribe, functionIds.invite, functionIds.deposit].map((id) => `<${id}>`)),
      );
      expect(statements).toHaveLength(3);
      // The delivery reports of the MSRP SENDs it runs: sent to the delivery queue, nothing else there.
      const delivery = logicalId(template, 'AWS::SQS::Queue', 'FunctionsQueuesDelivery');
      const reports = statements.find((s) => s.Action === 'sqs:SendMessage')!;
      expect(reports.Resource).toEqual({ 'Fn::GetAtt': [delivery, 'Arn'] });
      const consume = statements.find((s) => s.Action !== 'lambda:InvokeFunction' && s !== reports)!;
      expect(new Set(list(consume.Action))).toEqual(
        new Set(['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes']),
      );
      expect(consume.Resource).toEqual({ 'Fn::GetAtt': [outbound, 'Arn'] });
      const environment = (task.Properties!.ContainerDefinitions as { Environment: { Name: string }[] }[])[0]!
        .Environment;
      expect(environment).toContainEqual({ Name: 'OUTBOUND_QUEUE_URL', Value: { Ref: outbound } });
      expect(environment).toContainEqual({ Name: 'DELIVERY_QUEUE_URL', Value: { Ref: delivery } });
      expect(environment.map((e) => e.Name)).not.toContain('OUTBOUND_PROXY');
    });
  });

  describe('the dashboard and the emitted metrics', () => {
    it('shows exactly the series the code emits, no more, no fewer', () => {
      // One side: run every emitter the edge and the handlers use, read the EMF they print.
      const metrics = createMetrics();
      const emitted = captureEmf(() => {
        const batch = new MetricBatch(metrics);
        for (const spec of allSeries()) {
          const { service: _service, ...dims } = spec.dimensions;
          if (spec.name === 'SipRequests') batch.sipRequest(dims.Method!);
          else if (spec.name === 'SipResponses') batch.sipResponse(dims.Method!, Number(dims.StatusClass![0]) * 100);
          else if (spec.name === 'NotifySent') batch.notify(200);
          else if (spec.name === 'NotifyFailed') batch.notify(undefined);
          else emitMetric(metrics, spec.name, 1);
        }
        batch.flush();
        metrics.publishStoredMetrics();
      });
      const emittedKeys = new Set(emitted.map((s) => seriesKey(s as Parameters<typeof seriesKey>[0])));
      expect(emittedKeys).toEqual(new Set(allSeries().map(seriesKey)));

      // The other side: every custom series the synthesized dashboard names.
      expect(dashboardSeries(template, NAMESPACE)).toEqual(emittedKeys);
    });

    it('has each handler emit the metrics the catalogue assigns to it', () => {
      // The handler's own emissions, or the handler events it hands its build (lambda-runtime.ts metricEvents).
      const events = readFileSync(path.resolve('shared/observability/lambda-runtime.ts'), 'utf8');
      for (const [name, spec] of Object.entries(METRICS)) {
        if (spec.emitter === 'edge') continue;
        const source = readFileSync(path.resolve(`functions/${spec.emitter}/handler.ts`), 'utf8');
        const emitted =
          source.includes(`'${name}'`) ||
          (source.includes('events: metricEvents(obs)') && events.includes(`'${name}'`));
        expect({ name, emitted }).toEqual({ name, emitted: true });
      }
    });
  });

  it('alarms to one topic on a dead-lettered delivery or IMDN report, an old delivery, handler errors and unhealthy tasks', () => {
    const topic = logicalId(template, 'AWS::SNS::Topic', 'AlarmsTopic');
    const alarms = Object.values(resourcesOfType(template, 'AWS::CloudWatch::Alarm')).map((a) => a.Properties!);
    for (const alarm of alarms) expect(alarm.AlarmActions).toEqual([{ Ref: topic }]);
    const named = (metric: string) => alarms.filter((a) => a.MetricName === metric);
    const queues = base.stack.functions.queues;
    expect(
      named('ApproximateNumberOfMessagesVisible')
        .map((a) => (a.Dimensions as { Value: { 'Fn::GetAtt': string[] } }[])[0]!.Value['Fn::GetAtt'][0])
        .sort(),
    ).toEqual(
      [
        idOf(base, queues.deadLetter),
        idOf(base, queues.outboundDeadLetter),
        idOf(base, base.stack.functions.streamFailures),
      ].sort(),
    );
    expect(named('ApproximateAgeOfOldestMessage')).toHaveLength(1);
    expect(
      named('Errors')
        .map((a) => (a.Dimensions as { Value: { Ref: string } }[])[0]!.Value.Ref)
        .sort(),
    ).toEqual(Object.values(functionIds).sort());
    expect(named('UnHealthyHostCount')).toHaveLength(3); // SIP UDP, SIP TCP, MSRP (no TLS without a certificate)
    expect(named('HealthyHostCount')).toHaveLength(1);
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: [Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })],
      },
    });
  });
});

describe('context', () => {
  it('adds TLS on 5061 with the given certificate, pulls the edge image from ECR, sends IMDNs via the proxy when told', () => {
    const { template, assembly } = variant;
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Protocol: 'TLS',
      Port: 5061,
      Certificates: [{ CertificateArn: CERT }],
    });
    const image = JSON.stringify(
      (
        Object.values(resourcesOfType(template, 'AWS::ECS::TaskDefinition'))[0]!.Properties!.ContainerDefinitions as {
          Image: unknown;
        }[]
      )[0]!.Image,
    );
    expect(image).toContain('deferred-cpm/edge:1.4.0');
    expect(Object.keys(assetManifest(assembly).dockerImages)).toEqual([]);
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'noc@example.net' });
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [
        Match.objectLike({ Environment: Match.arrayWith([{ Name: 'OUTBOUND_PROXY', Value: PROXY }]) }),
      ],
    });
  });

  it('builds the edge image from functions/edge/Dockerfile by default, without Docker at synth', () => {
    const images = Object.values(assetManifest(base.assembly).dockerImages);
    expect(images).toHaveLength(1);
    expect(images[0]!.source).toMatchObject({ dockerFile: 'functions/edge/Dockerfile', platform: 'linux/arm64' });
  });

  it('stops the synth with the context key named when a value is bad', () => {
    expect(() => synth({ trustedPeers: '10.0.0.0/40' })).toThrow(/"trustedPeers"/);
    expect(() => synth({ outboundProxy: 'core.example.net:5060' })).toThrow(/"outboundProxy"/);
  });
});

describe('cdk-nag', () => {
  it('passes the AwsSolutions checks with and without the optional settings', () => {
    for (const { assembly } of [base, variant]) {
      const report = JSON.parse(readFileSync(path.join(assembly.directory, 'validation-report.json'), 'utf8')) as {
        pluginReports: unknown[];
      };
      expect(report.pluginReports).toEqual([]);
    }
  });

  it('stops a synth that has an unacknowledged finding', () => {
    const app = new App({ outdir: mkdtempSync(path.join(tmpdir(), 'nag-')) });
    const stack = new Stack(app, 'Bad');
    new sqs.Queue(stack, 'PlainQueue', { encryption: sqs.QueueEncryption.UNENCRYPTED });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    expect(() => app.synth()).toThrow(/AwsSolutions-SQS2/);
  });
});
