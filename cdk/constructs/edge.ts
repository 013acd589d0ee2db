/**
 * The SIP edge on Fargate behind a Network Load Balancer (docs/architecture.md "Shape"): SIP over UDP and
 * TCP on 5060, SIP over TLS on 5061 (terminated at the NLB) when a certificate is given, MSRP
 * on 2855, and the private control API on 8080 for the NLB's health check and for the
 * handlers that deliver and NOTIFY through the task owning a session or connection.
 */
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DELIVERY_QUEUE_URL_ENV, OUTBOUND_QUEUE_URL_ENV } from '#shared/adapters/wiring.ts';
import { MSRP_DEFAULT_PORT } from '#shared/msrp/uri.ts';
import { NAMESPACE, SERVICE_NAME } from '#shared/observability/metrics.ts';
import type { DeployConfig } from '../config.ts';
import { PROJECT_ROOT } from './handler-function.ts';
import { ADMIN_PORT, type Network } from './network.ts';

/**
 * What clients see on the NLB: one port per listener, as ELBv2 refuses two listeners on one port
 * whatever their protocols (DuplicateListener). UDP keeps RFC 3261's 5060 and TLS its 5061
 * (§26.3.1); TCP takes 5062. Contact, Record-Route and Via name these, per transport.
 */
export const LISTENER_PORTS = { sipUdp: 5060, sipTls: 5061, sipTcp: 5062, msrp: 2855, msrps: 2856 } as const;

/**
 * What the container listens on. ECS refuses one container port in two port mappings, even
 * for UDP and TCP, so each protocol has its own; connections whose TLS the NLB ended arrive on
 * a port of their own (SIP_TLS_OFFLOAD_PORT), so the edge knows them for TLS (sips:, 5061).
 */
export const CONTAINER_PORTS = {
  sipUdp: LISTENER_PORTS.sipUdp,
  sipTcp: LISTENER_PORTS.sipTcp,
  sipTlsOffload: 5063,
  // MSRP over TLS ended at the NLB (msrps: a=path for sessions set up over SIP over TLS).
  msrpTlsOffload: 2856,
  // The invite function names the owning task in session ids with this port (RFC 4975 §15: 2855).
  msrp: MSRP_DEFAULT_PORT,
  admin: ADMIN_PORT,
} as const;

/**
 * The NLB's idle timeout on TCP listeners (tcp.idle_timeout.seconds; TLS listeners keep a fixed
 * 350 s). The edge closes idle SIP connections first (EDGE_IDLE_TIMEOUT_SECONDS), so neither side
 * holds a flow the NLB has silently forgotten; a client sending CRLF keep-alives (RFC 5626
 * §3.5.1, answered by the edge) keeps its flow open.
 */
export const NLB_TCP_IDLE_SECONDS = 600;
export const NLB_TLS_IDLE_SECONDS = 350;
export const EDGE_IDLE_TIMEOUT_SECONDS = 300;

/** Environment names through which the edge learns the functions it invokes (AWS mode). */
export const FUNCTION_NAME_ENV = {
  subscribe: 'SUBSCRIBE_FUNCTION_NAME',
  invite: 'INVITE_FUNCTION_NAME',
  deposit: 'DEPOSIT_FUNCTION_NAME',
} as const;

/** How long the edge waits for a handler: just over the functions' 5 s timeout, so Lambda's error answers first. */
export const HANDLER_TIMEOUT_MS = 6000;

export const HEALTH_CHECK_PATH = '/health';

/**
 * With `tracing=sampled` (the default) the functions trace only what the edge marks sampled:
 * this fraction of its invocations (X-Ray's own default rate, without its 1-a-second reservoir
 * that at low volume traces nearly everything).
 */
export const TRACE_SAMPLE_RATE = 0.05;

export interface EdgeProps {
  config: DeployConfig;
  network: Network;
  /** CONTROL_TOKEN, which /control/* calls must carry. */
  controlToken: secretsmanager.ISecret;
}

export class Edge extends Construct {
  readonly cluster: ecs.Cluster;
  readonly service: ecs.FargateService;
  readonly nlb: elbv2.NetworkLoadBalancer;
  readonly securityGroup: ec2.SecurityGroup;
  /** The NLB's own group, set at creation (it cannot be added later): what the tasks admit. */
  readonly nlbSecurityGroup: ec2.SecurityGroup;
  readonly targetGroups: {
    sipUdp: elbv2.NetworkTargetGroup;
    sipTcp: elbv2.NetworkTargetGroup;
    sipTls?: elbv2.NetworkTargetGroup;
    msrp: elbv2.NetworkTargetGroup;
    msrps?: elbv2.NetworkTargetGroup;
  };
  readonly taskDefinition: ecs.FargateTaskDefinition;
  private readonly container: ecs.ContainerDefinition;

