/**
 * Requests the UAS sends inside a dialog (RFC 3261 §12.2.1.1): NOTIFY, BYE, MESSAGE. The Via is
 * added by the client transaction (§17.1.2), not here.
 */
import type { Header, SipRequest } from '../messages/index.ts';
import { parseNameAddr, parseUri } from '../messages/index.ts';
import type { SipUri } from '../messages/index.ts';
import type { DialogState } from './types.ts';

export interface InDialogRequestOptions {
  headers?: Header[];
  body?: Buffer;
  contentType?: string;
  /** Our Contact URI (or name-addr); §12.2.1.1 requires it on target-refresh requests like NOTIFY. */
  contact?: string;
}

/** `<uri>` unless the value already is a name-addr. */
function asNameAddr(value: string): string {
  const trimmed = value.trim();
  return trimmed.includes('<') ? trimmed : `<${trimmed}>`;
}

function withTag(uri: string, tag: string): string {
  return tag === '' ? asNameAddr(uri) : `${asNameAddr(uri)};tag=${tag}`;
}

/** The URI inside a Route/Record-Route value. */
function routeUri(value: string): string {
  return parseNameAddr(value)?.uri ?? value.replace(/^\s*<|>\s*$/g, '');
}

function isLooseRouter(routeValue: string): boolean {
  const uri = parseUri(routeUri(routeValue));
  return uri !== undefined && 'host' in uri && 'lr' in (uri as SipUri).params;
}

/**
 * §19.1.1 Table 1: "method" and header components are not allowed in a Request-URI; a strict
 * router's URI loses them when it becomes one (§12.2.1.1: "with any parameters ... not allowed in
 * a Request-URI stripped").
 */
function asRequestUri(uriText: string): string {
  return uriText.replace(/\?.*$/, '').replace(/;method=[^;?]*/gi, '');
}

/**
 * §12.2.1.1: "The URI in the To field of the request MUST be set to the remote URI from the dialog
 * state. The tag in the To header field of the request MUST be set to the remote tag of the dialog
 * ID. The From URI of the request MUST be set to the local URI from the dialog state. The tag in the
 * From header field of the request MUST be set to the local tag of the dialog ID. ... The Call-ID of
 * the request MUST be set to the Call-ID of the dialog." The CSeq comes from the caller (the store
 * hands out the next one atomically). Max-Forwards is 70 (§8.1.1.6).
 */
export function buildInDialogRequest(
  dialog: DialogState,
  method: string,
  cseq: number,
  opts: InDialogRequestOptions = {},
): SipRequest {
  const { uri, routes } = requestUriAndRoutes(dialog);
  const headers: Header[] = [
    ...routes.map((value) => ({ name: 'Route', value })),
    { name: 'Max-Forwards', value: '70' },
    { name: 'From', value: withTag(dialog.localUri, dialog.localTag) },
    { name: 'To', value: withTag(dialog.remoteUri, dialog.remoteTag) },
    { name: 'Call-ID', value: dialog.callId },
    { name: 'CSeq', value: `${cseq} ${method}` },
  ];
  if (opts.contact !== undefined) headers.push({ name: 'Contact', value: asNameAddr(opts.contact) });
  const extra = (opts.headers ?? []).filter((h) => !/^content-length$/i.test(h.name));
  headers.push(...extra);
  const body = opts.body ?? Buffer.alloc(0);
  if (body.length > 0 && opts.contentType !== undefined)
    headers.push({ name: 'Content-Type', value: opts.contentType });
  headers.push({ name: 'Content-Length', value: String(body.length) });
  return { kind: 'request', method, uri, headers, body };
}

/**
 * §12.2.1.1: "If the route set is empty, the UAC MUST place the remote target URI into the
 * Request-URI. The UAC MUST NOT add a Route header field to the request. If the route set is not
 * empty, and the first URI in the route set contains the lr parameter, the UAC MUST place the remote
 * target URI into the Request-URI and MUST include a Route header field containing the route set
 * values in order, including all parameters. If the route set is not empty, and its first URI does
 * not contain the lr parameter, the UAC MUST place the first URI from the route set into the
 * Request-URI, stripping any parameters that are not allowed in a Request-URI. The UAC MUST add a
 * Route header field containing the remainder of the route set values in order, including all
 * parameters. The UAC MUST then place the remote target URI into the Route header field as the last value."
 */
export function requestUriAndRoutes(dialog: DialogState): { uri: string; routes: string[] } {
  const routeSet = dialog.routeSet;
  if (routeSet.length === 0) return { uri: dialog.remoteTarget, routes: [] };
  if (isLooseRouter(routeSet[0]!)) return { uri: dialog.remoteTarget, routes: [...routeSet] };
  return {
    uri: asRequestUri(routeUri(routeSet[0]!)),
    routes: [...routeSet.slice(1), asNameAddr(dialog.remoteTarget)],
  };
}
