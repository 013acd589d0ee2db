/**
 * The VPC: public subnets for the NLB (and, without fixed egress, the edge tasks, which then
 * reach AWS APIs and clients by their own public address: no NAT gateway to pay for), isolated
 * subnets for the handlers that reach the edge's control API, with a DynamoDB gateway endpoint
 * (free) and an SQS interface endpoint, the only AWS services those handlers call themselves.
 * With `fixedEgress` the tasks move to private subnets behind one NAT gateway with an Elastic
 * IP: one fixed source address for the SIP requests they originate.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/** The edge's private control API (ADMIN_PORT): health, metrics, /control/*. */
export const ADMIN_PORT = 8080;

export interface NetworkProps {
  logRetentionDays: number;
  /** Edge tasks behind a NAT gateway with an Elastic IP instead of their own public address. */
  fixedEgress: boolean;
}

export class Network extends Construct {
  readonly vpc: ec2.Vpc;
  /** Handlers that call the edge (deliver, expire, deposit, invite) run here. */
  readonly handlerSubnets: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
  /** Where the edge tasks run. */
  readonly edgeSubnets: ec2.SubnetSelection;
  /** Security group of the handlers that call the edge's control API. */
  readonly edgeClients: ec2.SecurityGroup;
  /** The SQS interface endpoint the handlers in the VPC send through. */
  readonly sqsEndpoint: ec2.InterfaceVpcEndpoint;
  /** With fixed egress: the NAT gateway's Elastic IP, the tasks' one source address. */
  readonly egressAddresses: string[];

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    this.edgeSubnets = { subnetType: props.fixedEgress ? ec2.SubnetType.PRIVATE_WITH_EGRESS : ec2.SubnetType.PUBLIC };
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      // One NAT gateway (one Elastic IP to allow-list) when asked for; none otherwise.
      natGateways: props.fixedEgress ? 1 : 0,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        ...(props.fixedEgress ? [{ name: 'edge', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 24 }] : []),
        { name: 'handlers', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      gatewayEndpoints: {
        DynamoDb: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB, subnets: [this.handlerSubnets] },
      },
    });
    this.egressAddresses = this.vpc.publicSubnets.flatMap((subnet) =>
      subnet.node.children.filter((c): c is ec2.CfnEIP => c instanceof ec2.CfnEIP).map((eip) => eip.attrPublicIp),
    );
    // Rejected traffic only: what an operator needs to debug a security group, at a fraction
    // of the cost of logging every SIP packet.
    this.vpc.addFlowLog('RejectedFlows', {
      trafficType: ec2.FlowLogTrafficType.REJECT,
      destination: ec2.FlowLogDestination.toCloudWatchLogs(
        new logs.LogGroup(this, 'FlowLogs', {
          retention: props.logRetentionDays as logs.RetentionDays,
          removalPolicy: RemovalPolicy.DESTROY,
        }),
      ),
    });

    this.edgeClients = new ec2.SecurityGroup(this, 'EdgeClients', {
      vpc: this.vpc,
      description: 'Handlers that call the edge control API (deliver, expire, deposit, invite)',
      allowAllOutbound: false,
    });
    // The isolated subnets route only inside the VPC and to the DynamoDB gateway endpoint, so
    // HTTPS "anywhere" reaches DynamoDB and the SQS endpoint and nothing else. (Naming the
    // gateway endpoint's prefix list would need an account lookup at synth, and synth must
    // work offline.)
    this.edgeClients.addEgressRule(
      ec2.Peer.anyIpv4(),
      ec2.Port.tcp(443),
      'DynamoDB through the gateway endpoint, SQS through the interface endpoint',
    );

    // invite and expire put IMDN reports (and invite delivery jobs) on SQS; without the
    // endpoint the isolated subnets have no way there and the call hangs.
    this.sqsEndpoint = this.vpc.addInterfaceEndpoint('Sqs', {
      service: ec2.InterfaceVpcEndpointAwsService.SQS,
      subnets: this.handlerSubnets,
      privateDnsEnabled: true,
      open: false,
    });
    this.sqsEndpoint.connections.allowFrom(this.edgeClients, ec2.Port.tcp(443), 'Handlers to SQS');
  }
}