  constructor(scope: Construct, id: string, props: EdgeProps) {
    super(scope, id);
    const { config, network } = props;
    const vpc = network.vpc;

    // SIP comes from the SIP/IP Core only (the task admits no direct clients); MSRP from the
    // clients themselves, wherever they are (the SDP a=path names the NLB, RFC 4975 §8.1).
    this.nlbSecurityGroup = new ec2.SecurityGroup(this, 'NlbSg', {
      vpc,
      description: 'deferred-cpm NLB: SIP from the SIP/IP Core, MSRP from clients',
      allowAllOutbound: false,
    });
    for (const range of config.trustedPeers) {
      const peer = range.includes(':') ? ec2.Peer.ipv6(cidrOf(range)) : ec2.Peer.ipv4(cidrOf(range));
      this.nlbSecurityGroup.addIngressRule(peer, ec2.Port.udp(LISTENER_PORTS.sipUdp), 'SIP over UDP from the core');
      this.nlbSecurityGroup.addIngressRule(peer, ec2.Port.tcp(LISTENER_PORTS.sipTcp), 'SIP over TCP from the core');
      if (config.certificateArn) {
        this.nlbSecurityGroup.addIngressRule(peer, ec2.Port.tcp(LISTENER_PORTS.sipTls), 'SIP over TLS from the core');
      }
    }
    this.nlbSecurityGroup.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(LISTENER_PORTS.msrp), 'MSRP from clients');
    if (config.certificateArn) {
      this.nlbSecurityGroup.addIngressRule(
        ec2.Peer.anyIpv4(),
        ec2.Port.tcp(LISTENER_PORTS.msrps),
        'MSRP over TLS from clients',
      );
    }
    Validations.of(this.nlbSecurityGroup).acknowledge({
      id: 'AwsSolutions-EC23',
      reason:
        'Only the MSRP listener admits any address: clients connect to the a=path their SDP answer names from wherever they are. SIP is admitted from trustedPeers only; the tasks admit only this group and the core.',
    });

    this.nlb = new elbv2.NetworkLoadBalancer(this, 'Nlb', {
      vpc,
      internetFacing: true,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      // With one or two tasks an AZ may hold none; cross-zone keeps both NLB addresses useful.
      crossZoneEnabled: true,
      securityGroups: [this.nlbSecurityGroup],
    });
    Validations.of(this.nlb).acknowledge({
      id: 'AwsSolutions-ELB2',
      reason:
        'NLB access logs cover TLS listeners only and need an S3 bucket; SIP and MSRP are logged by the edge, rejected flows by the VPC flow log.',
    });

    this.securityGroup = new ec2.SecurityGroup(this, 'TaskSg', {
      vpc,
      description: 'deferred-cpm edge tasks',
      // The edge reaches Lambda, SQS, CloudWatch Logs and ECR, and clients (NOTIFY over a new
      // connection, IMDN reports) at whatever address they have.
      allowAllOutbound: true,
    });
    // In: the NLB's group (client addresses are preserved, but the NLB's group is what its
    // traffic carries) and the SIP/IP Core's ranges (answers to the requests a task sends from
    // its own address). Nothing else: a task's address cannot be used to go around the NLB.
    const fromNlb: [ec2.Port, string][] = [
      [ec2.Port.udp(CONTAINER_PORTS.sipUdp), 'SIP over UDP from the NLB'],
      [ec2.Port.tcp(CONTAINER_PORTS.sipTcp), 'SIP over TCP from the NLB'],
      [ec2.Port.tcp(CONTAINER_PORTS.msrp), 'MSRP from the NLB'],
      [ec2.Port.tcp(ADMIN_PORT), 'NLB health checks'],
      ...(config.certificateArn
        ? ([
            [ec2.Port.tcp(CONTAINER_PORTS.sipTlsOffload), 'SIP over TLS ended at the NLB'],
            [ec2.Port.tcp(CONTAINER_PORTS.msrpTlsOffload), 'MSRP over TLS ended at the NLB'],
          ] as [ec2.Port, string][])
        : []),
    ];
    for (const [portRange, what] of fromNlb) {
      this.securityGroup.addIngressRule(this.nlbSecurityGroup, portRange, what);
      this.nlbSecurityGroup.addEgressRule(this.securityGroup, portRange, what);
    }
    for (const range of config.trustedPeers) {
      const peer = range.includes(':') ? ec2.Peer.ipv6(cidrOf(range)) : ec2.Peer.ipv4(cidrOf(range));
      this.securityGroup.addIngressRule(peer, ec2.Port.udp(CONTAINER_PORTS.sipUdp), 'SIP over UDP from the core');
      this.securityGroup.addIngressRule(peer, ec2.Port.tcp(CONTAINER_PORTS.sipTcp), 'SIP over TCP from the core');
    }
    this.securityGroup.connections.allowFrom(
      network.edgeClients,
      ec2.Port.tcp(ADMIN_PORT),
      'Handlers to the control API',
    );
    this.securityGroup.addIngressRule(this.securityGroup, ec2.Port.tcp(ADMIN_PORT), 'Edge to edge control API');
    // A task reached by a client for another task's session pipes it there (MSRP_RELAY_ALLOW).
    this.securityGroup.addIngressRule(
      this.securityGroup,
      ec2.Port.tcp(CONTAINER_PORTS.msrp),
      'Edge to edge MSRP relay',
    );

