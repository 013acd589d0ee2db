/**
 * What the edge advertises behind a load balancer (as Kamailio's `listen=... advertise`): per
 * transport the host and port a client reaches, sips: for TLS even when a load balancer ended
 * it, and the Via sent-by of requests it sends; bad values stop the start naming the variable.
 */
import { describe, expect, it } from 'vitest';
import { contactUri } from '#functions/edge/edge.ts';
import { ConfigError, loadConfig } from '#shared/config.ts';
import { TransportLayer } from '#shared/sip/transport/index.ts';

const NLB = {
  SIP_ADVERTISE: 'nlb.example.net',
  SIP_ADVERTISE_UDP: 'nlb.example.net:5060',
  SIP_ADVERTISE_TCP: 'nlb.example.net:5062',
  SIP_ADVERTISE_TLS: 'nlb.example.net:5061',
  SIP_ADVERTISE_MSRP: 'nlb.example.net:2855',
  SIP_TLS_OFFLOAD_PORT: '5063',
};

describe('advertised addresses', () => {
  it('names the listener of the transport the request came over, not the container port', () => {
    const config = loadConfig(NLB);
    expect(contactUri(config, 'udp', 5060)).toBe('<sip:pf@nlb.example.net:5060;transport=udp>');
    expect(contactUri(config, 'tcp', 5062)).toBe('<sip:pf@nlb.example.net:5062;transport=tcp>');
    // A connection on the TLS offload port (5063) is TLS to the client: sips on the TLS listener.
    expect(contactUri(config, 'tls', 5063)).toBe('<sips:pf@nlb.example.net:5061;transport=tls>');
    expect(config.tlsOffloadPort).toBe(5063);
    expect(config.advertiseTransports.msrp).toEqual({ host: 'nlb.example.net', port: 2855 });
  });

  it('falls back to SIP_ADVERTISE and the local port where no transport address is given', () => {
    const config = loadConfig({ SIP_ADVERTISE: '192.0.2.7', SIP_ADVERTISE_TLS: '[2001:db8::5]:5061' });
    expect(contactUri(config, 'tcp', 40000)).toBe('<sip:pf@192.0.2.7:40000;transport=tcp>');
    expect(contactUri(config, 'tls', 5061)).toBe('<sips:pf@[2001:db8::5]:5061;transport=tls>');
  });

  it.each([
    ['SIP_ADVERTISE_TCP', 'nlb.example.net'],
    ['SIP_ADVERTISE_UDP', 'nlb.example.net:0'],
    ['SIP_ADVERTISE_TLS', 'nlb.example.net:70000'],
    ['SIP_ADVERTISE_MSRP', 'bad host:2855'],
    ['SIP_ADVERTISE_WS', '[nlb.example.net]:80'],
    ['SIP_TLS_OFFLOAD_PORT', 'tls'],
    ['SIP_IDLE_TIMEOUT', '-5'],
  ])('stops the start on %s=%s, naming it', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^${name}: `));
  });

  it('puts the advertised address of the transport in the Via sent-by of requests it sends', () => {
    const transport = new TransportLayer({
      host: '127.0.0.1',
      advertised: { udp: { host: 'nlb.example.net', port: 5060 }, tls: { host: 'nlb.example.net', port: 5061 } },
    });
    expect(transport.sentBy('udp')).toEqual({ host: 'nlb.example.net', port: 5060 });
    expect(transport.sentBy('tls')).toEqual({ host: 'nlb.example.net', port: 5061 });
    expect(transport.sentBy('tcp')).toEqual({ host: '127.0.0.1', port: 5060 });
  });
});
