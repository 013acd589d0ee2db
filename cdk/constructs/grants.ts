/**
 * Least privilege as data: for each handler, the DynamoDB actions it performs on each table
 * (and on which index), and the SQS actions on each queue. Derived from the ports each
 * handler's logic calls and the adapter behind each port (shared/adapters/dynamodb/*, sqs/*):
 *
 *   messages.put        PutItem, GetItem, UpdateItem (the message, the summary count), DeleteItem
 *                       (a message expired before TTL removed it, taken away under the same key)
 *   messages.list       Query on the `byArrival` LSI
 *   messages.count      GetItem (the summary item)
 *   messages.get        GetItem; getMany: BatchGetItem
 *   messages.claimMany/releaseMany UpdateItem; deleteMany: UpdateItem (the tombstones, the summary count)
 *   messages.listExpired nothing: messages expire by TTL only (the stream feeds `expire`)
 *   subscriptions.*     PutItem, GetItem, Query, DeleteItem, UpdateItem (renew, nextNotify);
 *                       listExpired: Query on `byExpiry`, then GetItem
 *   sessions.*          PutItem, GetItem, UpdateItem (update, claim, release, begin: the
 *                       delivery stores its job's session, the INVITE writes none)
 *   changes.userChanged subscriptions Query (which edges hold the user's watchers)
 *   queue.enqueue       SendMessage on the delivery queue
 *   outbox.failed       SendMessage on the outbound queue
 */
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { ARRIVAL_INDEX, EXPIRY_INDEX, type TableRole } from '#shared/adapters/dynamodb/tables.ts';
import type { HandlerName } from './handler-function.ts';

export interface TableAccess {
  /** Actions on the table itself. */
  actions: readonly string[];
  /** Indexes queried (Query is the only action allowed on them). */
  indexes?: readonly string[];
}

export interface HandlerAccess {
  tables: Partial<Record<TableRole, TableAccess>>;
  deliveryQueue?: readonly string[];
  /** The IMDN failure reports the edge sends (ImdnOutbox). */
  outboundQueue?: readonly string[];
  /** Reads the table descriptions for the stored-item gauges. */
  describeTables?: readonly TableRole[];
}

export const HANDLER_ACCESS: Readonly<Record<HandlerName, HandlerAccess>> = {
  subscribe: {
    tables: {
      messages: { actions: ['dynamodb:GetItem'], indexes: [ARRIVAL_INDEX] },
      subscriptions: {
        actions: [
          'dynamodb:PutItem',
          'dynamodb:GetItem',
          'dynamodb:Query',
          'dynamodb:DeleteItem',
          'dynamodb:UpdateItem',
        ],
      },
    },
  },
  invite: {
    tables: {
      messages: { actions: ['dynamodb:BatchGetItem', 'dynamodb:UpdateItem'] },
      // changes.userChanged after a `delete`: which tasks hold the user's watchers.
      subscriptions: { actions: ['dynamodb:Query'] },
    },
    deliveryQueue: ['sqs:SendMessage'],
    outboundQueue: ['sqs:SendMessage'],
  },
  deposit: {
    tables: {
      messages: {
        actions: ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
        indexes: [ARRIVAL_INDEX],
      },
      subscriptions: { actions: ['dynamodb:Query'] },
    },
  },
  deliver: {
    tables: {
      messages: { actions: ['dynamodb:UpdateItem'] },
      sessions: { actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'] },
      subscriptions: { actions: ['dynamodb:Query'] },
    },
  },
  expire: {
    tables: {
      messages: { actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'], indexes: [ARRIVAL_INDEX] },
      subscriptions: {
        actions: ['dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
        indexes: [EXPIRY_INDEX],
      },
    },
    describeTables: ['messages', 'subscriptions'],
    outboundQueue: ['sqs:SendMessage'],
  },
};

/** Attach one handler's grants to its role, each statement naming its table, index or queue. */
export function grantHandlerAccess(
  role: iam.IRole,
  access: HandlerAccess,
  tables: Record<TableRole, dynamodb.ITable>,
  queues: { delivery: sqs.IQueue; outbound: sqs.IQueue },
): void {
  for (const [role_, spec] of Object.entries(access.tables) as [TableRole, TableAccess][]) {
    const table = tables[role_];
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: [...spec.actions], resources: [table.tableArn] }));
    if (spec.indexes?.length) {
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['dynamodb:Query'],
          resources: spec.indexes.map((name) => `${table.tableArn}/index/${name}`),
        }),
      );
    }
  }
  if (access.describeTables?.length) {
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:DescribeTable'],
        resources: access.describeTables.map((r) => tables[r].tableArn),
      }),
    );
  }
  if (access.deliveryQueue?.length) {
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: [...access.deliveryQueue], resources: [queues.delivery.queueArn] }),
    );
  }
  if (access.outboundQueue?.length) {
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: [...access.outboundQueue], resources: [queues.outbound.queueArn] }),
    );
  }
}
