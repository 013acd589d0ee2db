/**
 * protocol.md "Deposit": a message that expires (or is deleted) undelivered earns its sender an
 * IMDN `failed` when the sender asked for `negative-delivery` (RFC 5438 §7.2.1.1), carried in a
 * SIP MESSAGE (RFC 3428) whose body is the CPIM wrapping the notification. It goes to the
 * configured outbound proxy (the SIP/IP Core), else straight to an address-literal host.
 */
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { ulid } from 'ulid';
import { serviceUri } from '../../shared/config.ts';
import { failedDeliveryImdn } from '../../shared/deferred/message.ts';
import type { DeferredMessage } from '../../shared/deferred/model.ts';
import { parseUri } from '../../shared/sip/messages/index.ts';
import type { SipRequest, SipUri } from '../../shared/sip/messages/types.ts';
import type { Target, TransportName } from '../../shared/sip/transport/index.ts';
import type { RequestSender } from './in-dialog-sender.ts';
import type { LogFn } from './edge.ts';

export function makeFailureImdnSender(deps: {
  transactions: RequestSender;
  domain: string;
  outboundProxy?: string;
  log: LogFn;
  onSent?: (status: number) => void;
}): (message: DeferredMessage) => Promise<void> {
  return async (message) => {
    const target = targetFor(deps.outboundProxy ?? message.from);
    if (!target) {
      deps.log('warn', 'no route for an IMDN failure report', { to: message.from, messageId: message.messageId });
      deps.onSent?.(0);
      return;
    }
    const imdn = failedDeliveryImdn(message, { now: new Date(), messageId: ulid() });
    const request: SipRequest = {
      kind: 'request',
      method: 'MESSAGE',
      uri: imdn.to,
      headers: [
        { name: 'Max-Forwards', value: '70' },
        { name: 'From', value: `<${serviceUri(deps.domain)}>;tag=${randomBytes(6).toString('hex')}` },
        { name: 'To', value: `<${imdn.to}>` },
        { name: 'Call-ID', value: `${randomBytes(10).toString('hex')}@${deps.domain}` },
        { name: 'CSeq', value: '1 MESSAGE' },
        { name: 'Content-Type', value: imdn.contentType },
      ],
      body: imdn.cpim,
    };
    const response = await deps.transactions.request(request, target);
    deps.onSent?.(response.status);
  };
}

/** RFC 3263 without DNS: only an address-literal host can be reached directly. */
function targetFor(uriText: string): Target | undefined {
  const uri = parseUri(uriText);
  if (!uri || (uri.scheme !== 'sip' && uri.scheme !== 'sips')) return undefined;
  const sip = uri as SipUri;
  const host = sip.host.replace(/^\[|\]$/g, '');
  if (isIP(host) === 0) return undefined;
  const param = sip.params.transport?.toLowerCase();
  const transport: TransportName = sip.scheme === 'sips' ? 'tls' : param === 'tcp' ? 'tcp' : param === 'tls' ? 'tls' : 'udp';
  return { transport, address: host, port: sip.port ?? (transport === 'tls' ? 5061 : 5060) };
}
