/**
 * Health in two parts (docs/operations.md "Health"). Liveness: the process serves SIP; what the
 * NLB's target check asks, so a throttled function or a slow table does not get healthy tasks
 * replaced. Readiness: every dependency answers (store writable, queues reachable, functions
 * invocable in `lambda` mode), each named with its outcome; 503 when one does not.
 */
import type { DeliverySessionStore } from '#shared/ports.ts';

export interface ReadinessCheck {
  name: string;
  /** Resolves with a short detail when healthy; rejects (or times out) when not. */
  run: () => Promise<string | undefined>;
}

export interface CheckOutcome {
  ok: boolean;
  ms: number;
  detail?: string;
}

export async function runReadiness(
  checks: readonly ReadinessCheck[],
  timeoutMs = 2000,
): Promise<{ ok: boolean; checks: Record<string, CheckOutcome> }> {
  const out: Record<string, CheckOutcome> = {};
  await Promise.all(
    checks.map(async (check) => {
      const started = performance.now();
      let timer: NodeJS.Timeout | undefined;
      try {
        const detail = await Promise.race([
          check.run(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
        out[check.name] = { ok: true, ms: Math.round(performance.now() - started), ...(detail ? { detail } : {}) };
      } catch (err) {
        out[check.name] = {
          ok: false,
          ms: Math.round(performance.now() - started),
          detail: err instanceof Error ? err.message : String(err),
        };
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return { ok: Object.values(out).every((c) => c.ok), checks: out };
}

/** Readiness of a store: one real write and delete of a short-lived session record. */
export async function probeStore(sessions: DeliverySessionStore): Promise<undefined> {
  const sessionId = `health-probe-${process.pid}`;
  const nowSec = Math.floor(Date.now() / 1000);
  const flow = { edgeId: 'health', transport: 'udp' as const, remoteAddress: '127.0.0.1', remotePort: 0 };
  await sessions.put({
    user: 'health-probe',
    sessionId,
    dialogId: sessionId,
    dialog: {
      callId: sessionId,
      localTag: 'l',
      remoteTag: 'r',
      localUri: 'sip:health@invalid',
      remoteUri: 'sip:health@invalid',
      remoteTarget: 'sip:health@invalid',
      routeSet: [],
      localCSeq: 0,
      flow,
    },
    retrieve: [],
    clientPath: '',
    localPath: '',
    state: 'done',
    createdAt: new Date().toISOString(),
    expiresAt: nowSec + 60,
  });
  await sessions.delete(sessionId);
  return undefined;
}
