/**
 * Every protocol name of the deferred-messages profile (protocol.md "Names"), in one place so
 * that it can follow the OMA text if that turns up. Nothing else in the code spells them.
 */

/** SIP event package (RFC 6665 §7.2), OMA-TS-CPM_Conv_Fnct. */
export const EVENT_PACKAGE = 'deferred-messages';

/** MIME type of the deferred-message list (NOTIFY body and INVITE action list). */
export const LIST_CONTENT_TYPE = 'application/vnd.oma.im.deferred-list+xml';

/** XML namespace of the list and of the action list. */
export const LIST_NAMESPACE = 'urn:oma:xml:im:history-list';

/** Element and attribute names of the list documents. */
export const LIST_XML = {
  root: 'history-list',
  entry: 'entry',
  id: 'id',
  action: 'action',
  version: 'version',
  state: 'state',
  total: 'total',
  messageId: 'message-id',
  from: 'from',
  to: 'to',
  date: 'date',
  subject: 'subject',
  contentType: 'content-type',
  size: 'size',
  conversationId: 'conversation-id',
  contributionId: 'contribution-id',
  dispositionNotification: 'disposition-notification',
  expires: 'expires',
} as const;

/** The list's `state` attribute: every NOTIFY carries full state (RFC 6665 §4.2.2). */
export const LIST_STATE_FULL = 'full';

/** Actions an INVITE may name per entry. */
export const LIST_ACTIONS = ['retrieve', 'delete'] as const;
export type ListAction = (typeof LIST_ACTIONS)[number];

/** IMS Communication Service Identifier of deferred messaging (3GPP TS 24.229 §7.2A.8). */
export const DEFERRED_ICSI = 'urn:urn-7:3gpp-service.ims.icsi.oma.cpm.deferred';

/** The ICSI as a feature tag (RFC 3841 §9, the value %-escaped as 3GPP TS 24.229 writes it). */
export const DEFERRED_ICSI_FEATURE_TAG = `+g.3gpp.icsi-ref="${encodeURIComponent(DEFERRED_ICSI)}"`;

/** The Accept-Contact value a client puts on the INVITE (RFC 3841 §10.2). */
export const DEFERRED_ACCEPT_CONTACT = `*;${DEFERRED_ICSI_FEATURE_TAG}`;

/** Message wrapper (RFC 3862). */
export const CPIM_CONTENT_TYPE = 'message/cpim';

/** Disposition notification body (RFC 5438 §7). */
export const IMDN_CONTENT_TYPE = 'message/imdn+xml';

/** IMDN XML namespace, also the CPIM `NS: imdn <...>` of its headers (RFC 5438 §6.1). */
export const IMDN_NAMESPACE = 'urn:ietf:params:imdn';

/** The CPIM prefix conventionally bound to IMDN_NAMESPACE. */
export const IMDN_PREFIX = 'imdn';

/** Content-Disposition of a CPIM that carries an IMDN (RFC 5438 §7.1.1). */
export const IMDN_DISPOSITION = 'notification';

/** SDP names of MSRP media (RFC 4975 §8.1, RFC 4976 for TLS). */
export const MSRP_MEDIA = 'message';
export const MSRP_PROTOCOLS = ['TCP/MSRP', 'TCP/TLS/MSRP'] as const;
