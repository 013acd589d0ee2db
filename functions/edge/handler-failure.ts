/**
 * What a failed handler call is answered (issue 11): 503 + Retry-After only when trying again
 * later can help (the function was unreachable, throttled or timed out, its store unavailable);
 * a handler's own bug is 500 (RFC 3261 §21.5.1), which a client does not retry in a loop.
 */

/** JavaScript's programming-error types: a retry meets the same bug. */
const BUG_TYPES = new Set(['TypeError', 'RangeError', 'ReferenceError', 'SyntaxError', 'EvalError', 'URIError']);

/** The type of the error a failed call carries: its own name, or the one a Lambda reported. */
function errorTypeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const reported = (err as { errorType?: unknown }).errorType;
  if (typeof reported === 'string') return reported;
  return err instanceof Error ? err.name : undefined;
}

export function isHandlerBug(err: unknown): boolean {
  const type = errorTypeOf(err);
  return type !== undefined && BUG_TYPES.has(type);
}

export function failureStatus(err: unknown): 500 | 503 {
  return isHandlerBug(err) ? 500 : 503;
}
