/**
 * Cutting messages out of a byte stream (TCP, TLS): RFC 3261 §18.3 framing by Content-Length,
 * with the CRLF keep-alives of RFC 5626 §3.5.1 between messages.
 */
import { isDigit } from './grammar.ts';

export type FrameResult =
  | { kind: 'message'; bytes: Buffer; rest: Buffer }
  /** `total`: the size the message will have, once its header block is complete. */
  | { kind: 'need-more'; total?: number }
  /** CRLFs before a start line; `ping` when they held a CRLFCRLF (RFC 5626 §3.5.1 wants a CRLF back). */
  | { kind: 'keepalive'; rest: Buffer; ping: boolean }
  /** The stream cannot be framed: the connection should be closed. */
  | { kind: 'error'; reason: string };

const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * The Content-Length of a header block (latin1 text, no final empty line), honouring compact
 * `l`, any case, whitespace before the colon and folded values. undefined when absent; 'bad'
 * when malformed or given twice with different values.
 */
function contentLengthOf(head: string): number | 'bad' | undefined {
  let found: number | undefined;
  let pos = head.indexOf('\r\n');
  while (pos !== -1) {
    const lineStart = pos + 2;
    const c = head.charCodeAt(lineStart);
    // Fast reject: only lines starting with c/C/l/L can name Content-Length.
    if (c === 99 || c === 67 || c === 108 || c === 76) {
      let eol = head.indexOf('\r\n', lineStart);
      if (eol === -1) eol = head.length;
      // The colon is searched within the line only, so that colon-less lines cost no rescans.
      let colon = lineStart;
      while (colon < eol && head.charCodeAt(colon) !== 58) colon++;
      if (colon < eol) {
        const name = head.slice(lineStart, colon).trimEnd().toLowerCase();
        if (name === 'content-length' || name === 'l') {
          let value = head.slice(colon + 1, eol);
          // Folded continuation lines (RFC 3261 §7.3.1).
          let next = eol;
          while (next + 2 < head.length && (head.charCodeAt(next + 2) === 32 || head.charCodeAt(next + 2) === 9)) {
            let end = head.indexOf('\r\n', next + 2);
            if (end === -1) end = head.length;
            value += ` ${head.slice(next + 2, end)}`;
            next = end;
          }
          value = value.trim();
          if (value.length === 0 || value.length > 15) return 'bad';
          for (let i = 0; i < value.length; i++) if (!isDigit(value.charCodeAt(i))) return 'bad';
          const n = Number(value);
          if (found !== undefined && found !== n) return 'bad';
          found = n;
        }
      }
    }
    pos = head.indexOf('\r\n', lineStart);
  }
  return found;
}

/**
 * The first complete message of `buf`, or what is missing. Leading CRLFs are keep-alives
 * (RFC 5626 §3.5.1; RFC 3261 §7.5 ignores CRLFs before a start line): a lone CRLF at the end of
 * `buf` waits for more, since it may be half of a ping. A message needs its header block and
 * Content-Length octets of body (§18.3: on a stream "the Content-Length header field MUST be
 * used"); a missing or malformed Content-Length, or more than `maxBytes` octets, is an error.
 * Never throws.
 */
export function frameStream(buf: Buffer, maxBytes: number): FrameResult {
  try {
    const n = buf.length;
    if (n === 0) return { kind: 'need-more' };
    if (buf[0] === 13 || buf[0] === 10) {
      let i = 0;
      while (i < n && (buf[i] === 13 || buf[i] === 10)) i++;
      const run = buf.subarray(0, i);
      const ping = run.indexOf(CRLFCRLF) !== -1;
      if (i === n && !ping && CRLFCRLF.subarray(0, i).equals(run)) return { kind: 'need-more' };
      return { kind: 'keepalive', rest: buf.subarray(i), ping };
    }
    const headEnd = buf.indexOf(CRLFCRLF);
    if (headEnd === -1) {
      return n > maxBytes ? { kind: 'error', reason: 'Message Too Large' } : { kind: 'need-more' };
    }
    if (headEnd + 4 > maxBytes) return { kind: 'error', reason: 'Message Too Large' };
    const length = contentLengthOf(buf.toString('latin1', 0, headEnd));
    if (length === undefined) return { kind: 'error', reason: 'Missing Content-Length' };
    if (length === 'bad') return { kind: 'error', reason: 'Bad Content-Length' };
    const total = headEnd + 4 + length;
    if (total > maxBytes) return { kind: 'error', reason: 'Message Too Large' };
    if (n < total) return { kind: 'need-more', total };
    return { kind: 'message', bytes: buf.subarray(0, total), rest: buf.subarray(total) };
  } catch {
    return { kind: 'error', reason: 'Unreadable stream' };
  }
}
