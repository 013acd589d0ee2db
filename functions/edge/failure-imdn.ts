/**
 * protocol.md "Deposit": a message that expires (or is deleted) undelivered earns its sender an
 * IMDN `failed` when the sender asked for `negative-delivery` (RFC 5438 §7.2.1.1), carried in a
 * SIP MESSAGE (RFC 3428) whose body is the CPIM wrapping the notification. It goes to the
 * configured outbound proxy (the SIP/IP Core), else straight to an address-literal host.
 * Handlers only queue the report (shared/ports.ts ImdnOutbox); the edge sends it from the queue.
 */
import { randomHex } from '#shared/random.ts';
import { isIP } from 'node:net';
import type { SQSBatchItemFailure } from 'aws-lambda';
import { newUlid } from '#shared/deferred/ids.ts';
import { parseFailureImdnJob } from '#shared/adapters/imdn-job.ts';
import type { SqsBatchHandler } from '#shared/adapters/sqs/poller.ts';
import { serviceUri } from '#shared/config.ts';
import { failedDeliveryImdn } from '#shared/deferred/message.ts';
import type { FailureImdnJob } from '#shared/deferred/model.ts';
import { getHeader, parseUri } from '#shared/sip/messages/index.ts';
import type { SipRequest, SipUri } from '#shared/sip/messages/types.ts';
import type { Target, TransportName } from '#shared/sip/transport/index.ts';
import type { RequestSender } from './in-dialog-sender.ts';
import type { LogFn } from './edge.ts';

/** How a report ended that needs no further try: a final response (any status), or no route. */
export type FailureImdnOutcome = { kind: 'answered'; status: number } | { kind: 'no-route' };

/**
 * The MESSAGE never reached the next hop: Timer F (408) or a transport error (503 without
 * Retry-After), as RFC 3261 §8.1.3.1 reports them. Worth another try later.
 */
export class FailureImdnNotSentError extends Error {
  constructor(
    readonly status: number,
    readonly to: string,
  ) {
    super(`IMDN failure report to ${to} not sent: ${status}`);
    this.name = 'FailureImdnNotSentError';
  }
}

export function makeFailureImdnSender(deps: {
  transactions: RequestSender;
  domain: string;
  outboundProxy?: string;
  log: LogFn;
  onSent?: (status: number) => void;
}): (job: FailureImdnJob) => Promise<FailureImdnOutcome> {
  return async (job) => {
    const target = targetFor(deps.outboundProxy ?? job.from);
    if (!target) {
      deps.log('warn', 'no route for an IMDN failure report', { to: job.from, messageId: job.messageId });
      deps.onSent?.(0);
      return { kind: 'no-route' };
    }
    const imdn = failedDeliveryImdn(job, { now: new Date(), messageId: newUlid() });
    const request: SipRequest = {
      kind: 'request',
      method: 'MESSAGE',
      uri: imdn.to,
      headers: [
        { name: 'Max-Forwards', value: '70' },
        { name: 'From', value: `<${serviceUri(deps.domain)}>;tag=${randomHex(6)}` },
        { name: 'To', value: `<${imdn.to}>` },
        { name: 'Call-ID', value: `${randomHex(10)}@${deps.domain}` },
        { name: 'CSeq', value: '1 MESSAGE' },
        { name: 'Content-Type', value: imdn.contentType },
      ],
      body: imdn.cpim,
    };
    const response = await deps.transactions.request(request, target);
    deps.onSent?.(response.status);
    if (response.status === 408 || (response.status === 503 && getHeader(response, 'Retry-After') === undefined)) {
      throw new FailureImdnNotSentError(response.status, imdn.to);
    }
    return { kind: 'answered', status: response.status };
  };
}

/**
 * The outbound queue's consumer: each job becomes one report. A job that got a final response
 * or has no route is done (deleted); one not sent, or not a job at all, is reported as a batch
 * item failure, so SQS offers it again and finally keeps it in the DLQ.
 */
export function makeFailureImdnQueueHandler(deps: {
  send: (job: FailureImdnJob) => Promise<FailureImdnOutcome>;
  log: LogFn;
}): SqsBatchHandler {
  return async (event) => {
    const failed: SQSBatchItemFailure[] = [];
    await Promise.all(
      event.Records.map(async (record) => {
        const job = parseFailureImdnJob(record.body);
        if (!job) {
          deps.log('error', 'not an IMDN job; left for the dead-letter queue', { sqsMessageId: record.messageId });
          failed.push({ itemIdentifier: record.messageId });
          return;
        }
        try {
          await deps.send(job);
        } catch (err) {
          deps.log('warn', 'IMDN failure report not sent; queued again', {
            to: job.from,
            messageId: job.messageId,
            receiveCount: record.attributes.ApproximateReceiveCount,
            error: String(err),
          });
          failed.push({ itemIdentifier: record.messageId });
        }
      }),
    );
    return { batchItemFailures: failed };
  };
}

/** RFC 3263 without DNS: only an address-literal host can be reached directly. */
function targetFor(uriText: string): Target | undefined {
  const uri = parseUri(uriText);
  if (!uri || (uri.scheme !== 'sip' && uri.scheme !== 'sips')) return undefined;
  const sip = uri as SipUri;
  const host = sip.host.replace(/^\[|\]$/g, '');
  if (isIP(host) === 0) return undefined;
  const param = sip.params.transport?.toLowerCase();
  const transport: TransportName =
    sip.scheme === 'sips' ? 'tls' : param === 'tcp' ? 'tcp' : param === 'tls' ? 'tls' : 'udp';
  return { transport, address: host, port: sip.port ?? (transport === 'tls' ? 5061 : 5060) };
}
