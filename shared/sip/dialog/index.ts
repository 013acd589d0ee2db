/**
 * UAS dialogs (RFC 3261 §12): creation from SUBSCRIBE / INVITE, dialog ids, in-dialog requests.
 */
export { createUasDialog, dialogIdOf, newTag, remoteCSeqOf, checkRemoteCSeq } from './uas-dialog.ts';
export { buildInDialogRequest, requestUriAndRoutes, targetOfDialog } from './in-dialog-request.ts';
export type { InDialogRequestOptions } from './in-dialog-request.ts';
