/**
 * A string that shares nothing with its source, for a value kept long after the message it came in
 * (a transaction's key, a dialog's key). A value read by the parser is a slice of the whole message
 * text (or a rope of such slices); kept, it would keep all that text alive. Short-lived values
 * need no copy.
 */
export function ownCopy(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}
