/**
 * The whole deployment as architecture.md draws it: storage, queue and handlers, the edge on Fargate
 * behind an NLB, the dashboard and the alarms.
 */
import { CfnOutput, Fn, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import type { DeployConfig } from './config.ts';
import { Alarms } from './constructs/alarms.ts';
import { OperatorDashboard } from './constructs/dashboard.ts';
import { Edge, LISTENER_PORTS } from './constructs/edge.ts';
import { Functions } from './constructs/functions.ts';
import { Network } from './constructs/network.ts';
import { Storage } from './constructs/storage.ts';

export interface DeferredCpmStackProps extends StackProps {
  config: DeployConfig;
}

export class DeferredCpmStack extends Stack {
  readonly storage: Storage;
  readonly network: Network;
  readonly edge: Edge;
  readonly functions: Functions;
  readonly dashboard: OperatorDashboard;
  readonly alarms: Alarms;

  constructor(scope: Construct, id: string, props: DeferredCpmStackProps) {
    super(scope, id, props);
    const { config } = props;
    this.storage = new Storage(this, 'Storage');
    this.network = new Network(this, 'Network', {
      logRetentionDays: config.logRetentionDays,
      fixedEgress: config.fixedEgress,
    });
    // CONTROL_TOKEN: the bearer token the handlers present to the edges' control API.
    const controlToken = new secretsmanager.Secret(this, 'ControlToken', {
      description: 'Bearer token of the edge control API (/control/*)',
      generateSecretString: { passwordLength: 48, excludePunctuation: true },
    });
    Validations.of(controlToken).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason: 'Read once per edge task and function instance; a rotation is a redeploy of both.',
    });
    this.edge = new Edge(this, 'Edge', { config, network: this.network, controlToken });
    this.functions = new Functions(this, 'Functions', {
      config,
      controlToken,
      network: this.network,
      tables: this.storage.tables,
      advertise: {
        host: this.edge.nlb.loadBalancerDnsName,
        msrpPort: LISTENER_PORTS.msrp,
        ...(config.certificateArn ? { msrpsPort: LISTENER_PORTS.msrps } : {}),
      },
    });
    const { subscribe, invite, deposit } = this.functions.handlers;
    this.edge.invokes({ subscribe, invite, deposit });
    this.edge.sendsFrom(this.functions.queues.outbound);
    this.edge.reportsTo(this.functions.queues.delivery);
    this.dashboard = new OperatorDashboard(this, 'Operator', { edge: this.edge, functions: this.functions });
    this.alarms = new Alarms(this, 'Alarms', {
      edge: this.edge,
      functions: this.functions,
      ...(config.alarmEmail ? { alarmEmail: config.alarmEmail } : {}),
    });

    new CfnOutput(this, 'SipEndpoint', {
      description: `Point the SIP/IP Core here: UDP ${LISTENER_PORTS.sipUdp}, TCP ${LISTENER_PORTS.sipTcp}, TLS ${LISTENER_PORTS.sipTls} (with a certificate); MSRP ${LISTENER_PORTS.msrp}`,
      value: this.edge.nlb.loadBalancerDnsName,
    });
    if (config.fixedEgress) {
      new CfnOutput(this, 'EgressAddresses', {
        description: 'The Elastic IP the edge tasks send from (fixedEgress): allow-list it at the SIP/IP Core',
        value: Fn.join(',', this.network.egressAddresses),
      });
    }
    new CfnOutput(this, 'DepositUrl', {
      description: 'Operator deposit API (POST JSON, SigV4-signed for service lambda)',
      value: this.functions.depositUrl.url,
    });
    new CfnOutput(this, 'DashboardName', { value: this.dashboard.dashboard.dashboardName });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alarms.topic.topicArn });
  }
}
