/**
 * SUBSCRIBE to the deferred-messages package (protocol.md "SUBSCRIBE", RFC 6665 §4.2.1):
 * steps 2-7 of Figure 30. Answers the request and returns the NOTIFY to send right after it.
 */
import type { SipHandlerResult, SipRequestEvent } from '#shared/events.ts';
import type { Subscription } from '#shared/deferred/model.ts';
import type { SubscriptionSignal } from '#shared/ports.ts';
import { EVENT_PACKAGE } from '#shared/deferred/names.ts';
import { acceptsList, grantExpires } from '#shared/deferred/policy.ts';
import { getHeader, getHeaders, parseNameAddr } from '#shared/sip/messages/index.ts';
import { checkRemoteCSeq, createUasDialog, dialogIdOf } from '#shared/sip/dialog/index.ts';
import { servedUser, targetsOwnList } from '#shared/service/identity.ts';
import { currentList, notifyRequest, notifyWatchers, type NotifyDeps } from '#shared/service/notifications.ts';
import { reply, requestOfEvent } from '#shared/service/sip-event.ts';
import { LIST_CONTENT_TYPE } from '#shared/deferred/names.ts';

export interface SubscribeDeps extends NotifyDeps {
  /** The service's own URIs a user may also address (besides their own AOR). */
  serviceUris: string[];
  /** A fresh To tag for a new dialog. */
  newTag: () => string;
}

export type SubscribeEvent = SipRequestEvent | SubscriptionSignal;

export function makeHandler(deps: SubscribeDeps) {
  return async function subscribe(event: SubscribeEvent): Promise<SipHandlerResult> {
    if ('type' in event) {
      if (event.type === 'notify-failed') {
        // protocol.md: 481, 408, timeout or another final non-2xx without Retry-After ends it.
        await deps.subscriptions.delete(event.user, event.dialogId);
        return { response: reply(200) };
      }
      return { response: reply(200), requests: await notifyWatchers(deps, event) };
    }
    return handleSubscribe(deps, event);
  };
}

async function handleSubscribe(deps: SubscribeDeps, event: SipRequestEvent): Promise<SipHandlerResult> {
  const request = requestOfEvent(event);
  const nowMs = deps.now();
  const nowSec = Math.floor(nowMs / 1000);

  // RFC 6665 §4.2.1.1: unknown or missing package -> 489 with Allow-Events.
  const eventHeader = getHeader(request, 'Event');
  const pkg = eventHeader?.split(';')[0]?.trim().toLowerCase();
  if (pkg !== EVENT_PACKAGE) {
    return { response: reply(489, 'Bad Event', [{ name: 'Allow-Events', value: EVENT_PACKAGE }]) };
  }

  const user = servedUser(request, event.trusted);
  if (!user) return { response: reply(400, 'Bad Request - No usable identity') };
  const inDialog = parseNameAddr(getHeader(request, 'To') ?? '')?.params.tag != null;
  // An in-dialog SUBSCRIBE is addressed to our Contact (RFC 3261 §12.2.1.1), not to the list; the
  // dialog lookup below is keyed by the served user, so it reaches only that user's subscription.
  if (!inDialog && !targetsOwnList(request, user, deps.serviceUris)) {
    return { response: reply(403, 'Forbidden - Not your deferred-message list') };
  }

  // RFC 3261 §20.1: no Accept means the package's default; an empty one admits nothing.
  const accept = getHeader(request, 'Accept') === undefined ? undefined : getHeaders(request, 'Accept');
  if (!acceptsList(accept)) {
    return { response: reply(406, 'Not Acceptable', [{ name: 'Accept', value: LIST_CONTENT_TYPE }]) };
  }

  const toTag = parseNameAddr(getHeader(request, 'To') ?? '')?.params.tag ?? undefined;
  const expiresHeader = getHeader(request, 'Expires');
  const requested = expiresHeader === undefined ? undefined : Number(expiresHeader);

  if (toTag) return refresh(deps, request, event.flow, user, requested, nowMs);

  if (!getHeader(request, 'Contact')) return { response: reply(400, 'Bad Request - Missing Contact') };

  const granted = grantExpires(requested, deps.policy, { inDialog: false });
  if (!granted.ok) {
    return {
      response: reply(423, 'Interval Too Brief', [{ name: 'Min-Expires', value: String(granted.minExpires) }]),
    };
  }

  const localTag = deps.newTag();
  const dialog = createUasDialog(request, localTag, event.flow);
  const dialogId = dialogIdOf(dialog);
  const list = await currentList(deps, user);
  const sub: Subscription = {
    user,
    dialogId,
    dialog,
    version: 0,
    expiresAt: nowSec + granted.expires,
    state: 'active',
  };
  const ok = {
    status: 200,
    toTag: localTag,
    headers: [{ name: 'Expires', value: String(granted.expires) }],
  };

  if (granted.expires === 0) {
    // A one-time fetch (RFC 6665 §4.4.3): 200, then one terminating NOTIFY with the list.
    const notify = notifyRequest(sub, list, { cseq: 1, version: 0 }, deps.policy, nowMs, 'timeout');
    return { response: ok, requests: [notify] };
  }

  // The first NOTIFY's counters are taken in the put itself (one write, not two): it goes out
  // with version 0 and the dialog's next CSeq (RFC 3261 §12.2.1.1), the stored ones are past it.
  const counters = { cseq: dialog.localCSeq + 1, version: 0 };
  await deps.subscriptions.put({ ...sub, version: 1, dialog: { ...dialog, localCSeq: counters.cseq } });
  return { response: ok, requests: [notifyRequest(sub, list, counters, deps.policy, nowMs)] };
}

