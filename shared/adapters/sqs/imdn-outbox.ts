/**
 * ImdnOutbox over SQS: one message per IMDN `failed`, the job as its JSON body. The job holds
 * what the notification names (RFC 5438 §7.2.1.1), not the payload: a stored CPIM may exceed
 * SQS's message size and the sender gets none of it back anyway.
 */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { DeferredMessageEntry, FailureImdnJob } from '#shared/deferred/model.ts';
import type { ImdnOutbox } from '#shared/ports.ts';

const JOB_FIELDS = ['user', 'id', 'messageId', 'from', 'to', 'date'] as const;

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

/** The job for a message: its metadata fields only. */
export function failureImdnJob(message: FailureImdnJob): FailureImdnJob {
  const { user, id, messageId, from, to, date } = message;
  return { user, id, messageId, from, to, date };
}

/** A queued job read back; undefined when the body is not one (each field a non-empty string). */
export function parseFailureImdnJob(body: string): FailureImdnJob | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Record<string, unknown>;
  for (const field of JOB_FIELDS) {
    if (typeof record[field] !== 'string' || record[field] === '') return undefined;
  }
  return failureImdnJob(record as unknown as FailureImdnJob);
}
