/**
 * A long-poll SQS consumer for the local default: what Lambda's SQS event source mapping does
 * in AWS. It receives a batch, hands it to the handler as an SQSEvent, deletes the messages the
 * handler did not report in `batchItemFailures`, and leaves the failures to reappear after the
 * visibility timeout (the queue's redrive policy moves them to the DLQ after maxReceiveCount).
 * A handler that throws fails the whole batch, as with Lambda.
 *
 * Each receive loop long-polls for ONE message, then takes whatever else is waiting without
 * waiting (Lambda's default batching window for standard queues is 0). Asking for a full batch
 * in the long poll would not do: local-aws-sqs holds a long poll until the batch is full or the
 * wait is over, and may return a message twice in one batch when the wait outlasts the
 * visibility timeout. Several loops run side by side, as Lambda runs several invocations, so a
 * delivery waiting 30 s for a client's MSRP connection does not hold up other users' jobs.
 */
import { setMaxListeners } from 'node:events';
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSMessageAttributes, SQSRecord, SQSRecordAttributes } from 'aws-lambda';

export type SqsBatchHandler = (event: SQSEvent) => Promise<SQSBatchResponse>;

export interface SqsPollerOptions {
  client: SQSClient;
  queueUrl: string;
  handler: SqsBatchHandler;
  /** Most messages per handler call, 1-10. Default 10. */
  batchSize?: number;
  /** Long-poll wait, 0-20 s. Default 20. */
  waitTimeSeconds?: number;
  /** Receive loops running side by side, each with at most one batch in flight. Default 4. */
  concurrency?: number;
  /** Pause after a failed receive before trying again. Default 1000 ms. */
  errorBackoffMs?: number;
  /** Receive, handler and delete failures (the loop goes on). Default: a line on stderr. */
  onError?: (err: unknown) => void;
}

export class SqsPoller {
  private readonly batchSize: number;
  private readonly waitTimeSeconds: number;
  private readonly errorBackoffMs: number;
  private readonly onError: (err: unknown) => void;
  private readonly concurrency: number;
  private loop: Promise<void> | undefined;
  private abort: AbortController | undefined;
  private queueArn: string | undefined;
  private region: string | undefined;

