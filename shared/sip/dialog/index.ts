/**
 * UAS dialogs (RFC 3261 §12): creation from SUBSCRIBE / INVITE, dialog ids, in-dialog requests.
 */
export { createUasDialog, dialogIdOf, newTag, recordRouteCopy, remoteCSeqOf, checkRemoteCSeq } from './uas-dialog.ts';
export { buildInDialogRequest, requestUriAndRoutes } from './in-dialog-request.ts';
export {
  UDP_MTU_LIMIT,
  followsFlow,
  nextHopOf,
  overUdpLimit,
  targetOfUri,
  transportOfUri,
  uriOfValue,
} from './next-hop.ts';
export type { DialogState, Flow } from './types.ts';
export type { InDialogRequestOptions } from './in-dialog-request.ts';
