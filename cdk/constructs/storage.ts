/**
 * The three DynamoDB tables (docs/architecture.md "Data"), built from the same table specs the local
 * default creates dynalite tables from: on-demand, TTL on `expiresAt`, point-in-time recovery,
 * deletion protection, kept when the stack is deleted. The messages table streams removed items to `expire`.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import {
  TABLE_SPECS,
  type IndexSpec,
  type KeyAttribute,
  type TableRole,
  type TableSpec,
} from '#shared/adapters/dynamodb/tables.ts';

function attribute(key: KeyAttribute): dynamodb.Attribute {
  const type = {
    S: dynamodb.AttributeType.STRING,
    N: dynamodb.AttributeType.NUMBER,
    B: dynamodb.AttributeType.BINARY,
  }[key.type];
  return { name: key.name, type };
}

/** The CDK projection props of an index spec (INCLUDE names its non-key attributes). */
function projection(index: IndexSpec): { projectionType: dynamodb.ProjectionType; nonKeyAttributes?: string[] } {
  if (index.projection === 'INCLUDE') {
    return { projectionType: dynamodb.ProjectionType.INCLUDE, nonKeyAttributes: [...(index.nonKeyAttributes ?? [])] };
  }
  return {
    projectionType: index.projection === 'ALL' ? dynamodb.ProjectionType.ALL : dynamodb.ProjectionType.KEYS_ONLY,
  };
}

export class Storage extends Construct {
  readonly tables: Record<TableRole, dynamodb.Table>;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.tables = {
      // The old image is what `expire` needs of a TTL removal: who it was for, who sent it, and
      // whether the sender asked for a negative-delivery IMDN.
      messages: this.table('Messages', TABLE_SPECS.messages, dynamodb.StreamViewType.OLD_IMAGE),
      subscriptions: this.table('Subscriptions', TABLE_SPECS.subscriptions),
      sessions: this.table('Sessions', TABLE_SPECS.sessions),
    };
  }

  private table(id: string, spec: TableSpec, stream?: dynamodb.StreamViewType): dynamodb.Table {
    const table = new dynamodb.Table(this, id, {
      partitionKey: attribute(spec.partitionKey),
      ...(spec.sortKey ? { sortKey: attribute(spec.sortKey) } : {}),
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: spec.ttlAttribute,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // Messages are users' data: deleting the stack must not delete them.
      removalPolicy: RemovalPolicy.RETAIN,
      // Nor may a stray delete-table call (console, script, a replacement): turn it off first.
      deletionProtection: true,
      ...(stream ? { stream } : {}),
    });
    for (const index of spec.globalIndexes) {
      table.addGlobalSecondaryIndex({
        indexName: index.indexName,
        partitionKey: attribute(index.partitionKey ?? spec.partitionKey),
        sortKey: attribute(index.sortKey),
        ...projection(index),
      });
    }
    for (const index of spec.localIndexes) {
      table.addLocalSecondaryIndex({
        indexName: index.indexName,
        sortKey: attribute(index.sortKey),
        ...projection(index),
      });
    }
    return table;
  }
}
