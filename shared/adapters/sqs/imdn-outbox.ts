/**
 * ImdnOutbox over SQS: one message per IMDN `failed`, the job as its JSON body. The job holds
 * what the notification names (RFC 5438 §7.2.1.1), not the payload: a stored CPIM may exceed
 * SQS's message size and the sender gets none of it back anyway.
 */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { DeferredMessageEntry } from '#shared/deferred/model.ts';
import type { ImdnOutbox } from '#shared/ports.ts';
import { failureImdnJob } from '#shared/adapters/imdn-job.ts';

export { failureImdnJob, parseFailureImdnJob } from '#shared/adapters/imdn-job.ts';

export class SqsImdnOutbox implements ImdnOutbox {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async failed(message: DeferredMessageEntry): Promise<void> {
    await this.client.send(
      new SendMessageCommand({ QueueUrl: this.queueUrl, MessageBody: JSON.stringify(failureImdnJob(message)) }),
    );
  }
}
