/**
 * The rules of the AWS review (issue 9), each on the synthesized template: a stack that
 * CloudFormation creates (no duplicate listener ports), addresses clients can reach, a route for
 * every AWS service a function in the VPC calls, no way around the NLB, idle timeouts in order,
 * and the operational guards (deliver's concurrency, the stream's failures, deletion protection).
 */
import { readFileSync } from 'node:fs';
import type { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CONTAINER_PORTS,
  EDGE_IDLE_TIMEOUT_SECONDS,
  LISTENER_PORTS,
  NLB_TLS_IDLE_SECONDS,
  TRACE_SAMPLE_RATE,
} from '../../cdk/constructs/edge.ts';
import { DELIVER_MAX_CONCURRENCY } from '../../cdk/constructs/functions.ts';
import { loadConfig } from '#shared/config.ts';
import { resourcesOfType, synth } from './support.ts';

const CERT = 'arn:aws:acm:eu-west-1:123456789012:certificate/0f0e0d0c-1111-2222-3333-444455556666';
type Built = ReturnType<typeof synth>;
type Props = Record<string, unknown>;
const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const refOf = (v: unknown): string | undefined =>
  (v as { Ref?: string })?.Ref ?? (v as { 'Fn::GetAtt'?: string[] })?.['Fn::GetAtt']?.[0];

let base: Built;
let tls: Built;
let egress: Built;

beforeAll(() => {
  base = synth();
  tls = synth({ certificateArn: CERT });
  egress = synth({ fixedEgress: 'true', certificateArn: CERT });
});

function props(template: Template, type: string): [string, Props][] {
  return Object.entries(resourcesOfType(template, type)).map(([id, r]) => [id, r.Properties ?? {}]);
}

