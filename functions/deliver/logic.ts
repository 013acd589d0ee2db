/**
 * The delivery consumer (step 14 of Figure 30): one SQS job per INVITE session, in two steps so
 * that no function is billed while the client answers. The job's step takes the session, claims
 * the messages it retrieves and hands them to the edge task holding the session's MSRP
 * connection (EdgeGateway.transfer); that edge SENDs them and queues a DeliveryReport on the same
 * queue. The report's step settles it: each message leaves the store only after the client's 200
 * to its last chunk (protocol.md "Delivery over MSRP"), the rest are given back, then BYE.
 * Every retry is idempotent: a message already delivered is no longer in the store.
 */
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type {
  DeliveryJob,
  DeliveryReport,
  DeliverySession,
  DeliveryTransfer,
  TransferredMessage,
} from '#shared/deferred/model.ts';
import {
  storedBytes,
  type ChangeFeed,
  type DeferredMessageStore,
  type DeliverySessionStore,
  type EdgeGateway,
} from '#shared/ports.ts';

export interface DeliverDeps {
  messages: DeferredMessageStore;
  sessions: DeliverySessionStore;
  edge: EdgeGateway;
  changes: ChangeFeed;
  now: () => number;
  /** Counters for operators. */
  onDelivered?: (latencyMs: number, message: { user: string; id: string; from: string }) => void;
  onFailed?: (status: number) => void;
  /**
   * How long one attempt holds a session (seconds). Default 600: past the messages' lease, within
   * which the edge reports and the report is settled, so no live attempt loses it, yet under the
   * AWS queue's 18 min visibility, so a redelivery after a crashed attempt takes over. Each
   * message is leased to its session (a retry of the same session takes it again).
   */
  leaseSeconds?: number;
  /**
   * How long a delivery holds each message it claimed (Policy.deliveryLeaseSeconds, default
   * 180): the edge starts no SEND in its last TRANSFER_DEADLINE_MARGIN_MS, so the report is
   * settled before another pull may claim the message.
   */
  messageLeaseSeconds?: number;
}

export const DEFAULT_LEASE_SECONDS = 600;

/**
 * CPIM bytes per hand-off call: a session's messages go to its edge in parts of at most this
 * (a message is at most 256 KiB), so a control call, base64 and all, stays under the edge's 1 MiB
 * body limit whatever the session retrieves.
 */
export const TRANSFER_PART_BYTES = 512 * 1024;

/**
 * The edge starts no SEND later than this before the claims' leases end: one SEND may take its
 * MSRP transaction timeout (30 s) and its report must be settled before another pull may claim.
 */
export const TRANSFER_DEADLINE_MARGIN_MS = 45_000;

export interface DeliveryOutcome {
  delivered: string[];
  /** Left deferred, with the status that stopped each. */
  failed: { id: string; status: number }[];
}

/**
 * A delivery job's step: take the session, claim its messages and hand them to the edge, which
 * reports back on the delivery queue. A session with nothing left to send is settled at once.
 * Resolves with the ids handed over.
 */
export async function deliverSession(deps: DeliverDeps, job: DeliveryJob): Promise<string[]> {
  // SQS may hand the same job to two attempts at once (visibility timeout, Lambda retry): only
  // the one that takes the lease delivers, so the client never sees SENDs or BYE twice.
  const nowSec = Math.floor(deps.now() / 1000);
  const leaseSeconds = deps.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
  const session = job.session ?? (await deps.sessions.get(job.sessionId));
  if (!session || session.expiresAt <= nowSec) return [];
  const byeCSeq = await deps.sessions.begin(session, nowSec, leaseSeconds);
  if (byeCSeq === undefined) return [];
  const claimed: TransferredMessage[] = [];
  try {
    return await handOff(deps, job, session, byeCSeq, claimed);
  } catch (err) {
    // The record is retried (batch item failure): let that retry in now rather than after the
    // lease, with the messages not handed over given back (the edge sends a message once per session).
    await deps.messages
      .releaseMany(
        session.user,
        claimed.map((m) => m.id),
        session.sessionId,
      )
      .catch(() => undefined);
    await deps.sessions.release(job.sessionId, nowSec + leaseSeconds).catch(() => undefined);
    throw err;
  }
}

async function handOff(
  deps: DeliverDeps,
  job: DeliveryJob,
  session: DeliverySession,
  byeCSeq: number,
  claimed: TransferredMessage[],
): Promise<string[]> {
  const leaseSeconds = deps.messageLeaseSeconds ?? 180;
  const claimedAt = deps.now();
  // One delivery at a time per message (issue 11): two sessions of the same user naming it race
  // on its conditional claim; the loser skips it, the winner delivers it or gives it back. The
  // session's claims are one call (one read and in-memory leases in the local store; DynamoDB
  // runs its conditional writes side by side), answered in the order to deliver; a message gone, expired or held by another session
  // is left out.
  const nowSec = Math.floor(claimedAt / 1000);
  const claims = await deps.messages.claimMany(session.user, session.retrieve, session.sessionId, nowSec, leaseSeconds);
  for (const m of claims) {
    claimed.push({ id: m.id, cpim: m.cpim, arrivedAt: m.arrivedAt, from: m.from, bytes: storedBytes(m) });
  }
  const head = {
    user: session.user,
    sessionId: session.sessionId,
    edgeId: job.edgeId,
    dialog: session.dialog,
    byeCSeq,
  };
  if (claimed.length === 0) {
    await settleReport(deps, { type: 'delivery-report', ...head, results: [] });
    return [];
  }
  const deadline = claimedAt + Math.max(leaseSeconds * 500, leaseSeconds * 1000 - TRANSFER_DEADLINE_MARGIN_MS);
  const parts = splitBySize(claimed, TRANSFER_PART_BYTES);
  const handed: string[] = [];
  for (const [i, messages] of parts.entries()) {
    const transfer: DeliveryTransfer = { ...head, deadline, messages, final: i === parts.length - 1 };
    await deps.edge.transfer(job.edgeId, transfer);
    // The edge holds these now and reports them: not given back on a later failure.
    claimed.splice(0, messages.length);
    handed.push(...messages.map((m) => m.id));
  }
  return handed;
}

