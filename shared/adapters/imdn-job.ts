/**
 * An outbound IMDN `failed` job as queued (SQS in AWS, the SQLite job table locally): what the
 * notification names (RFC 5438 §7.2.1.1), never the payload, as JSON.
 */
import type { FailureImdnJob } from '#shared/deferred/model.ts';

const JOB_FIELDS = ['user', 'id', 'messageId', 'from', 'to', 'date'] as const;

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
