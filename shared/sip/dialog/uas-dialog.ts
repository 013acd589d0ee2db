/**
 * UAS dialogs (RFC 3261 §12.1.1): the state the service keeps after answering a dialog-creating
 * SUBSCRIBE or INVITE with 2xx, and the dialog id used to find it again (§12).
 */
import { randomHex } from '#shared/random.ts';
import { getHeader, getHeaders, parseCSeq, parseNameAddr } from '../messages/index.ts';
import type { Header, SipRequest } from '../messages/index.ts';
import { sameHeaderName } from '../messages/header-names.ts';
import type { DialogState, Flow } from './types.ts';

/** §19.3: a tag needs at least 32 bits of randomness; 64 here. */
export function newTag(): string {
  return randomHex(8);
}

function headerUri(req: SipRequest, name: string): string {
  const value = getHeaders(req, name)[0] ?? getHeader(req, name);
  if (value === undefined) return '';
  return parseNameAddr(value)?.uri ?? value.trim();
}

function headerTag(req: SipRequest, name: 'From' | 'To'): string {
  const value = getHeader(req, name);
  const tag = value === undefined ? undefined : parseNameAddr(value)?.params.tag;
  return typeof tag === 'string' ? tag : '';
}

/**
 * §12.1.1 for the UAS of `request`, answered with a 2xx carrying To tag `localTag`:
 * - "The route set MUST be set to the list of URIs in the Record-Route header field from the
 *   request, taken in order and preserving all URI parameters."
 * - "The remote target MUST be set to the URI from the Contact header field of the request."
 * - "The remote sequence number MUST be set to the value of the sequence number in the CSeq header
 *   field of the request. The local sequence number MUST be empty." (empty = 0: our first is 1)
 * - "The call identifier ... MUST be set to the value of the Call-ID in the request. The local tag
 *   ... MUST be set to the tag in the To field in the response to the request ... and the remote
 *   tag ... MUST be set to the tag in the From field of the request."
 * - "The remote URI MUST be set to the URI in the From field, and the local URI MUST be set to the
 *   URI in the To field."
 * Without a Contact (the caller answers that 400 first) the remote target falls back to the From URI.
 * An unreadable CSeq leaves the remote sequence number empty.
 */
export function createUasDialog(request: SipRequest, localTag: string, flow: Flow): DialogState {
  const remoteUri = headerUri(request, 'From');
  const contact = headerUri(request, 'Contact');
  const dialog: DialogState = {
    callId: getHeader(request, 'Call-ID') ?? '',
    localTag,
    remoteTag: headerTag(request, 'From'),
    localUri: headerUri(request, 'To'),
    remoteUri,
    remoteTarget: contact !== '' && contact !== '*' ? contact : remoteUri,
    routeSet: getHeaders(request, 'Record-Route').map((v) => v.trim()),
    localCSeq: 0,
    flow: { ...flow },
  };
  const remoteCSeq = remoteCSeqOf(request);
  if (remoteCSeq !== undefined) dialog.remoteCSeq = remoteCSeq;
  return dialog;
}

/** §12.1.1: the remote sequence number the dialog starts with (the request's CSeq number). */
export function remoteCSeqOf(request: SipRequest): number | undefined {
  return parseCSeq(getHeader(request, 'CSeq') ?? '')?.seq;
}

/**
 * §12.2.2 check of an in-dialog request against the dialog's remote sequence number:
 * "If the remote sequence number is not empty, but the sequence number of the request is lower than
 * the remote sequence number, the request is out of order and MUST be rejected with a 500 (Server
 * Internal Error) response." Otherwise the remote sequence number becomes the request's.
 */
export function checkRemoteCSeq(
  remoteCSeq: number | undefined,
  request: SipRequest,
): { ok: true; remoteCSeq: number } | { ok: false; status: 500; reason: string } {
  const seq = remoteCSeqOf(request);
  if (seq === undefined) return { ok: false, status: 500, reason: 'Server Internal Error - Unreadable CSeq' };
  if (remoteCSeq !== undefined && seq < remoteCSeq) {
    return { ok: false, status: 500, reason: 'Server Internal Error - CSeq Out of Order' };
  }
  return { ok: true, remoteCSeq: Math.max(seq, remoteCSeq ?? 0) };
}

/**
 * `${callId};${localTag};${remoteTag}` (§12: "A dialog is identified ... by a Call-ID, a local tag
 * and a remote tag"). For a received in-dialog request the local tag is its To tag and the remote
 * tag its From tag (§12.2.2).
 */
export function dialogIdOf(x: DialogState | SipRequest): string {
  if ('callId' in x) return `${x.callId};${x.localTag};${x.remoteTag}`;
  return `${getHeader(x, 'Call-ID') ?? ''};${headerTag(x, 'To')};${headerTag(x, 'From')}`;
}

/**
 * §12.1.1: "When a UAS responds to a request with a response that establishes a dialog (such as a
 * 2xx to INVITE), the UAS MUST copy all Record-Route header field values from the request into the
 * response (including the URIs, URI parameters, and any Record-Route header field parameters,
 * whether they are known or unknown to the UAS) and MUST maintain the order of those values."
 * The fields are copied as received, so nothing of a value is lost.
 */
export function recordRouteCopy(request: SipRequest): Header[] {
  return request.headers
    .filter((h) => sameHeaderName(h.name, 'Record-Route'))
    .map((h) => ({ name: 'Record-Route', value: h.value }));
}