/** Consecutive parts of at most `maxBytes` CPIM bytes each (a bigger message goes alone). */
function splitBySize(messages: TransferredMessage[], maxBytes: number): TransferredMessage[][] {
  const parts: TransferredMessage[][] = [];
  let part: TransferredMessage[] = [];
  let bytes = 0;
  for (const m of messages) {
    if (part.length > 0 && bytes + m.cpim.byteLength > maxBytes) {
      parts.push(part);
      part = [];
      bytes = 0;
    }
    part.push(m);
    bytes += m.cpim.byteLength;
  }
  if (part.length > 0) parts.push(part);
  return parts;
}

/**
 * A report's step: delete the messages the client answered 200 (counted off the user's summary
 * together), give the rest back, close the session's MSRP binding, end the session with BYE and
 * tell the watchers. A report settled twice (SQS delivers at least once) finds nothing left to
 * change: it deletes, releases and counts nothing more, tells no watcher, and its BYE is not
 * sent again (the edge sends one per dialog).
 */
export async function settleReport(deps: DeliverDeps, report: DeliveryReport): Promise<DeliveryOutcome> {
  const outcome: DeliveryOutcome = { delivered: [], failed: [] };
  // Delivered: removed, and counted off the user's summary with them. Not delivered: given back,
  // so the next session need not wait out the lease. One call each (the local store's deletes are
  // one write, its releases none; DynamoDB runs their writes side by side); each says which
  // messages this settle changed.
  const delivered = report.results.filter((r) => r.status === 200).map((r) => r.id);
  const notDelivered = report.results.filter((r) => r.status !== 200).map((r) => r.id);
  const [deleted, released] = await Promise.all([
    deps.messages.deleteMany(report.user, delivered),
    deps.messages.releaseMany(report.user, notDelivered, report.sessionId),
  ]);
  const changed = new Set([...deleted, ...released]);
  for (const result of report.results) {
    const { id, status } = result;
    if (status !== 200) {
      outcome.failed.push({ id, status });
      // Counted by the settle that gave it back, not again by a repeated one.
      if (result.sent && changed.has(id)) deps.onFailed?.(status);
      continue;
    }
    outcome.delivered.push(id);
    // A report settled again finds it gone: not reported delivered twice.
    if (!changed.has(id)) continue;
    deps.onDelivered?.(deps.now() - Date.parse(result.arrivedAt), { user: report.user, id, from: result.from });
  }

  await deps.edge.closeSession(report.edgeId, report.sessionId);
  // When every retrieval has ended the service sends BYE (protocol.md).
  await deps.edge
    .send(report.edgeId, { method: 'BYE', dialog: report.dialog, cseq: report.byeCSeq, headers: [] })
    .catch(() => undefined);
  // Delivered messages left the list; failed ones stay, and the watchers hear of both. Nothing
  // changed (a repeated report, or a session that claimed nothing): nothing to tell.
  if (changed.size > 0) await deps.changes.userChanged(report.user);
  return outcome;
}

/** A delivery queue record: a session to hand off, or an edge's report to settle. */
function isReport(body: DeliveryJob | DeliveryReport): body is DeliveryReport {
  return (body as DeliveryReport).type === 'delivery-report';
}

/**
 * The delivery queue's consumer (what Lambda's event source mapping calls), with `settle`: a
 * report's step on its own, for an edge that runs this handler in its own process (the local
 * default) and so can settle its report at once, without a queue's round trip (a row written,
 * read back, parsed and deleted); a report it could not settle still goes on the queue.
 */
export function makeHandler(deps: DeliverDeps) {
  const deliver = async function deliver(event: SQSEvent): Promise<SQSBatchResponse> {
    // Each record is its own session: run them side by side.
    const outcomes = await Promise.allSettled(
      event.Records.map(async (record) => {
        const body = JSON.parse(record.body) as DeliveryJob | DeliveryReport;
        return isReport(body) ? settleReport(deps, body) : deliverSession(deps, body);
      }),
    );
    // A rejected one could not reach the edge or the store: SQS redelivers, then the DLQ keeps it.
    const batchItemFailures = event.Records.filter((_, i) => outcomes[i]!.status === 'rejected').map((record) => ({
      itemIdentifier: record.messageId,
    }));
    return { batchItemFailures };
  };
  return Object.assign(deliver, { settle: (report: DeliveryReport) => settleReport(deps, report) });
}
