/** Conversions between the edge/handler JSON contract and the SIP message model. */
import type { SipRequestEvent, SipResponseSpec } from '../events.ts';
import type { Header, SipRequest } from '../sip/messages/types.ts';

export function requestOfEvent(event: SipRequestEvent): SipRequest {
  return {
    kind: 'request',
    method: event.method,
    uri: event.uri,
    headers: event.headers,
    body: Buffer.from(event.body, 'base64'),
  };
}

export function eventOfRequest(
  request: SipRequest,
  flow: SipRequestEvent['flow'],
  trusted: boolean,
  receivedAt = Date.now(),
): SipRequestEvent {
  return {
    method: request.method,
    uri: request.uri,
    headers: request.headers,
    body: request.body.toString('base64'),
    flow,
    trusted,
    receivedAt,
  };
}

/** A response spec without a body. */
export function reply(status: number, reason?: string, headers: Header[] = []): SipResponseSpec {
  return { status, ...(reason ? { reason } : {}), headers };
}
