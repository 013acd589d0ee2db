/**
 * What the handlers report for operators, whoever counts it: EMF metrics in a Lambda
 * (shared/observability/lambda-runtime.ts `metricEvents`), the edge's /metrics counters in the
 * local default. The build functions (functions/<name>/build.ts) call these at the same points
 * in both modes, so the two counts cannot differ.
 */
export interface HandlerEvents {
  /** A deposit stored a new message (a duplicate stores nothing and is not counted). */
  deposited?: () => void;
  /** An INVITE's `delete` action removed a message. */
  deleted?: () => void;
  /** A message reached its client (MSRP 200) and left the store; ms since it arrived. */
  delivered?: (latencyMs: number, message: { user: string; id: string; from: string }) => void;
  /** A delivery attempt ended with this status (not 200); the message stays deferred. */
  deliveryFailed?: (status: number) => void;
  /** Messages removed at the end of their retention. */
  expired?: (count: number) => void;
}
