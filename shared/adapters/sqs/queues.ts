/**
 * The delivery queue and its dead-letter queue as data, shared by the local stack and the CDK
 * app (design.md "Shape": deliveries are SQS jobs with a dead-letter queue).
 */

export interface DeliveryQueueSpec {
  name: string;
  dlqName: string;
  /**
   * How long a received job stays hidden. A job waits up to 30 s for the client's MSRP
   * connection (protocol.md) and then sends each message, so this leaves ample room.
   */
  visibilityTimeoutSeconds: number;
  /** Receives before a job moves to the DLQ. */
  maxReceiveCount: number;
  /** The DLQ keeps jobs for the longest period SQS allows (14 days), for operators to inspect. */
  dlqRetentionSeconds: number;
}

export const DELIVERY_QUEUE: DeliveryQueueSpec = {
  name: 'deliveries',
  dlqName: 'deliveries-dlq',
  visibilityTimeoutSeconds: 180,
  maxReceiveCount: 5,
  dlqRetentionSeconds: 14 * 24 * 3600,
};
