/**
 * SIP transactions (RFC 3261 §17, RFC 6026): server INVITE and non-INVITE, client non-INVITE.
 */
export { TransactionLayer } from './transaction-layer.ts';
export type { TransactionLayerOptions, TransactionTransport } from './transaction-layer.ts';
export type { ServerTransaction } from './server-transaction.ts';
export { DEFAULT_TIMERS, TRYING_DELAY_MS, resolveTimers } from './timers.ts';
export type { Timers } from './timers.ts';
export { MAGIC_COOKIE, newBranch, serverTransactionKey, clientTransactionKey, ackMatchKey } from './keys.ts';
export { InviteServerTransaction } from './server-invite.ts';
export type { InviteServerState } from './server-invite.ts';
export { NonInviteServerTransaction } from './server-non-invite.ts';
export type { NonInviteServerState } from './server-non-invite.ts';
export { NonInviteClientTransaction } from './client-non-invite.ts';
export type { NonInviteClientState } from './client-non-invite.ts';
