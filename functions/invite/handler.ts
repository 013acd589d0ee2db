/**
 * Lambda entry of `invite` (steps 10-13 of Figure 30): the edge invokes it synchronously with
 * the INVITE; deletions happen here, retrievals are queued for `deliver`.
 */
import { newTag } from '#shared/sip/dialog/index.ts';
import { edgeSessionOwner, newSessionId } from '#shared/msrp/session-owner.ts';
import { MSRP_DEFAULT_PORT } from '#shared/msrp/uri.ts';
import {
  fanOutChanges,
  lambdaHandler,
  observability,
  serviceSettings,
  tracedAwsPorts,
} from '#shared/observability/lambda-runtime.ts';
import { emitMetric } from '#shared/observability/recorder.ts';
import type { SipRequestEvent } from '#shared/events.ts';
import { makeHandler } from './logic.ts';

const obs = observability('invite');
const ports = tracedAwsPorts(obs.tracer);
const { config, policy, serviceUris } = serviceSettings();

const invite = makeHandler({
  messages: ports.messages,
  onDeleted: (count) => emitMetric(obs.metrics, 'Deletions', count),
  sessions: ports.sessions,
  queue: ports.queue,
  policy,
  serviceUris,
  // Clients connect to the advertised host (the NLB) on the MSRP port (protocol.md step 14).
  msrp: { host: config.advertise, port: config.msrpPort },
  newTag,
  // The id names the owning task (its private address, the edge's container MSRP port, 2855:
  // cdk/constructs/edge.ts CONTAINER_PORTS), so another task reached through the NLB relays to it.
  newSessionId: (edgeId) => newSessionId(edgeSessionOwner(edgeId, MSRP_DEFAULT_PORT)),
  now: Date.now,
  // No SIP socket here: an edge task takes the IMDN off the outbound queue and sends it.
  sendFailureImdn: (m) => ports.outbox.failed(m),
});

export const handler = lambdaHandler(obs, async (event: SipRequestEvent) =>
  fanOutChanges(await invite(event), ports.changes, obs.logger),
);
