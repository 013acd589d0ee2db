/**
 * The SIP message model shared by every layer (RFC 3261 §7).
 *
 * Headers stay in wire order as (name, value) pairs; names are stored in their canonical long
 * form (compact forms expanded, RFC 3261 §7.3.3) so lookups are case-insensitive by design.
 * Typed views (Via, name-addr, CSeq, ...) are read from the values on demand by the
 * functions of `./headers.ts`; the parser has already validated the ones RFC 3261 makes
 * mandatory, so those views never fail on a message that came out of `parseMessage`, and they
 * reuse what the parser built for them (keyed by the value text, so edits to a message are seen).
 */

export interface Header {
  /** Canonical long form, e.g. "Via", "Call-ID", "Content-Type" (never "v" or "call-id"). */
  name: string;
  /** Raw value with leading/trailing whitespace trimmed and folding (LWS) collapsed. */
  value: string;
}

interface MessageBase {
  headers: Header[];
  body: Buffer;
}

export interface SipRequest extends MessageBase {
  kind: 'request';
  method: string;
  /** Request-URI as text (validated by the parser). */
  uri: string;
}

export interface SipResponse extends MessageBase {
  kind: 'response';
  status: number;
  reason: string;
}

export type SipMessage = SipRequest | SipResponse;

/** Result of parsing one message: never throws. */
export type ParseResult =
  | { ok: true; message: SipMessage }
  | {
      ok: false;
      /** 'request' when the start line was a request line: the caller answers it with `status`. */
      kind: 'request' | 'response' | 'unknown';
      /** 400 (malformed), 505 (version), 416 (URI scheme), 420 (Require), 513 (too large). */
      status: number;
      /** Reason phrase naming the fault, e.g. "Bad Request - Missing CSeq". */
      reason: string;
      /** Whatever headers could be read, so a response can still be built (RFC 3261 §8.2.6). */
      partial?: { method?: string; uri?: string; headers: Header[] };
      /** With status 420: the option tags of Require that are not supported, for Unsupported (RFC 3261 §8.2.2.3). */
      unsupported?: string[];
    };

export interface ParseOptions {
  /**
   * Message-bounded transports (UDP; WebSocket, RFC 7118 §5): the datagram bounds the message, so
   * Content-Length may be missing (RFC 3261 §18.3). In both modes octets past Content-Length are
   * not part of the message and a Content-Length larger than what arrived is a 400. Without this
   * flag (stream mode) a body without Content-Length is a 400.
   */
  datagram?: boolean;
  /** Maximum number of header fields accepted (default 256); more is a 400. */
  maxHeaders?: number;
  /** Larger messages fail with 513 Message Too Large (RFC 3261 §18.1.1, §21.5.7); the head is still read for `partial`. */
  maxBytes?: number;
  /** Request-URI schemes served (lower case, default sip, sips, tel); others fail with 416 (RFC 3261 §8.2.2.1). */
  uriSchemes?: readonly string[];
  /**
   * When given, a request whose Require names other option tags fails with 420 Bad Extension and
   * `unsupported` lists them (RFC 3261 §8.2.2.3; ignored for ACK and CANCEL). See also `checkRequire`.
   */
  supportedOptionTags?: readonly string[];
}

// ---- typed views ---------------------------------------------------------------------------

export type UriParams = Record<string, string | null>;

export interface SipUri {
  scheme: 'sip' | 'sips';
  user?: string;
  password?: string;
  /** Host as written; IPv6 references keep their brackets: "[2001:db8::10]". */
  host: string;
  port?: number;
  params: UriParams;
  headers: Record<string, string>;
}

export interface TelUri {
  scheme: 'tel';
  number: string;
  params: UriParams;
}

/** Any other absolute URI (e.g. "mailto:", "urn:"): kept as text. */
export interface OtherUri {
  scheme: string;
  raw: string;
}

export type Uri = SipUri | TelUri | OtherUri;

export interface NameAddr {
  displayName?: string;
  /** The URI text inside <> (or the bare addr-spec). */
  uri: string;
  params: UriParams;
}

export interface Via {
  /** e.g. "UDP", "TCP", "TLS", "WS", "WSS" (upper-cased). */
  transport: string;
  host: string;
  port?: number;
  params: UriParams;
  /** Convenience copies of params.branch / received / rport. */
  branch?: string;
  received?: string;
  /** null when `rport` is present without a value (RFC 3581 request). */
  rport?: number | null;
}

export interface CSeq {
  seq: number;
  method: string;
}
