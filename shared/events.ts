/**
 * The contract between the edge and the handlers: what the edge hands over for a SIP request
 * it received, and what a handler answers. Plain JSON, so it crosses Lambda's RequestResponse
 * invocation unchanged (bodies travel base64-encoded).
 */
import type { Header } from './sip/messages/types.ts';
import type { DialogState, Flow } from './sip/dialog/types.ts';

export interface SipRequestEvent {
  method: string;
  uri: string;
  headers: Header[];
  /** Body, base64. */
  body: string;
  flow: Flow;
  /** True when the request came from a trusted peer (SIP/IP Core): only then P-Asserted-Identity counts. */
  trusted: boolean;
  /** Epoch milliseconds at the edge. */
  receivedAt: number;
}

export interface SipResponseSpec {
  status: number;
  reason?: string;
  headers?: Header[];
  /** Body, base64, with its Content-Type in `contentType`. */
  body?: string;
  contentType?: string;
  /** Our To tag for a dialog-creating 2xx. */
  toTag?: string;
}

/** A request the edge sends inside a dialog (NOTIFY, BYE) on the handler's behalf. */
export interface InDialogRequestSpec {
  method: 'NOTIFY' | 'BYE' | 'MESSAGE';
  dialog: DialogState;
  cseq: number;
  headers: Header[];
  body?: string;
  contentType?: string;
  /** Which subscription it belongs to, so a failure can end it (protocol.md NOTIFY rules). */
  subscription?: { user: string; dialogId: string };
}

/** What the INVITE handler asks the edge to hold for the MSRP delivery that follows. */
export interface DeliverySessionSpec {
  sessionId: string;
  user: string;
  dialogId: string;
  /** The client's MSRP path (its a=path): the listener checks the binding SEND's From-Path against it. */
  clientPath: string;
  /** Our a=path is msrps: (the offer asked for TLS or the INVITE came over TLS, and MSRP over TLS is served). */
  secure?: boolean;
  /** RFC 8122 §5: the offer's a=fingerprint, which the client's TLS certificate must match. */
  clientFingerprint?: { hash: string; value: string };
}

export interface SipHandlerResult {
  response: SipResponseSpec;
  /** Sent after the response, in order. */
  requests?: InDialogRequestSpec[];
  /** For an accepted INVITE: the MSRP session the edge must expect. */
  session?: DeliverySessionSpec;
  /** Users whose list changed as a result: their watchers get a NOTIFY. */
  changedUsers?: string[];
}