/** In-dialog SUBSCRIBE: refresh, or `Expires: 0` to end it (RFC 6665 §4.2.1.2, §4.4.1). */
async function refresh(
  deps: SubscribeDeps,
  request: ReturnType<typeof requestOfEvent>,
  flow: SipRequestEvent['flow'],
  user: string,
  requested: number | undefined,
  nowMs: number,
): Promise<SipHandlerResult> {
  const nowSec = Math.floor(nowMs / 1000);
  const dialogId = dialogIdOf(request);
  const sub = await deps.subscriptions.get(user, dialogId, nowSec);
  if (!sub) return { response: reply(481, 'Subscription Does Not Exist') };
  // RFC 3261 §12.2.2: a CSeq below the dialog's remote sequence number is out of order -> 500.
  const cseq = checkRemoteCSeq(sub.dialog.remoteCSeq, request);
  if (!cseq.ok) return { response: reply(cseq.status, cseq.reason) };

  const granted = grantExpires(requested, deps.policy, { inDialog: true });
  if (!granted.ok) {
    return {
      response: reply(423, 'Interval Too Brief', [{ name: 'Min-Expires', value: String(granted.minExpires) }]),
    };
  }
  const list = await currentList(deps, user);
  // Ending it takes the last NOTIFY's counters and removes it in one write.
  const counters =
    granted.expires === 0
      ? await deps.subscriptions.endNotify(user, dialogId)
      : await deps.subscriptions.nextNotify(user, dialogId);
  if (!counters) return { response: reply(481, 'Subscription Does Not Exist') };
  const ok = { status: 200, headers: [{ name: 'Expires', value: String(granted.expires) }] };

  if (granted.expires === 0) {
    return { response: ok, requests: [notifyRequest(sub, list, counters, deps.policy, nowMs, 'timeout')] };
  }
  // The refresh came through the edge task that holds the client now (after a task replacement,
  // or a new connection through the NLB, not the one that created the subscription): bind the
  // subscription to it, so later NOTIFYs and fan-outs reach a live task.
  const renewed: Subscription = {
    ...sub,
    dialog: { ...sub.dialog, remoteCSeq: cseq.remoteCSeq, flow },
    expiresAt: nowSec + granted.expires,
  };
  if (!(await deps.subscriptions.renew(user, dialogId, renewed.expiresAt, cseq.remoteCSeq, flow))) {
    return { response: reply(481, 'Subscription Does Not Exist') };
  }
  return { response: ok, requests: [notifyRequest(renewed, list, counters, deps.policy, nowMs)] };
}
