/**
 * The VPC: public subnets for the NLB and the edge tasks (which reach AWS APIs through the
 * internet gateway, so no NAT gateway is paid for), isolated subnets for the handlers that
 * must reach the edge's control API, and a DynamoDB gateway endpoint (free) so those handlers
 * reach their tables without leaving the VPC.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/** The edge's private control API (ADMIN_PORT): health, metrics, /control/*. */
export const ADMIN_PORT = 8080;

export interface NetworkProps {
  logRetentionDays: number;
}

export class Network extends Construct {
  readonly vpc: ec2.Vpc;
  /** Handlers that call the edge (deliver, expire, deposit) run here. */
  readonly handlerSubnets: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
  /** Security group of the handlers that call the edge's control API. */
  readonly edgeClients: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'handlers', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      gatewayEndpoints: {
        DynamoDb: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB, subnets: [this.handlerSubnets] },
      },
    });
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
      description: 'Handlers that call the edge control API (deliver, expire, deposit)',
      allowAllOutbound: false,
    });
    // The isolated subnets route only inside the VPC and to the DynamoDB gateway endpoint, so
    // HTTPS "anywhere" reaches DynamoDB and nothing else. (Naming the endpoint's prefix list
    // would need an account lookup at synth, and synth must work offline.)
    this.edgeClients.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'DynamoDB through the gateway endpoint');
  }
}
