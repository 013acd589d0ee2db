/**
 * The service's queues and their dead-letter queues as data, shared by the local stack and the
 * CDK app (docs/architecture.md "Shape": deliveries are SQS jobs with a dead-letter queue).
 */

export interface QueueSpec {
  name: string;
  dlqName: string;
  /** How long a received job stays hidden from other consumers while one works on it. */
  visibilityTimeoutSeconds: number;
  /** Receives before a job moves to the DLQ. */
  maxReceiveCount: number;
  /** The DLQ keeps jobs for the longest period SQS allows (14 days), for operators to inspect. */
  dlqRetentionSeconds: number;
}

export type DeliveryQueueSpec = QueueSpec;

/**
 * Delivery jobs (one per INVITE session). A job waits up to 30 s for the client's MSRP
 * connection (protocol.md) and then sends each message, so 180 s leaves ample room.
 */
export const DELIVERY_QUEUE: QueueSpec = {
  name: 'deliveries',
  dlqName: 'deliveries-dlq',
  visibilityTimeoutSeconds: 180,
  maxReceiveCount: 5,
  dlqRetentionSeconds: 14 * 24 * 3600,
};

/**
 * Requests the service originates outside any dialog (IMDN `failed`, protocol.md "Deposit"),
 * sent by whichever edge task receives the job. One job is one SIP MESSAGE transaction, which
 * ends by Timer F at the latest (64*T1 = 32 s, RFC 3261 §17.1.2.2): 60 s covers it.
 */
export const OUTBOUND_QUEUE: QueueSpec = {
  name: 'outbound',
  dlqName: 'outbound-dlq',
  visibilityTimeoutSeconds: 60,
  maxReceiveCount: 5,
  dlqRetentionSeconds: 14 * 24 * 3600,
};