  constructor(private readonly options: SqsPollerOptions) {
    this.batchSize = clamp(options.batchSize ?? 10, 1, 10);
    this.waitTimeSeconds = clamp(options.waitTimeSeconds ?? 20, 0, 20);
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 4));
    this.errorBackoffMs = options.errorBackoffMs ?? 1000;
    this.onError = options.onError ?? ((err) => console.warn(`sqs poller ${options.queueUrl}: ${String(err)}`));
  }

  get running(): boolean {
    return this.loop !== undefined;
  }

  start(): void {
    if (this.loop) return;
    const abort = new AbortController();
    // Every loop's in-flight receive listens on this one signal: more than Node's default 10 is by design.
    setMaxListeners(0, abort.signal);
    this.abort = abort;
    const loops = Array.from({ length: this.concurrency }, () => this.run(abort.signal));
    this.loop = Promise.all(loops).then(() => undefined);
  }

  /** Stop receiving; resolves once the batches in flight (if any) are handled and deleted. */
  async stop(): Promise<void> {
    const loop = this.loop;
    if (!loop) return;
    // Aborting cuts the long poll short; a batch already received still runs to its end.
    this.abort?.abort();
    await loop;
    this.loop = undefined;
    this.abort = undefined;
  }

  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let messages: Message[];
      try {
        await this.describeQueue(signal);
        messages = await this.receive(1, this.waitTimeSeconds, signal);
      } catch (err) {
        if (signal.aborted) break;
        this.report('sqs receive failed', err);
        await sleep(this.errorBackoffMs, signal);
        continue;
      }
      if (messages.length === 0) continue;
      if (this.batchSize > 1) {
        try {
          messages.push(...(await this.receive(this.batchSize - 1, 0, signal)));
        } catch (err) {
          // The first message is received and goes to the handler alone.
          if (!signal.aborted) this.report('sqs receive failed', err);
        }
      }
      await this.handleBatch(messages);
    }
  }

  private async receive(max: number, waitTimeSeconds: number, signal: AbortSignal): Promise<Message[]> {
    const out = await this.options.client.send(
      new ReceiveMessageCommand({
        QueueUrl: this.options.queueUrl,
        MaxNumberOfMessages: max,
        WaitTimeSeconds: waitTimeSeconds,
        MessageSystemAttributeNames: ['All'],
        // The older name too: local-aws-sqs returns system attributes only for this one.
        AttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
      { abortSignal: signal },
    );
    return out.Messages ?? [];
  }

  private async describeQueue(signal: AbortSignal): Promise<void> {
    if (this.queueArn !== undefined) return;
    const out = await this.options.client.send(
      new GetQueueAttributesCommand({ QueueUrl: this.options.queueUrl, AttributeNames: ['QueueArn'] }),
      { abortSignal: signal },
    );
    this.region = await this.options.client.config.region();
    this.queueArn = out.Attributes?.QueueArn ?? '';
  }

  private async handleBatch(messages: Message[]): Promise<void> {
    const records = messages.map((m) => this.recordOf(m));
    let failed: Set<string>;
    try {
      const result = await this.options.handler({ Records: records });
      failed = new Set((result?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    } catch (err) {
      this.report('sqs batch handler failed', err);
      failed = new Set(records.map((r) => r.messageId));
    }
    const done = records.filter((r) => !failed.has(r.messageId));
    if (done.length === 0) return;
    try {
      const out = await this.options.client.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.options.queueUrl,
          Entries: done.map((r, i) => ({ Id: String(i), ReceiptHandle: r.receiptHandle })),
        }),
      );
      for (const f of out.Failed ?? []) this.report('sqs delete failed', `${f.Code} ${f.Message ?? ''}`);
    } catch (err) {
      // Not deleted: the job comes back after the visibility timeout; handlers are idempotent.
      this.report('sqs delete failed', err);
    }
  }

  /** Report a failure, saying which step failed; the original error stays as `cause`. */
  private report(what: string, err: unknown): void {
    const detail = err instanceof Error ? err.message : String(err);
    this.onError(new Error(`${what}: ${detail}`, { cause: err }));
  }

  /** An SQS record as Lambda's event source mapping builds it. */
  private recordOf(m: Message): SQSRecord {
    const a = m.Attributes ?? {};
    const attributes: SQSRecordAttributes = {
      ApproximateReceiveCount: a.ApproximateReceiveCount ?? '1',
      SentTimestamp: a.SentTimestamp ?? '',
      SenderId: a.SenderId ?? '',
      ApproximateFirstReceiveTimestamp: a.ApproximateFirstReceiveTimestamp ?? '',
      ...(a.AWSTraceHeader !== undefined ? { AWSTraceHeader: a.AWSTraceHeader } : {}),
      ...(a.SequenceNumber !== undefined ? { SequenceNumber: a.SequenceNumber } : {}),
      ...(a.MessageGroupId !== undefined ? { MessageGroupId: a.MessageGroupId } : {}),
      ...(a.MessageDeduplicationId !== undefined ? { MessageDeduplicationId: a.MessageDeduplicationId } : {}),
      ...(a.DeadLetterQueueSourceArn !== undefined ? { DeadLetterQueueSourceArn: a.DeadLetterQueueSourceArn } : {}),
    };
    const messageAttributes: SQSMessageAttributes = {};
    for (const [name, v] of Object.entries(m.MessageAttributes ?? {})) {
      messageAttributes[name] = {
        dataType: v.DataType ?? 'String',
        ...(v.StringValue !== undefined ? { stringValue: v.StringValue } : {}),
        ...(v.BinaryValue !== undefined ? { binaryValue: Buffer.from(v.BinaryValue).toString('base64') } : {}),
        stringListValues: v.StringListValues ?? [],
        binaryListValues: (v.BinaryListValues ?? []).map((b) => Buffer.from(b).toString('base64')),
      };
    }
    return {
      messageId: m.MessageId ?? '',
      receiptHandle: m.ReceiptHandle ?? '',
      body: m.Body ?? '',
      attributes,
      messageAttributes,
      md5OfBody: m.MD5OfBody ?? '',
      ...(m.MD5OfMessageAttributes !== undefined ? { md5OfMessageAttributes: m.MD5OfMessageAttributes } : {}),
      eventSource: 'aws:sqs',
      eventSourceARN: this.queueArn ?? '',
      awsRegion: this.region ?? '',
    };
  }
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, Math.floor(n)));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
