/**
 * Dialog state of a UAS (RFC 3261 §12.1.1) and the transport flow its creating request came on.
 * Plain data, stored with the subscription or delivery session that owns the dialog, so whatever
 * a dialog needs to reach its peer (route set, remote target) survives a restart of the edge.
 */
import type { TransportName } from '../transport/types.ts';

/** Where and how to send in-dialog requests for a dialog the service is UAS of (RFC 3261 §12.1.1). */
export interface DialogState {
  callId: string;
  /** Our tag (To tag of the 200 we sent). */
  localTag: string;
  /** The client's From tag. */
  remoteTag: string;
  /** Our URI (To of the request) and the client's URI (From of the request). */
  localUri: string;
  remoteUri: string;
  /** Contact of the request: the Request-URI of our in-dialog requests (§12.1.2 remote target). */
  remoteTarget: string;
  /** Record-Route of the request, in order (§12.1.1): the Route of our requests and their next hop. */
  routeSet: string[];
  /** Our last CSeq in this dialog; incremented atomically in the store. */
  localCSeq: number;
  /** The client's last CSeq in this dialog (RFC 3261 §12.1.1); absent = empty. */
  remoteCSeq?: number;
  /**
   * Where the request came from. Requests follow it back only in the RFC 5626 outbound case
   * (see next-hop.ts); otherwise the route set and remote target decide.
   */
  flow: Flow;
}

/** The transport flow a request arrived on. */
export interface Flow {
  /** Edge task that holds the socket/connection (its id in the control plane). */
  edgeId: string;
  transport: TransportName;
  remoteAddress: string;
  remotePort: number;
  /** Connection id inside that edge for connection-oriented transports. */
  connectionId?: string;
}
