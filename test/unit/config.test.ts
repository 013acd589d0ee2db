/** Settings a user got wrong are refused at start, naming the variable. */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '#shared/config.ts';

const LAMBDA = {
  HANDLER_MODE: 'lambda',
  SUBSCRIBE_FUNCTION_NAME: 's',
  INVITE_FUNCTION_NAME: 'i',
  DEPOSIT_FUNCTION_NAME: 'd',
  OUTBOUND_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/1/q',
  DELIVERY_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/1/d',
};

function refusal(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('accepted');
}

describe('loadConfig', () => {
  it('refuses a RETENTION over 5 years (DynamoDB TTL ignores those items) and takes 5 years', () => {
    expect(refusal({ RETENTION: '1826d' }).variable).toBe('RETENTION');
    expect(refusal({ RETENTION: '1826d' }).message).toContain('over 5 years');
    expect(loadConfig({ RETENTION: '1825d' }).retentionSeconds).toBe(1825 * 86_400);
  });

  it('takes the store caps as byte sizes with units, defaults 1000 messages, 64 MiB per user, 8 GiB in all', () => {
    expect(loadConfig({})).toMatchObject({
      maxMessagesPerUser: 1000,
      maxBytesPerUser: 64 * 1024 ** 2,
      maxStoreBytes: 8 * 1024 ** 3,
    });
    expect(
      loadConfig({ MAX_BYTES_PER_USER: '512K', MAX_STORE_BYTES: '2g', MAX_MESSAGES_PER_USER: '20' }),
    ).toMatchObject({
      maxBytesPerUser: 512 * 1024,
      maxStoreBytes: 2 * 1024 ** 3,
      maxMessagesPerUser: 20,
    });
    expect(loadConfig({ MAX_BYTES_PER_USER: '65536' }).maxBytesPerUser).toBe(65_536);
    for (const bad of ['0', '-1', '1.5M', 'lots', '64X']) {
      expect(refusal({ MAX_BYTES_PER_USER: bad }).variable).toBe('MAX_BYTES_PER_USER');
    }
    expect(refusal({ MAX_STORE_BYTES: '99999999999999T' }).variable).toBe('MAX_STORE_BYTES');
    expect(refusal({ MAX_MESSAGES_PER_USER: '0' }).variable).toBe('MAX_MESSAGES_PER_USER');
  });

  it("takes the store's page cache as a byte size, 2 MiB by default", () => {
    expect(loadConfig({}).sqliteCacheBytes).toBe(2 * 1024 ** 2);
    expect(loadConfig({ SQLITE_CACHE_SIZE: '16M' }).sqliteCacheBytes).toBe(16 * 1024 ** 2);
    expect(refusal({ SQLITE_CACHE_SIZE: 'big' }).variable).toBe('SQLITE_CACHE_SIZE');
    expect(loadConfig({}).sqliteCommitDelayMs).toBe(20);
    expect(loadConfig({ SQLITE_COMMIT_DELAY_MS: '0' }).sqliteCommitDelayMs).toBe(0);
    expect(refusal({ SQLITE_COMMIT_DELAY_MS: '5ms' }).variable).toBe('SQLITE_COMMIT_DELAY_MS');
    expect(refusal({ SQLITE_COMMIT_DELAY_MS: '5000' }).message).toContain('from 0 to 1000');
    expect(loadConfig({}).udpReceiveBufferBytes).toBe(4 * 1024 ** 2);
    expect(loadConfig({ SIP_UDP_RECEIVE_BUFFER: '8M' }).udpReceiveBufferBytes).toBe(8 * 1024 ** 2);
    expect(refusal({ SIP_UDP_RECEIVE_BUFFER: 'lots' }).variable).toBe('SIP_UDP_RECEIVE_BUFFER');
  });

  it('refuses a TLS key without its certificate, and a certificate without its key', () => {
    expect(refusal({ SIP_TLS_KEY: '/etc/key.pem' }).variable).toBe('SIP_TLS_CERT');
    expect(refusal({ SIP_TLS_CERT: '/etc/cert.pem' }).variable).toBe('SIP_TLS_KEY');
    expect(loadConfig({ SIP_TLS_KEY: '/k', SIP_TLS_CERT: '/c' })).toMatchObject({
      tlsKeyFile: '/k',
      tlsCertFile: '/c',
    });
  });

  it('serves MSRP over TLS on MSRPS_PORT, on 2856 once a certificate is configured, never with TLS offload', () => {
    expect(loadConfig({}).msrpsPort).toBeUndefined();
    expect(loadConfig({ MSRPS_PORT: '0' }).msrpsPort).toBe(0);
    expect(loadConfig({ SIP_TLS_KEY: '/k', SIP_TLS_CERT: '/c' }).msrpsPort).toBe(2856);
    expect(
      loadConfig({ SIP_TLS_KEY: '/k', SIP_TLS_CERT: '/c', MSRP_TLS_OFFLOAD_PORT: '2866' }).msrpsPort,
    ).toBeUndefined();
    expect(refusal({ MSRPS_PORT: '2856', MSRP_TLS_OFFLOAD_PORT: '2866' }).variable).toBe('MSRPS_PORT');
  });

  it('keeps the flow ladder on locally and off in lambda mode unless FLOW_TRACE says otherwise', () => {
    expect(loadConfig({}).flowTrace).toBe(true);
    expect(loadConfig(LAMBDA).flowTrace).toBe(false);
    expect(loadConfig({ ...LAMBDA, FLOW_TRACE: 'on' }).flowTrace).toBe(true);
    expect(loadConfig({ FLOW_TRACE: 'off' }).flowTrace).toBe(false);
    expect(refusal({ FLOW_TRACE: 'maybe' }).variable).toBe('FLOW_TRACE');
  });

  it('refuses a short or spaced ADMIN_TOKEN', () => {
    expect(refusal({ ADMIN_TOKEN: 'short' }).variable).toBe('ADMIN_TOKEN');
    expect(refusal({ ADMIN_TOKEN: 'has a space in it, long enough' }).variable).toBe('ADMIN_TOKEN');
    expect(loadConfig({ ADMIN_TOKEN: 'a'.repeat(16) }).adminToken).toBe('a'.repeat(16));
  });
});
