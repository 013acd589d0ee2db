/** DeliveryQueue over SQS: one message per job or edge report, as its JSON body. */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { DeliveryJob, DeliveryReport } from '#shared/deferred/model.ts';
import type { DeliveryQueue } from '#shared/ports.ts';

export class SqsDeliveryQueue implements DeliveryQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async enqueue(job: DeliveryJob): Promise<void> {
    // The job carries the session (the delivery stores it as it takes it): keep it, or nothing delivers.
    const body: DeliveryJob = {
      user: job.user,
      sessionId: job.sessionId,
      edgeId: job.edgeId,
      ...(job.session ? { session: job.session } : {}),
    };
    await this.client.send(new SendMessageCommand({ QueueUrl: this.queueUrl, MessageBody: JSON.stringify(body) }));
  }

  /** Sent by the edge task (its role may send to this queue); a few hundred bytes per message named. */
  async report(report: DeliveryReport): Promise<void> {
    await this.client.send(new SendMessageCommand({ QueueUrl: this.queueUrl, MessageBody: JSON.stringify(report) }));
  }
}
