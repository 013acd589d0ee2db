/**
 * The batch store calls (DeferredMessageStore.claimMany, releaseMany, deleteMany) for one id,
 * for tests about one message: what the batch did with it.
 */
import type { DeferredMessage } from '#shared/deferred/model.ts';
import type { DeferredMessageStore } from '#shared/ports.ts';

/** The message when `holder` took it, undefined when it was left out. */
export async function claimOne(
  store: DeferredMessageStore,
  user: string,
  id: string,
  holder: string,
  nowSec: number,
  leaseSeconds: number,
): Promise<DeferredMessage | undefined> {
  return (await store.claimMany(user, [id], holder, nowSec, leaseSeconds))[0];
}

/** True when it was given back. */
export async function releaseOne(
  store: DeferredMessageStore,
  user: string,
  id: string,
  holder: string,
): Promise<boolean> {
  return (await store.releaseMany(user, [id], holder)).includes(id);
}

/** True when it was there (and left the user's count). */
export async function deleteOne(store: DeferredMessageStore, user: string, id: string): Promise<boolean> {
  return (await store.deleteMany(user, [id])).includes(id);
}