    this.cluster = new ecs.Cluster(this, 'Cluster', { vpc });
    Validations.of(this.cluster).acknowledge({
      id: 'AwsSolutions-ECS4',
      reason:
        'Service CPU and memory come free from AWS/ECS and are on the dashboard; Container Insights would add per-task custom metrics to the bill.',
    });

    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'Task', {
      cpu: 512,
      memoryLimitMiB: 1024,
      runtimePlatform: {
        cpuArchitecture: ecs.CpuArchitecture.ARM64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
    });

    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: config.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const container = (this.container = this.taskDefinition.addContainer('edge', {
      image: this.image(config),
      logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: 'edge' }),
      environment: {
        SIP_DOMAIN: config.sipDomain,
        SIP_LISTEN: '0.0.0.0',
        // The control API must be reachable by deliver/expire/deposit in the VPC (security groups guard it).
        ADMIN_LISTEN: '0.0.0.0',
        // No direct clients: every request comes through the SIP/IP Core (TRUSTED_PEERS).
        DIRECT_CLIENTS: '',
        SIP_PORT: String(CONTAINER_PORTS.sipUdp),
        SIP_TCP_PORT: String(CONTAINER_PORTS.sipTcp),
        MSRP_PORT: String(CONTAINER_PORTS.msrp),
        ADMIN_PORT: String(ADMIN_PORT),
        // Close idle SIP connections before the NLB forgets them (TCP 600 s, TLS 350 s).
        SIP_IDLE_TIMEOUT: String(EDGE_IDLE_TIMEOUT_SECONDS),
        // Contact, Record-Route and the MSRP path name the NLB's listener of each transport.
        SIP_ADVERTISE: this.nlb.loadBalancerDnsName,
        SIP_ADVERTISE_UDP: `${this.nlb.loadBalancerDnsName}:${LISTENER_PORTS.sipUdp}`,
        SIP_ADVERTISE_TCP: `${this.nlb.loadBalancerDnsName}:${LISTENER_PORTS.sipTcp}`,
        SIP_ADVERTISE_MSRP: `${this.nlb.loadBalancerDnsName}:${LISTENER_PORTS.msrp}`,
        ...(config.certificateArn
          ? {
              // Plain TCP here, TLS to the client: advertised as sips: on the TLS listener.
              SIP_TLS_OFFLOAD_PORT: String(CONTAINER_PORTS.sipTlsOffload),
              SIP_ADVERTISE_TLS: `${this.nlb.loadBalancerDnsName}:${LISTENER_PORTS.sipTls}`,
              MSRP_TLS_OFFLOAD_PORT: String(CONTAINER_PORTS.msrpTlsOffload),
              SIP_ADVERTISE_MSRPS: `${this.nlb.loadBalancerDnsName}:${LISTENER_PORTS.msrps}`,
            }
          : {}),
        TRUSTED_PEERS: config.trustedPeers.join(','),
        // MSRP connections for a session another task holds go to that task, by private address.
        MSRP_RELAY_ALLOW: vpc.vpcCidrBlock,
        RETENTION: config.retention,
        HANDLER_MODE: 'lambda',
        HANDLER_TIMEOUT_MS: String(HANDLER_TIMEOUT_MS),
        ...(config.tracing === 'sampled' ? { TRACE_SAMPLE_RATE: String(TRACE_SAMPLE_RATE) } : {}),
        DATA_DIR: '/tmp/deferred-cpm',
        POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: NAMESPACE,
        // IMDN failure reports go to the SIP/IP Core's entry (RFC 3261 §8.1.2 outbound proxy).
        ...(config.outboundProxy ? { OUTBOUND_PROXY: config.outboundProxy } : {}),
      },
      secrets: { CONTROL_TOKEN: ecs.Secret.fromSecretsManager(props.controlToken) },
      portMappings: [
        { containerPort: CONTAINER_PORTS.sipUdp, protocol: ecs.Protocol.UDP },
        { containerPort: CONTAINER_PORTS.sipTcp, protocol: ecs.Protocol.TCP },
        ...(config.certificateArn
          ? [
              { containerPort: CONTAINER_PORTS.sipTlsOffload, protocol: ecs.Protocol.TCP },
              { containerPort: CONTAINER_PORTS.msrpTlsOffload, protocol: ecs.Protocol.TCP },
            ]
          : []),
        { containerPort: CONTAINER_PORTS.msrp, protocol: ecs.Protocol.TCP },
        { containerPort: CONTAINER_PORTS.admin, protocol: ecs.Protocol.TCP },
      ],
      // SIGTERM lets the edge finish transactions and send its BYEs before SIGKILL.
      stopTimeout: Duration.seconds(30),
    }));
    Validations.of(this.taskDefinition.obtainExecutionRole()).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'ecr:GetAuthorizationToken has no resource-level permission; image pulls and log writes name their repository and log group.',
    });
    Validations.of(this.taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason: 'The environment holds names, ports and address ranges only; CONTROL_TOKEN comes from Secrets Manager.',
    });

    this.service = new ecs.FargateService(this, 'Service', {
      cluster: this.cluster,
      taskDefinition: this.taskDefinition,
      desiredCount: config.minTasks,
      // Without fixed egress, tasks in public subnets reach AWS APIs and clients by their own
      // public address (no NAT gateway to pay for); their group admits only the NLB and the
      // core. With it, they sit in private subnets behind the NAT gateway's Elastic IP.
      assignPublicIp: !config.fixedEgress,
      vpcSubnets: network.edgeSubnets,
      securityGroups: [this.securityGroup],
      circuitBreaker: { rollback: true },
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
    });
    const scaling = this.service.autoScaleTaskCount({ minCapacity: config.minTasks, maxCapacity: config.maxTasks });
    scaling.scaleOnCpuUtilization('Cpu', {
      targetUtilizationPercent: 60,
      scaleOutCooldown: Duration.minutes(1),
      // Scaling in ends TCP flows and MSRP sessions on the removed task: be slow about it.
      scaleInCooldown: Duration.minutes(10),
    });

    const healthCheck: elbv2.HealthCheck = {
      protocol: elbv2.Protocol.HTTP,
      port: String(ADMIN_PORT),
      path: HEALTH_CHECK_PATH,
      interval: Duration.seconds(10),
      healthyThresholdCount: 2,
      unhealthyThresholdCount: 2,
    };
    const targetGroup = (tgId: string, protocol: elbv2.Protocol, port: number, ecsProtocol: ecs.Protocol) =>
      new elbv2.NetworkTargetGroup(this, tgId, {
        vpc,
        port,
        protocol,
        targetType: elbv2.TargetType.IP,
        healthCheck,
        // UDP keeps client addresses always; TCP targets by IP need it asked for.
        ...(protocol === elbv2.Protocol.TCP ? { preserveClientIp: true } : {}),
        // A SIP TCP flow or MSRP session outlives any sane drain; a minute covers transactions.
        deregistrationDelay: Duration.seconds(60),
        targets: [
          this.service.loadBalancerTarget({
            containerName: container.containerName,
            containerPort: port,
            protocol: ecsProtocol,
          }),
        ],
      });
    this.targetGroups = {
      sipUdp: targetGroup('SipUdp', elbv2.Protocol.UDP, CONTAINER_PORTS.sipUdp, ecs.Protocol.UDP),
      sipTcp: targetGroup('SipTcp', elbv2.Protocol.TCP, CONTAINER_PORTS.sipTcp, ecs.Protocol.TCP),
      msrp: targetGroup('Msrp', elbv2.Protocol.TCP, CONTAINER_PORTS.msrp, ecs.Protocol.TCP),
    };

    this.nlb.addListener('SipUdp', {
      port: LISTENER_PORTS.sipUdp,
      protocol: elbv2.Protocol.UDP,
      defaultTargetGroups: [this.targetGroups.sipUdp],
    });
    this.nlb.addListener('SipTcp', {
      port: LISTENER_PORTS.sipTcp,
      protocol: elbv2.Protocol.TCP,
      tcpIdleTimeout: Duration.seconds(NLB_TCP_IDLE_SECONDS),
      defaultTargetGroups: [this.targetGroups.sipTcp],
    });
    if (config.certificateArn) {
      const certificate = elbv2.ListenerCertificate.fromArn(config.certificateArn);
      // TLS ends at the NLB; the task gets plain TCP on a port of its own, so it knows the
      // connection for TLS and advertises sips: / msrps: for it.
      const tlsOffload = (id: 'SipTls' | 'Msrps', listenerPort: number, containerPort: number) => {
        const group = targetGroup(id, elbv2.Protocol.TCP, containerPort, ecs.Protocol.TCP);
        this.nlb.addListener(id, {
          port: listenerPort,
          protocol: elbv2.Protocol.TLS,
          certificates: [certificate],
          sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
          defaultTargetGroups: [group],
        });
        return group;
      };
      // RFC 3261 §26.3.1: SIPS on 5061; RFC 4975 §15: msrps.
      this.targetGroups.sipTls = tlsOffload('SipTls', LISTENER_PORTS.sipTls, CONTAINER_PORTS.sipTlsOffload);
      this.targetGroups.msrps = tlsOffload('Msrps', LISTENER_PORTS.msrps, CONTAINER_PORTS.msrpTlsOffload);
    }
    this.nlb.addListener('Msrp', {
      port: LISTENER_PORTS.msrp,
      protocol: elbv2.Protocol.TCP,
      tcpIdleTimeout: Duration.seconds(NLB_TCP_IDLE_SECONDS),
      defaultTargetGroups: [this.targetGroups.msrp],
    });
  }

  /**
   * The functions the edge invokes synchronously (RequestResponse): their names in its
   * environment, and permission to invoke exactly those, unqualified (no `:*`).
   */
  invokes(functions: Record<keyof typeof FUNCTION_NAME_ENV, lambda.IFunction>): void {
    for (const [name, fn] of Object.entries(functions) as [keyof typeof FUNCTION_NAME_ENV, lambda.IFunction][]) {
      this.container.addEnvironment(FUNCTION_NAME_ENV[name], fn.functionName);
    }
    this.taskDefinition.taskRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['lambda:InvokeFunction'],
        resources: Object.values(functions).map((fn) => fn.functionArn),
      }),
    );
  }

  /**
   * The queue of IMDN failure reports the functions enqueue and the edge sends: its URL in the
   * environment, and a queue consumer's actions on it alone (those of Lambda's SQS event
   * source; `grantConsumeMessages` would add GetQueueUrl, which the edge never calls).
   */
  /**
   * The delivery queue, where the edge queues the report of each delivery hand-off (the MSRP
   * SENDs it ran) for the deliver function to settle: its URL, and SendMessage on it alone.
   */
  reportsTo(queue: sqs.IQueue): void {
    this.container.addEnvironment(DELIVERY_QUEUE_URL_ENV, queue.queueUrl);
    this.taskDefinition.taskRole.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [queue.queueArn] }),
    );
  }

  sendsFrom(queue: sqs.IQueue): void {
    this.container.addEnvironment(OUTBOUND_QUEUE_URL_ENV, queue.queueUrl);
    this.taskDefinition.taskRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes'],
        resources: [queue.queueArn],
      }),
    );
  }

  private image(config: DeployConfig): ecs.ContainerImage {
    if (config.imageSource.kind === 'ecr') {
      const repository = ecr.Repository.fromRepositoryName(this, 'Repository', config.imageSource.repository);
      return ecs.ContainerImage.fromEcrRepository(repository, config.imageSource.tag);
    }
    // Built by `cdk deploy` (Docker needed then, not at synth) from the repository root.
    return ecs.ContainerImage.fromAsset(PROJECT_ROOT, {
      file: 'functions/edge/Dockerfile',
      platform: Platform.LINUX_ARM64,
      exclude: ['node_modules', 'dist', 'cdk.out', '.git', '.data', 'test', 'docs', 'coverage', '*.log'],
    });
  }
}

/** A CDK CIDR from an address range as TRUSTED_PEERS takes it (a bare address is one host). */
function cidrOf(range: string): string {
  if (range.includes('/')) return range;
  return range.includes(':') ? `${range}/128` : `${range}/32`;
}
