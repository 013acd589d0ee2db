/**
 * The edge's side of a delivery hand-off (EdgeGateway.transfer): the MSRP SENDs of the messages
 * `deliver` claimed, run here, where the session's MSRP connection is, so no function is billed
 * while the client answers. One run per session: its parts' messages are sent in order, each
 * once; a 408 (no connection or no answer in time) or 481 (session gone) stops the run, as does
 * the deadline (the claims' leases end after it). Once the final part is sent, or at the
 * deadline, the run queues one DeliveryReport on the delivery queue for `deliver` to settle.
 * Anything never reported (this task died) stays claimed until its lease ends, then a later pull
 * delivers it: nothing is lost, and nothing is deleted here.
 */
import type { DeliveryReport, DeliveryResult, DeliveryTransfer, TransferredMessage } from '#shared/deferred/model.ts';

export interface TransferRunnerDeps {
  /** One MSRP transfer (MsrpListener.deliver): the client's status for the last chunk. */
  send(sessionId: string, message: { id: string; cpim: Uint8Array }): Promise<{ status: number }>;
  /**
   * The sender keeps call order per session (the edge's MSRP listener, which pipelines): every
   * SEND a run has is started at once, each settled by its own status. Otherwise each waits for
   * the status of the one before, and a 408/481 leaves the rest unsent.
   */
  pipelined?: boolean;
  /** Queue the run's report (DeliveryQueue.report). */
  report(report: DeliveryReport): Promise<void>;
  /** Epoch milliseconds. */
  now?: () => number;
  /** A report that could not be queued after its retries (its messages wait out their leases). */
  onError?: (sessionId: string, err: unknown) => void;
  /** Attempts to queue a report. Default 3, 1 s apart and doubling. */
  reportAttempts?: number;
  reportRetryDelayMs?: number;
}

interface Run {
  head: Omit<DeliveryTransfer, 'messages' | 'final'>;
  pending: TransferredMessage[];
  seen: Set<string>;
  results: DeliveryResult[];
  final: boolean;
  /** The status that stopped the run (408/481): the rest are reported unsent with it. */
  stopped?: number;
  /** SENDs under way (pump runs). */
  busy: boolean;
  /** Reported: a SEND that answers later changes nothing (its message waits out its lease). */
  done: boolean;
  pump?: Promise<void>;
  timer: NodeJS.Timeout;
}

export class TransferRunner {
  private readonly runs = new Map<string, Run>();
  /** Sessions already reported, until their deadline: a late repeat of a part sends nothing. */
  private readonly reported = new Map<string, number>();
  private readonly now: () => number;
  private readonly reports = new Set<Promise<void>>();
  private stopping = false;

  constructor(private readonly deps: TransferRunnerDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Take one part of a session's hand-off; its SENDs run in the background. */
  accept(transfer: DeliveryTransfer): void {
    const now = this.now();
    // Oldest first (the map keeps the order they were reported in): stop at the first still due.
    for (const [sessionId, deadline] of this.reported) {
      if (deadline >= now) break;
      this.reported.delete(sessionId);
    }
    if (this.reported.has(transfer.sessionId)) return;
    let run = this.runs.get(transfer.sessionId);
    if (!run) {
      const { messages: _m, final: _f, ...head } = transfer;
      const created: Run = {
        head,
        pending: [],
        seen: new Set(),
        results: [],
        final: false,
        busy: false,
        done: false,
        timer: setTimeout(() => this.finishIfIdle(created), Math.max(0, transfer.deadline - now)),
      };
      created.timer.unref();
      run = created;
      this.runs.set(transfer.sessionId, run);
    }
    for (const message of transfer.messages) {
      if (run.seen.has(message.id)) continue;
      run.seen.add(message.id);
      run.pending.push(message);
    }
    run.final ||= transfer.final;
    if (!run.busy) {
      run.busy = true;
      run.pump = this.pump(run);
    }
  }

  /**
   * Stopping: no further SEND starts, and each run reports at once what it knows: the messages
   * not sent yet as unsent (`deliver` gives them back), a SEND still waiting for its answer not
   * at all (it stays claimed until its lease ends, as its outcome is unknown). Resolves when the
   * reports are queued.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const run of [...this.runs.values()]) {
      for (const { id, arrivedAt, from, bytes } of run.pending.splice(0))
        run.results.push({ id, status: run.stopped ?? 408, sent: false, arrivedAt, from, bytes });
      this.finish(run);
    }
    await Promise.all([...this.reports]);
  }

  /** Resolves once every run that has its final part has sent it and queued its report. */
  async settled(): Promise<void> {
    const waiting = () => [...this.runs.values()].filter((r) => r.busy || r.final);
    while (waiting().length > 0 || this.reports.size > 0) {
      await Promise.all([...waiting().map((r) => r.pump), ...this.reports]);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private async pump(run: Run): Promise<void> {
    const take = () => (this.deps.pipelined ? run.pending.splice(0) : run.pending.splice(0, 1));
    for (let batch = take(); batch.length > 0; batch = take()) {
      const halt = run.stopped ?? (this.stopping || this.now() >= run.head.deadline ? 408 : undefined);
      if (halt !== undefined) {
        for (const { id, arrivedAt, from, bytes } of batch)
          run.results.push({ id, status: halt, sent: false, arrivedAt, from, bytes });
        continue;
      }
      const answers = batch.map((m) => this.sendOne(run.head.sessionId, m));
      for (const [i, { id, arrivedAt, from, bytes }] of batch.entries()) {
        const status = await answers[i]!;
        if (run.done) return;
        run.results.push({ id, status, sent: true, arrivedAt, from, bytes });
        // No connection, no answer or a closed connection: what is not sent yet cannot go either.
        if (status === 408 || status === 481) run.stopped = status;
      }
    }
    run.busy = false;
    if (run.final || this.stopping || this.now() >= run.head.deadline) this.finish(run);
  }

  /** One SEND's status; a transfer that could not complete counts as no answer (RFC 4975 §7.1.1). */
  private sendOne(sessionId: string, message: TransferredMessage): Promise<number> {
    return this.deps.send(sessionId, { id: message.id, cpim: message.cpim }).then(
      ({ status }) => status,
      () => 408,
    );
  }

  private finishIfIdle(run: Run): void {
    if (!run.busy && this.runs.get(run.head.sessionId) === run) this.finish(run);
  }

  private finish(run: Run): void {
    if (run.done) return;
    run.done = true;
    clearTimeout(run.timer);
    this.runs.delete(run.head.sessionId);
    this.reported.set(run.head.sessionId, run.head.deadline);
    const { user, sessionId, edgeId, dialog, byeCSeq } = run.head;
    const report: DeliveryReport = {
      type: 'delivery-report',
      user,
      sessionId,
      edgeId,
      dialog,
      byeCSeq,
      results: run.results,
    };
    const queued = this.queue(report).finally(() => this.reports.delete(queued));
    this.reports.add(queued);
  }

  private async queue(report: DeliveryReport): Promise<void> {
    const attempts = Math.max(1, this.deps.reportAttempts ?? 3);
    let delay = this.deps.reportRetryDelayMs ?? 1_000;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.deps.report(report);
        return;
      } catch (err) {
        if (attempt >= attempts) {
          this.deps.onError?.(report.sessionId, err);
          return;
        }
        await new Promise((r) => setTimeout(r, delay));
        delay *= 2;
      }
    }
  }
}
