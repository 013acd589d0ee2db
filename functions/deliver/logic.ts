/**
 * The delivery consumer (step 14 of Figure 30): one SQS job per INVITE session. Each retrieved
 * message goes over the session's MSRP connection, held by the edge task named in the job, and
 * leaves the store only after the client's 200 to its last chunk (protocol.md "Delivery over
 * MSRP"). Every retry is idempotent: a message already delivered is no longer in the store.
 */
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { DeferredMessage, DeliveryJob, DeliverySession } from '#shared/deferred/model.ts';
import {
  storedBytes,
  type ChangeFeed,
  type DeferredMessageStore,
  type DeliverySessionStore,
  type EdgeGateway,
  type Removed,
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
   * How long one attempt holds a session (seconds). Default 600: past the deliver Lambda's 3 min
   * timeout (30 s connect, the transfers, BYE), so no live attempt loses it, yet under the AWS
   * queue's 18 min visibility, so a redelivery after a crashed attempt takes over. Each
   * message is leased as long, to its session (a retry of the same session takes it again).
   */
  leaseSeconds?: number;
  /**
   * How long a delivery holds each message it claimed (Policy.deliveryLeaseSeconds, default
   * 180: the deliver function's timeout, which no live transfer outlives).
   */
  messageLeaseSeconds?: number;
}

export const DEFAULT_LEASE_SECONDS = 600;

export interface DeliveryOutcome {
  delivered: string[];
  /** Left deferred, with the status that stopped each. */
  failed: { id: string; status: number }[];
}

/** Deliver one session's retrievals, then end the session with BYE. */
export async function deliverSession(deps: DeliverDeps, job: DeliveryJob): Promise<DeliveryOutcome> {
  const outcome: DeliveryOutcome = { delivered: [], failed: [] };
  // SQS may hand the same job to two attempts at once (visibility timeout, Lambda retry): only
  // the one that takes the lease delivers, so the client never sees SENDs or BYE twice.
  const nowSec = Math.floor(deps.now() / 1000);
  const leaseSeconds = deps.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
  const session = job.session ?? (await deps.sessions.get(job.sessionId));
  if (!session || session.expiresAt <= nowSec) return outcome;
  const byeCSeq = await deps.sessions.begin(session, nowSec, leaseSeconds);
  if (byeCSeq === undefined) return outcome;
  try {
    return await deliverClaimed(deps, job, session, byeCSeq, outcome);
  } catch (err) {
    // The record is retried (batch item failure): let that retry in now rather than after the lease.
    await deps.sessions.release(job.sessionId, nowSec + leaseSeconds).catch(() => undefined);
    throw err;
  }
}

async function deliverClaimed(
  deps: DeliverDeps,
  job: DeliveryJob,
  session: DeliverySession,
  byeCSeq: number,
  outcome: DeliveryOutcome,
): Promise<DeliveryOutcome> {
  const removed: Removed = { messages: 0, bytes: 0 };
  const leaseSeconds = deps.messageLeaseSeconds ?? 180;
  // One delivery at a time per message (issue 11): two sessions of the same user naming it race
  // on its conditional write; the loser skips it, the winner delivers it or gives it back. The
  // session's claims are asked for together (the local store commits them as one; DynamoDB
  // runs them side by side), in the order to deliver.
  const nowSec = Math.floor(deps.now() / 1000);
  const claims = await Promise.all(
    session.retrieve.map((id) => deps.messages.claim(session.user, id, session.sessionId, nowSec, leaseSeconds)),
  );
  // A message gone, expired or held by another session is skipped.
  const claimed = claims.filter((m): m is DeferredMessage => m !== undefined);
  const giveBack = (rest: readonly DeferredMessage[]) =>
    Promise.all(rest.map((m) => deps.messages.release(session.user, m.id, session.sessionId)));
  const attempt = (m: DeferredMessage): Promise<{ status: number } | { err: unknown }> =>
    deps.edge.deliver(job.edgeId, session.sessionId, { id: m.id, cpim: m.cpim }).catch((err: unknown) => ({ err }));
  // An edge that keeps call order gets every message at once (pipelined on the MSRP connection);
  // otherwise each waits for the status of the one before.
  const pipelined = deps.edge.ordered === true;
  const sent = pipelined ? claimed.map(attempt) : [];
  // Each delivered message is deleted as its 200 comes, without holding up the next SEND.
  const deletions: Promise<void>[] = [];
  let deleteFailed: { err: unknown } | undefined;
  let unreachable: { err: unknown } | undefined;
  for (const [i, message] of claimed.entries()) {
    const { id } = message;
    const result = await (sent[i] ?? attempt(message));
    if ('err' in result) {
      // The edge could not be reached: the attempt fails (and is retried); what it did not
      // deliver is given back. Pipelined ones after it have statuses of their own.
      unreachable ??= result;
      await giveBack(pipelined ? [message] : claimed.slice(i)).catch(() => undefined);
      if (pipelined) continue;
      break;
    }
    const { status } = result;
    if (status === 200) {
      deletions.push(
        // Counted off once for the session, below.
        deps.messages.delete(session.user, id, { countLater: true }).then(
          (gone) => {
            if (gone) {
              removed.messages++;
              removed.bytes += storedBytes(message);
            }
          },
          (err: unknown) => {
            deleteFailed ??= { err };
          },
        ),
      );
      outcome.delivered.push(id);
      deps.onDelivered?.(deps.now() - Date.parse(message.arrivedAt), { user: session.user, id, from: message.from });
      continue;
    }
    outcome.failed.push({ id, status });
    deps.onFailed?.(status);
    // Sent one at a time, no connection, no answer or a closed connection: the rest cannot go
    // either. Pipelined, the rest were sent and each has its own status.
    const stopped = !pipelined && (status === 408 || status === 481);
    const rest = stopped ? claimed.slice(i) : [message];
    if (stopped) for (const left of rest.slice(1)) outcome.failed.push({ id: left.id, status });
    // Not delivered: give it back so the next session need not wait out the lease.
    await giveBack(rest);
    if (stopped) break;
  }
  await Promise.all(deletions);
  if (unreachable) throw unreachable.err;
  // A delete that failed fails the attempt (retried; what was deleted stays deleted).
  if (deleteFailed) throw deleteFailed.err;

  // One count update for the session's deliveries (a crash before it: the sweep recounts).
  await deps.messages.uncount(session.user, removed);
  await deps.edge.closeSession(job.edgeId, session.sessionId);
  // When every retrieval has ended the service sends BYE (protocol.md).
  await deps.edge
    .send(job.edgeId, { method: 'BYE', dialog: session.dialog, cseq: byeCSeq, headers: [] })
    .catch(() => undefined);
  // Delivered messages left the list; failed ones stay, and the watchers hear of both.
  await deps.changes.userChanged(session.user);
  return outcome;
}

export function makeHandler(deps: DeliverDeps) {
  return async function deliver(event: SQSEvent): Promise<SQSBatchResponse> {
    // Each record is its own session waiting on its own client: run them side by side, so one
    // slow client does not hold the others' deliveries.
    const outcomes = await Promise.allSettled(
      event.Records.map(async (record) => deliverSession(deps, JSON.parse(record.body) as DeliveryJob)),
    );
    // A rejected one could not reach the edge or the store: SQS redelivers, then the DLQ keeps it.
    const batchItemFailures = event.Records.filter((_, i) => outcomes[i]!.status === 'rejected').map((record) => ({
      itemIdentifier: record.messageId,
    }));
    return { batchItemFailures };
  };
}