/** The edge container's environment as name -> value, with `${Token}` standing for references. */
function edgeEnvironment(template: Template): Record<string, string> {
  const [[, task]] = props(template, 'AWS::ECS::TaskDefinition') as [[string, Props]];
  const env = (task.ContainerDefinitions as { Environment: { Name: string; Value: unknown }[] }[])[0]!.Environment;
  const text = (v: unknown): string => {
    if (typeof v === 'string') return v;
    const join = (v as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
    if (join) return join[1].map(text).join(join[0]);
    return `\${${refOf(v) ?? JSON.stringify(v)}}`;
  };
  return Object.fromEntries(env.map((e) => [e.Name, text(e.Value)]));
}

describe('listeners and target groups (blocker 1)', () => {
  it('never puts two listeners of one load balancer on one port', () => {
    for (const { template } of [base, tls, egress]) {
      const byLb = new Map<string, number[]>();
      for (const [, l] of props(template, 'AWS::ElasticLoadBalancingV2::Listener')) {
        const lb = refOf(l.LoadBalancerArn)!;
        byLb.set(lb, [...(byLb.get(lb) ?? []), l.Port as number]);
      }
      for (const ports of byLb.values()) expect(new Set(ports).size).toBe(ports.length);
    }
  });

  it('gives TLS its own target group on its own container port, mapped in the task', () => {
    const { template } = tls;
    const groups = Object.fromEntries(props(template, 'AWS::ElasticLoadBalancingV2::TargetGroup'));
    const listeners = props(template, 'AWS::ElasticLoadBalancingV2::Listener').map(([, l]) => l);
    const targetOf = (protocol: string) => {
      const l = listeners.find((x) => x.Protocol === protocol)!;
      return refOf((l.DefaultActions as { TargetGroupArn: unknown }[])[0]!.TargetGroupArn)!;
    };
    const tlsGroup = targetOf('TLS');
    const tcpGroups = listeners.filter((l) => l.Protocol === 'TCP').map(() => targetOf('TCP'));
    expect(tcpGroups).not.toContain(tlsGroup);
    expect(groups[tlsGroup]).toMatchObject({ Port: CONTAINER_PORTS.sipTlsOffload, Protocol: 'TCP' });
    const ports = new Set(Object.values(groups).map((g) => `${g.Protocol as string}/${g.Port as number}`));
    expect(ports.size).toBe(Object.keys(groups).length);
    const [[, task]] = props(template, 'AWS::ECS::TaskDefinition') as [[string, Props]];
    const mappings = (task.ContainerDefinitions as { PortMappings: { ContainerPort: number }[] }[])[0]!.PortMappings;
    expect(mappings.map((m) => m.ContainerPort)).toContain(CONTAINER_PORTS.sipTlsOffload);
    expect(new Set(mappings.map((m) => m.ContainerPort)).size).toBe(mappings.length);
  });
});

describe('what the edge advertises (blocker 2)', () => {
  it('names, per transport, the NLB listener of that transport; TLS connections arrive on their own port', () => {
    const { template } = tls;
    const env = edgeEnvironment(template);
    const listeners = props(template, 'AWS::ElasticLoadBalancingV2::Listener').map(([, l]) => l);
    const portOf = (protocol: string) => listeners.find((l) => l.Protocol === protocol)!.Port as number;
    const [[nlbId]] = props(template, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
    const host = `\${${nlbId}}`;
    expect(env.SIP_ADVERTISE_UDP).toBe(`${host}:${portOf('UDP')}`);
    expect(env.SIP_ADVERTISE_TLS).toBe(`${host}:${portOf('TLS')}`);
    expect(env.SIP_ADVERTISE_TCP).toBe(`${host}:${LISTENER_PORTS.sipTcp}`);
    expect(env.SIP_ADVERTISE_MSRP).toBe(`${host}:${LISTENER_PORTS.msrp}`);
    expect(listeners.map((l) => l.Port)).toEqual(
      expect.arrayContaining([LISTENER_PORTS.sipTcp, LISTENER_PORTS.msrp, LISTENER_PORTS.sipTls]),
    );
    expect(env.SIP_TLS_OFFLOAD_PORT).toBe(String(CONTAINER_PORTS.sipTlsOffload));
    // MSRP over TLS the same way: its own TLS listener and target group, msrps: advertised there.
    expect(env.SIP_ADVERTISE_MSRPS).toBe(`${host}:${LISTENER_PORTS.msrps}`);
    expect(env.MSRP_TLS_OFFLOAD_PORT).toBe(String(CONTAINER_PORTS.msrpTlsOffload));
    const msrpsListener = listeners.find((l) => l.Port === LISTENER_PORTS.msrps)!;
    expect(msrpsListener.Protocol).toBe('TLS');
    const groups = Object.fromEntries(props(template, 'AWS::ElasticLoadBalancingV2::TargetGroup'));
    const msrpsGroup = refOf((msrpsListener.DefaultActions as { TargetGroupArn: unknown }[])[0]!.TargetGroupArn)!;
    expect(groups[msrpsGroup]).toMatchObject({ Port: CONTAINER_PORTS.msrpTlsOffload, Protocol: 'TCP' });
    // The invite function builds the answer: it is told the same msrps address.
    const invite = props(template, 'AWS::Lambda::Function').find(([id]) => id.startsWith('FunctionsInvite'))![1];
    const fnEnv = (invite.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(JSON.stringify(fnEnv.SIP_ADVERTISE_MSRPS)).toContain(`:${LISTENER_PORTS.msrps}`);
    // The edge accepts what the stack gives it (tokens stand in for the NLB's name).
    const { MSRP_RELAY_ALLOW: _cidr, ...names } = env;
    const concrete = Object.fromEntries(
      Object.entries(names).map(([k, v]) => [
        k,
        v.replaceAll(host, 'nlb.example.net').replace(/\$\{[^}]+\}/g, 'http://x'),
      ]),
    );
    const config = loadConfig({ ...concrete, EDGE_ID: 'http://10.0.0.1:8080' });
    expect(config.advertiseTransports.tls).toEqual({ host: 'nlb.example.net', port: LISTENER_PORTS.sipTls });
    expect(config.tlsOffloadPort).toBe(CONTAINER_PORTS.sipTlsOffload);
    expect(config.msrpTlsOffloadPort).toBe(CONTAINER_PORTS.msrpTlsOffload);
    expect(config.advertiseTransports.msrps).toEqual({ host: 'nlb.example.net', port: LISTENER_PORTS.msrps });
  });

  it('advertises no TLS without a certificate', () => {
    const env = edgeEnvironment(base.template);
    expect(env.SIP_ADVERTISE_TLS).toBeUndefined();
    expect(env.SIP_TLS_OFFLOAD_PORT).toBeUndefined();
  });
});

describe('routes from the VPC (blocker 3, done-when)', () => {
  /**
   * Services a function's role names that the function itself does not call from its subnets:
   * the network-interface actions Lambda performs when it attaches the function, logs and
   * traces the Lambda runtime ships outside the function's interface.
   */
  const NOT_FROM_THE_SUBNET = new Set(['ec2', 'logs', 'xray']);

  for (const [name, built] of [
    ['default', () => base],
    ['fixed egress', () => egress],
  ] as const) {
    it(`(${name}) every AWS service a VPC function calls has an endpoint or a NAT route in its subnets`, () => {
      const { template } = built();
      const fns = props(template, 'AWS::Lambda::Function').filter(([, f]) => f.VpcConfig);
      expect(fns.length).toBeGreaterThanOrEqual(4);
      const mappings = props(template, 'AWS::EventSourceMapping'.replace('AWS::', 'AWS::Lambda::'));
      const policies = props(template, 'AWS::IAM::Policy');
      const associations = props(template, 'AWS::EC2::SubnetRouteTableAssociation').map(([, a]) => a);
      const routes = props(template, 'AWS::EC2::Route').map(([, r]) => r);
      const endpoints = props(template, 'AWS::EC2::VPCEndpoint').map(([, e]) => e);
      const serviceOf = (e: Props) => JSON.stringify(e.ServiceName).match(/\.([a-z0-9-]+)"\]\]\}$|\.([a-z0-9-]+)"$/);

      for (const [fnId, fn] of fns) {
        const roleId = refOf(fn.Role)!;
        // What the function's event source mappings read (and write on failure) is the
        // mapping's business, done by Lambda outside the subnet.
        const mapped = new Set(
          mappings
            .filter(([, m]) => refOf(m.FunctionName) === fnId)
            .flatMap(([, m]) => [
              refOf(m.EventSourceArn),
              refOf((m.DestinationConfig as { OnFailure?: { Destination: unknown } })?.OnFailure?.Destination),
            ])
            .filter((x): x is string => x !== undefined),
        );
        const services = new Set<string>();
        for (const [, policy] of policies) {
          if (!JSON.stringify(policy.Roles).includes(`"${roleId}"`)) continue;
          for (const st of (policy.PolicyDocument as { Statement: { Action: unknown; Resource: unknown }[] })
            .Statement) {
            const resources = list(st.Resource);
            const onMapped = resources.length > 0 && resources.every((r) => mapped.has(refOf(r) ?? ''));
            const streamRead = list(st.Action as string | string[]).every((a) =>
              /^dynamodb:(ListStreams|DescribeStream|GetRecords|GetShardIterator)$/.test(a),
            );
            if (onMapped || streamRead) continue;
            for (const action of list(st.Action as string | string[])) services.add(action.split(':')[0]!);
          }
        }
        for (const s of NOT_FROM_THE_SUBNET) services.delete(s);
        expect(services.size).toBeGreaterThan(0);

        for (const subnet of list((fn.VpcConfig as { SubnetIds: unknown[] }).SubnetIds).map((x) => refOf(x)!)) {
          const table = refOf(associations.find((a) => refOf(a.SubnetId) === subnet)!.RouteTableId)!;
          const natRoute = routes.some((r) => refOf(r.RouteTableId) === table && r.NatGatewayId !== undefined);
          for (const service of services) {
            const endpoint = endpoints.some((e) => {
              const m = serviceOf(e);
              if ((m?.[1] ?? m?.[2]) !== service) return false;
              return (
                list(e.RouteTableIds).some((t) => refOf(t) === table) ||
                list(e.SubnetIds).some((n) => refOf(n) === subnet)
              );
            });
            expect({ fn: fnId, subnet, service, routed: endpoint || natRoute }).toEqual({
              fn: fnId,
              subnet,
              service,
              routed: true,
            });
          }
        }
      }
    });
  }

  it('lets the functions in the VPC reach the SQS endpoint, and only them', () => {
    const { template } = base;
    const [[endpointSg]] = props(template, 'AWS::EC2::SecurityGroup').filter(([id]) => id.startsWith('NetworkVpcSqs'));
    const ingress = props(template, 'AWS::EC2::SecurityGroupIngress')
      .map(([, r]) => r)
      .filter((r) => refOf(r.GroupId) === endpointSg);
    expect(ingress).toEqual([
      expect.objectContaining({
        FromPort: 443,
        SourceSecurityGroupId: { 'Fn::GetAtt': [expect.stringMatching(/^NetworkEdgeClients/), 'GroupId'] },
      }),
    ]);
  });
});

describe('the fan-out after an INVITE (blocker 4)', () => {
  it('runs invite in the VPC with the group the edges admit on the control port, and lets it find the watchers', () => {
    const { template } = base;
    const [[inviteId, invite]] = props(template, 'AWS::Lambda::Function').filter(([id]) =>
      id.startsWith('FunctionsInvite'),
    ) as [[string, Props]];
    const groups = (invite.VpcConfig as { SecurityGroupIds: unknown[] }).SecurityGroupIds.map((g) => refOf(g));
    expect(groups).toEqual([expect.stringMatching(/^NetworkEdgeClients/)]);
    const admitted = props(template, 'AWS::EC2::SecurityGroupIngress')
      .map(([, r]) => r)
      .filter((r) => r.FromPort === CONTAINER_PORTS.admin && refOf(r.SourceSecurityGroupId) === groups[0]);
    expect(admitted.map((r) => refOf(r.GroupId))).toEqual([expect.stringMatching(/^EdgeTaskSg/)]);
    const roleId = refOf(invite.Role)!;
    const [[subscriptionsId]] = props(template, 'AWS::DynamoDB::Table').filter(([id]) =>
      id.startsWith('StorageSubscriptions'),
    );
    const statements = props(template, 'AWS::IAM::Policy')
      .filter(([, p]) => JSON.stringify(p.Roles).includes(`"${roleId}"`))
      .flatMap(([, p]) => (p.PolicyDocument as { Statement: { Action: unknown; Resource: unknown }[] }).Statement);
    expect(
      statements.some(
        (s) =>
          list(s.Action as string[]).includes('dynamodb:Query') &&
          list(s.Resource).some((r) => refOf(r) === subscriptionsId),
      ),
    ).toBe(true);
    expect(inviteId).toBeDefined();
  });
});

describe('trustedPeers (blocker 5)', () => {
  it('stops the synth naming the key when it is missing', () => {
    expect(() => synth({ trustedPeers: '' })).toThrow(/CDK context "trustedPeers": required/);
  });

  it('is documented as required in the README, with both permissions for the function URL', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    expect(readme).toMatch(/\| `trustedPeers` \| \*\*required\*\* \|/);
    expect(readme).toMatch(/`lambda:InvokeFunctionUrl` and `lambda:InvokeFunction`/);
  });
});

describe('no way around the NLB', () => {
  it('gives the NLB a security group at creation and admits only it and the core to the tasks', () => {
    for (const { template } of [base, tls]) {
      const [[, nlb]] = props(template, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
      const nlbGroups = list(nlb.SecurityGroups).map((g) => refOf(g));
      expect(nlbGroups).toEqual([expect.stringMatching(/^EdgeNlbSg/)]);
      const [[taskSg, sg]] = props(template, 'AWS::EC2::SecurityGroup').filter(([id]) => id.startsWith('EdgeTaskSg'));
      const rules = [
        ...list(sg.SecurityGroupIngress as Props[]),
        ...props(template, 'AWS::EC2::SecurityGroupIngress')
          .map(([, r]) => r)
          .filter((r) => refOf(r.GroupId) === taskSg),
      ];
      for (const rule of rules) {
        const from = rule.CidrIp ?? rule.CidrIpv6 ?? refOf(rule.SourceSecurityGroupId);
        expect([nlbGroups[0], taskSg, '198.51.100.0/24']).toContain(
          typeof from === 'string' && from.startsWith('NetworkEdgeClients') ? taskSg : from,
        );
      }
      expect(rules.some((r) => r.CidrIp === '0.0.0.0/0' || r.CidrIpv6 === '::/0')).toBe(false);
    }
  });

  it('with fixedEgress runs the tasks without public addresses, behind a NAT gateway with an Elastic IP', () => {
    const service = (b: Built) =>
      props(b.template, 'AWS::ECS::Service')[0]![1].NetworkConfiguration as {
        AwsvpcConfiguration: { AssignPublicIp: string };
      };
    expect(service(egress).AwsvpcConfiguration.AssignPublicIp).toBe('DISABLED');
    expect(props(egress.template, 'AWS::EC2::NatGateway')).toHaveLength(1);
    expect(props(egress.template, 'AWS::EC2::EIP')).toHaveLength(1);
    expect(props(base.template, 'AWS::EC2::NatGateway')).toHaveLength(0);
  });
});

describe('idle timeouts and keep-alives', () => {
  it('sets the TCP listeners idle timeout, and the edge closes idle connections before any listener does', () => {
    for (const { template } of [base, tls]) {
      const listeners = props(template, 'AWS::ElasticLoadBalancingV2::Listener').map(([, l]) => l);
      const idle: number[] = [];
      for (const l of listeners) {
        if (l.Protocol === 'UDP') continue;
        if (l.Protocol === 'TLS') {
          idle.push(NLB_TLS_IDLE_SECONDS);
          continue;
        }
        const attr = list(l.ListenerAttributes as { Key: string; Value: string }[]).find(
          (a) => a.Key === 'tcp.idle_timeout.seconds',
        );
        expect(attr).toBeDefined();
        idle.push(Number(attr!.Value));
      }
      const env = edgeEnvironment(template);
      expect(Number(env.SIP_IDLE_TIMEOUT)).toBe(EDGE_IDLE_TIMEOUT_SECONDS);
      expect(EDGE_IDLE_TIMEOUT_SECONDS).toBeLessThan(Math.min(...idle));
    }
  });
});

describe('operations', () => {
  it("caps deliver's concurrency at its event source", () => {
    const mapping = props(base.template, 'AWS::Lambda::EventSourceMapping')
      .map(([, m]) => m)
      .find((m) => String(refOf(m.FunctionName)).startsWith('FunctionsDeliver'))!;
    expect(mapping.ScalingConfig).toEqual({ MaximumConcurrency: DELIVER_MAX_CONCURRENCY });
  });

  it('sends TTL-stream batches given up on to a queue, and alarms on it and on the iterator age', () => {
    const { template } = base;
    const mapping = props(template, 'AWS::Lambda::EventSourceMapping')
      .map(([, m]) => m)
      .find((m) => String(refOf(m.FunctionName)).startsWith('FunctionsExpire'))!;
    const destination = refOf(
      (mapping.DestinationConfig as { OnFailure: { Destination: unknown } }).OnFailure.Destination,
    );
    expect(destination).toMatch(/^FunctionsStreamFailures/);
    const alarms = props(template, 'AWS::CloudWatch::Alarm').map(([, a]) => a);
    const iterator = alarms.find((a) => a.MetricName === 'IteratorAge')!;
    expect(String(refOf((iterator.Dimensions as { Value: unknown }[])[0]!.Value))).toMatch(/^FunctionsExpire/);
    expect(
      alarms.some(
        (a) =>
          a.MetricName === 'ApproximateNumberOfMessagesVisible' &&
          refOf((a.Dimensions as { Value: unknown }[])[0]!.Value) === destination,
      ),
    ).toBe(true);
  });

  it('protects every table from deletion', () => {
    for (const [, table] of props(base.template, 'AWS::DynamoDB::Table')) {
      expect(table.DeletionProtectionEnabled).toBe(true);
    }
  });

  it('runs two tasks by default', () => {
    expect(props(base.template, 'AWS::ECS::Service')[0]![1].DesiredCount).toBe(2);
    expect(props(base.template, 'AWS::ApplicationAutoScaling::ScalableTarget')[0]![1].MinCapacity).toBe(2);
  });

  it('pins every feature flag aws-cdk-lib recommends in cdk.json', () => {
    const pinned = (
      JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as {
        context: Record<string, unknown>;
      }
    ).context;
    const recommended = JSON.parse(
      readFileSync(new URL('../../node_modules/aws-cdk-lib/recommended-feature-flags.json', import.meta.url), 'utf8'),
    ) as Record<string, unknown>;
    expect(pinned).toMatchObject(recommended);
  });

  it('traces a sample: the edge marks its share of calls sampled, the functions follow that mark', () => {
    const env = edgeEnvironment(base.template);
    expect(Number(env.TRACE_SAMPLE_RATE)).toBe(TRACE_SAMPLE_RATE);
    expect(TRACE_SAMPLE_RATE).toBeLessThan(1);
    const modes = props(base.template, 'AWS::Lambda::Function')
      .filter(([id]) => id.startsWith('Functions'))
      .map(([id, f]) => [id.replace(/[A-F0-9]{8}$/, ''), (f.TracingConfig as { Mode: string }).Mode] as const);
    for (const [id, mode] of modes)
      expect({ id, mode }).toEqual({ id, mode: id === 'FunctionsExpire' ? 'Active' : 'PassThrough' });
  });
});
