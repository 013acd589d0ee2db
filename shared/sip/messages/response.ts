/**
 * Building responses to requests (RFC 3261 §8.2.6), including for requests the parser rejected.
 */
import { randomHex } from '#shared/random.ts';
import { sameHeaderName } from './header-names.ts';
import { parseNameAddr } from './headers.ts';
import { reasonPhrase } from './reason-phrases.ts';
import type { Header, SipRequest, SipResponse } from './types.ts';

export { reasonPhrase } from './reason-phrases.ts';

export interface ResponseOptions {
  reason?: string;
  /** Added as `;tag=` to To when the request's To has no tag (RFC 3261 §8.2.6.2). */
  toTag?: string;
  headers?: Header[];
  body?: Buffer;
  contentType?: string;
}

const EMPTY = Buffer.alloc(0);

/** Whether a To value already carries a tag parameter (also for values parseNameAddr rejects). */
function hasTag(to: string): boolean {
  const na = parseNameAddr(to);
  if (na) return 'tag' in na.params;
  // Not readable as a whole: look for a tag parameter after the URI.
  const afterUri = to.lastIndexOf('>');
  return /;\s*tag\s*=/i.test(afterUri === -1 ? to : to.slice(afterUri));
}

/**
 * RFC 3261 §8.2.6.2: "the From field of the response MUST equal the From header field of the
 * request. The Call-ID header field of the response MUST equal the Call-ID header field of the
 * request. The CSeq header field of the response MUST equal the CSeq field of the request. The
 * Via header field values in the response MUST equal the Via header field values in the request
 * and MUST maintain the same ordering." To is copied, with `toTag` added when it has none; of
 * the single-valued From, To, Call-ID and CSeq only the first field is copied.
 * §8.2.6.1: a 100 (Trying) copies Timestamp. Then `opts.headers`, then Content-Type for a body.
 * Content-Length is written by serializeMessage. Never throws, even for a broken request.
 */
export function createResponse(request: SipRequest, status: number, opts: ResponseOptions = {}): SipResponse {
  const headers: Header[] = [];
  const source = Array.isArray(request?.headers) ? request.headers : [];
  /** Every field of `name` (Via), or only the first one (single-valued headers). */
  const copy = (name: string, all: boolean, edit?: (value: string) => string) => {
    for (const h of source) {
      if (!h || typeof h.value !== 'string' || !sameHeaderName(h.name, name)) continue;
      headers.push({ name, value: edit ? edit(h.value) : h.value });
      if (!all) return;
    }
  };
  try {
    copy('Via', true);
    // A request with two From (RFC 4475 §3.3.8 multi01) is answered with the first one.
    copy('From', false);
    copy('To', false, (to) => (opts.toTag !== undefined && !hasTag(to) ? `${to};tag=${opts.toTag}` : to));
    copy('Call-ID', false);
    copy('CSeq', false);
    if (status === 100) copy('Timestamp', false);
  } catch {
    // A header list we cannot read: answer with what was copied so far.
  }
  if (opts.headers) for (const h of opts.headers) headers.push({ name: h.name, value: h.value });
  const body = opts.body ?? EMPTY;
  if (body.length > 0 && opts.contentType !== undefined)
    headers.push({ name: 'Content-Type', value: opts.contentType });
  return { kind: 'response', status, reason: opts.reason ?? reasonPhrase(status), headers, body };
}

/**
 * A response to a request the parser rejected (ParseResult ok:false, kind 'request'), built from
 * the headers it could read. A To without tag gets a fresh one (RFC 3261 §8.2.6.2). Undefined
 * when not even one of Via, Call-ID, CSeq, From, To could be read: there is nothing the
 * client could match the response with.
 */
export function createErrorResponse(
  partial: { method?: string; uri?: string; headers: Header[] },
  status: number,
  reason: string,
): SipResponse | undefined {
  try {
    const headers = Array.isArray(partial?.headers) ? partial.headers : [];
    const has = (name: string) => headers.some((h) => h && sameHeaderName(h.name, name));
    if (!['Via', 'Call-ID', 'CSeq', 'From', 'To'].some(has)) return undefined;
    const request: SipRequest = {
      kind: 'request',
      method: partial.method ?? '',
      uri: partial.uri ?? '',
      headers,
      body: EMPTY,
    };
    return createResponse(request, status, { reason, toTag: randomHex(6) });
  } catch {
    return undefined;
  }
}
