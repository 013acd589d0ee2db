/**
 * Lambda entry of `invite` (steps 10-13 of Figure 30): the edge invokes it synchronously with
 * the INVITE; deletions happen here, retrievals are queued for `deliver`.
 */
import { MSRP_DEFAULT_PORT } from '#shared/msrp/uri.ts';
import {
  fanOutChanges,
  lambdaHandler,
  metricEvents,
  observability,
  serviceSettings,
  tracedAwsPorts,
} from '#shared/observability/lambda-runtime.ts';
import type { SipRequestEvent } from '#shared/events.ts';
import { buildInvite } from './build.ts';

const obs = observability('invite');
const ports = tracedAwsPorts(obs.tracer);
const { config, policy, serviceUris } = serviceSettings();

const invite = buildInvite({
  ports,
  policy,
  serviceUris,
  // Clients connect to the advertised host (the NLB) on the MSRP port (protocol.md step 14).
  msrp: config.advertiseTransports.msrp ?? { host: config.advertise, port: config.msrpPort },
  // INVITEs over TLS (ended at the NLB) get an msrps: path on the NLB's MSRP TLS listener.
  ...(config.advertiseTransports.msrps ? { msrps: config.advertiseTransports.msrps } : {}),
  // The id names the owning task (its private address, the edge's container MSRP port, 2855:
  // cdk/constructs/edge.ts CONTAINER_PORTS), so another task reached through the NLB relays to it.
  ownerMsrpPort: MSRP_DEFAULT_PORT,
  events: metricEvents(obs),
  now: Date.now,
});

export const handler = lambdaHandler(obs, async (event: SipRequestEvent) =>
  fanOutChanges(await invite(event), ports.changes, obs.logger),
);
