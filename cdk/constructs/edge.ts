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
import { OUTBOUND_QUEUE_URL_ENV } from '#shared/adapters/wiring.ts';
import { MSRP_DEFAULT_PORT } from '#shared/msrp/uri.ts';
import { NAMESPACE, SERVICE_NAME } from '#shared/observability/metrics.ts';
import type { DeployConfig } from '../config.ts';
import { PROJECT_ROOT } from './handler-function.ts';
import { ADMIN_PORT, type Network } from './network.ts';

/** What clients see on the NLB. */
export const LISTENER_PORTS = { sip: 5060, sips: 5061, msrp: 2855 } as const;

/**
 * What the container listens on. ECS rejects one container port in two port mappings, even
 * for UDP and TCP, so SIP over TCP (and TLS after the NLB) gets its own port.
 */
export const CONTAINER_PORTS = {
  sipUdp: 5060,
  sipTcp: 5062,
  // The invite function names the owning task in session ids with this port (RFC 4975 §15: 2855).
  msrp: MSRP_DEFAULT_PORT,
  admin: ADMIN_PORT,
} as const;

/** Environment names through which the edge learns the functions it invokes (AWS mode). */
export const FUNCTION_NAME_ENV = {
  subscribe: 'SUBSCRIBE_FUNCTION_NAME',
  invite: 'INVITE_FUNCTION_NAME',
  deposit: 'DEPOSIT_FUNCTION_NAME',
} as const;

/** How long the edge waits for a handler: just over the functions' 5 s timeout, so Lambda's error answers first. */
export const HANDLER_TIMEOUT_MS = 6000;

export const HEALTH_CHECK_PATH = '/health';

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
  readonly targetGroups: {
    sipUdp: elbv2.NetworkTargetGroup;
    sipTcp: elbv2.NetworkTargetGroup;
    msrp: elbv2.NetworkTargetGroup;
  };
  readonly taskDefinition: ecs.FargateTaskDefinition;
  private readonly container: ecs.ContainerDefinition;

  constructor(scope: Construct, id: string, props: EdgeProps) {
    super(scope, id);
    const { config, network } = props;
    const vpc = network.vpc;

    this.nlb = new elbv2.NetworkLoadBalancer(this, 'Nlb', {
      vpc,
      internetFacing: true,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      // With one or two tasks an AZ may hold none; cross-zone keeps both NLB addresses useful.
      crossZoneEnabled: true,
    });
    Validations.of(this.nlb).acknowledge({
      id: 'AwsSolutions-ELB2',
      reason:
        'NLB access logs cover TLS listeners only and need an S3 bucket; SIP and MSRP are logged by the edge, rejected flows by the VPC flow log.',
    });

    this.securityGroup = new ec2.SecurityGroup(this, 'TaskSg', {
      vpc,
      description: 'deferred-cpm edge tasks',
      // The edge reaches Lambda, CloudWatch Logs and ECR over the internet gateway, and
      // clients (NOTIFY over UDP, MSRP answers) at whatever address they have.
      allowAllOutbound: true,
    });
    // Client IP preservation (needed for TRUSTED_PEERS) means packets arrive from the clients'
    // own addresses, not the NLB's: the public ports must be open to all.
    this.securityGroup.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.udp(CONTAINER_PORTS.sipUdp), 'SIP over UDP');
    this.securityGroup.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(CONTAINER_PORTS.sipTcp), 'SIP over TCP and TLS');
    this.securityGroup.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(CONTAINER_PORTS.msrp), 'MSRP');
    Validations.of(this.securityGroup).acknowledge({
      id: 'AwsSolutions-EC23',
      reason:
        'A public SIP and MSRP service: the NLB preserves client addresses, so the task ports must admit any source. The control API port is not open to the internet.',
    });
    // The control API: NLB health checks come from the NLB's addresses in the public subnets.
    for (const subnet of vpc.publicSubnets) {
      this.securityGroup.addIngressRule(
        ec2.Peer.ipv4(subnet.ipv4CidrBlock),
        ec2.Port.tcp(ADMIN_PORT),
        'NLB health checks',
      );
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
        // Contact and the MSRP path in SDP answers name the load balancer.
        SIP_ADVERTISE: this.nlb.loadBalancerDnsName,
        TRUSTED_PEERS: config.trustedPeers.join(','),
        // MSRP connections for a session another task holds go to that task, by private address.
        MSRP_RELAY_ALLOW: vpc.vpcCidrBlock,
        RETENTION: config.retention,
        HANDLER_MODE: 'lambda',
        HANDLER_TIMEOUT_MS: String(HANDLER_TIMEOUT_MS),
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
      // Tasks in public subnets with a public address reach AWS APIs without a NAT gateway.
      assignPublicIp: true,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
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
      port: LISTENER_PORTS.sip,
      protocol: elbv2.Protocol.UDP,
      defaultTargetGroups: [this.targetGroups.sipUdp],
    });
    this.nlb.addListener('SipTcp', {
      port: LISTENER_PORTS.sip,
      protocol: elbv2.Protocol.TCP,
      defaultTargetGroups: [this.targetGroups.sipTcp],
    });
    if (config.certificateArn) {
      // RFC 3261 §26.3.1: SIPS on 5061; TLS ends at the NLB, the task sees plain TCP.
      this.nlb.addListener('SipTls', {
        port: LISTENER_PORTS.sips,
        protocol: elbv2.Protocol.TLS,
        certificates: [elbv2.ListenerCertificate.fromArn(config.certificateArn)],
        sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
        defaultTargetGroups: [this.targetGroups.sipTcp],
      });
    }
    this.nlb.addListener('Msrp', {
      port: LISTENER_PORTS.msrp,
      protocol: elbv2.Protocol.TCP,
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
      exclude: ['node_modules', 'cdk.out', '.git', '.data', 'test', 'docs', 'coverage', '*.log'],
    });
  }
}
