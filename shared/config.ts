/**
 * The service's configuration: one environment variable per setting (docs/architecture.md "Configuration"),
 * the local defaults when unset. A bad value stops the start with a message naming the variable.
 */
import { randomBytes } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import { parseDuration } from './deferred/policy.ts';
import { TRANSPORT_DEFAULTS } from './sip/transport/types.ts';

export interface Config {
  sipDomain: string;
  listen: string;
  /** UDP, and TCP unless `sipTcpPort` differs (RFC 3261 §18). 0 = any free port. */
  sipPort: number;
  /** TCP, SIP_TCP_PORT (defaults to SIP_PORT; a container behind an NLB needs them apart). */
  sipTcpPort: number;
  sipsPort: number;
  wsPort: number;
  msrpPort: number;
  adminPort: number;
  /** Host advertised in SDP answers, Contact and MSRP paths; the listen address unless set. */
  advertise: string;
  /**
   * Per transport, the host and port a client reaches this edge at, when they differ from the
   * listener's (a load balancer in front; as Kamailio's `listen=... advertise ip:port`):
   * SIP_ADVERTISE_UDP / _TCP / _TLS / _WS and SIP_ADVERTISE_MSRP, each `host:port`. Contact
   * and Via name them; the SDP a=path names the MSRP one.
   */
  advertiseTransports: Partial<Record<AdvertisedTransport, HostPort>>;
  /**
   * SIP_TLS_OFFLOAD_PORT: a plain TCP listener for connections whose TLS a load balancer ended;
   * they count as TLS (sips: Contact on the advertised TLS address).
   */
  tlsOffloadPort?: number;
  /**
   * MSRP_TLS_OFFLOAD_PORT: plain TCP for MSRP whose TLS a load balancer ended; with
   * SIP_ADVERTISE_MSRPS, sessions set up over SIP over TLS get an msrps: a=path there.
   */
  msrpTlsOffloadPort?: number;
  /**
   * MSRPS_PORT: MSRP over TLS ended by the edge itself (RFC 4975 §15), with the SIP TLS
   * certificate (SIP_TLS_CERT/SIP_TLS_KEY, else the local self-signed pair), whose fingerprint
   * the SDP answer carries (RFC 8122 §5). Unset: 2856 when SIP_TLS_CERT is set, else off; never
   * together with MSRP_TLS_OFFLOAD_PORT.
   */
  msrpsPort?: number;
  /**
   * SIP_UDP_RECEIVE_BUFFER: the SIP UDP socket's kernel receive buffer (e.g. 4M, the default;
   * Linux grants at most net.core.rmem_max), where datagrams wait while the loop is busy.
   */
  udpReceiveBufferBytes: number;
  /** SIP_IDLE_TIMEOUT (seconds): idle SIP stream connections are closed; below any load balancer's. */
  idleTimeoutSeconds: number;
  dataDir: string;
  /**
   * SQLITE_SYNCHRONOUS, the local default's store: FULL (default) fsyncs every commit, so an
   * acknowledged message survives a power cut; NORMAL only at checkpoints (survives a crash of
   * the process, not of the machine). For benchmarks and machines with a battery-backed cache.
   */
  sqliteSynchronous: 'FULL' | 'NORMAL';
  /**
   * SQLITE_CACHE_SIZE, the store's page cache (e.g. 2M, the default; 16M as better-sqlite3 sets
   * it). Pages past it are read back from the OS's file cache, which holds them anyway.
   */
  sqliteCacheBytes: number;
  /**
   * SQLITE_COMMIT_DELAY_MS (default 20; 0 turns it off): while the event loop is busy (over half
   * its time, the whole delay at 90 %), a group commit waits up to this long after the one before
   * it, so one commit and one fdatasync carry more writes. A calm loop commits at once.
   */
  sqliteCommitDelayMs: number;
  trustedPeers: string[];
  /**
   * Address ranges of clients admitted directly, whose From URI is their identity (protocol.md
   * "Who is asking"); anyone neither trusted nor in these ranges gets 403. Loopback by default.
   */
  directClients: string[];
  /** Where the admin and control HTTP port listens: loopback unless set (the control API is private). */
  adminListen: string;
  /**
   * CONTROL_TOKEN: the bearer token every /control/* call must carry (the handlers send it).
   * Unset: a random one per start, so that locally nothing outside this process can call it.
   */
  controlToken: string;
  /**
   * MSRP_RELAY_ALLOW: address ranges of the other edge tasks. An MSRP connection for a session
   * held by a task in them is handed to that task; empty (the default) relays nothing.
   */
  msrpRelayAllow: string[];
  retentionSeconds: number;
  /** DELIVERY_LEASE: how long a delivery holds a message it claimed (Policy.deliveryLeaseSeconds). */
  deliveryLeaseSeconds: number;
  /** MAX_MESSAGES_PER_USER, MAX_BYTES_PER_USER, MAX_STORE_BYTES: the store's caps (Policy). */
  maxMessagesPerUser: number;
  maxBytesPerUser: number;
  maxStoreBytes: number;
  /** Optional PEM files; the local default makes a self-signed pair under dataDir. */
  tlsKeyFile?: string;
  tlsCertFile?: string;
  /** 'local' calls the handlers in-process; 'lambda' invokes the deployed functions (AWS mode). */
  handlerMode: 'local' | 'lambda';
  /** How long the edge waits for the handlers before answering 503 (AWS mode). */
  handlerTimeoutMs: number;
  /** TRACE_SAMPLE_RATE: the share of function invocations the edge marks sampled for X-Ray (0-1; 0). */
  traceSampleRate: number;
  /** In-flight handler calls above which new requests get 503 + Retry-After (load shedding). */
  maxInFlight: number;
  /** MAX_TRANSACTIONS: SIP server transactions held at most; past it new requests get a stateless 503. */
  maxTransactions: number;
  /** MAX_LOOP_LAG_MS: how late the event loop may run before new requests get 503 + Retry-After. */
  maxLoopLagMs: number;
  /**
   * Where out-of-dialog requests the service originates (IMDN failure reports) go: the SIP/IP
   * Core's entry, as a SIP URI with an IP address host (RFC 3261 §8.1.2 outbound proxy).
   * Unset: straight to the recipient's host when it is an address literal, otherwise not sent
   * (and counted).
   */
  outboundProxy?: string;
  /** AWS mode: the functions the edge invokes (HANDLER_MODE=lambda). */
  functions?: { subscribe: string; invite: string; deposit: string };
  /**
   * AWS mode: OUTBOUND_QUEUE_URL, the queue of IMDN failure reports the functions enqueue and
   * the edge sends (the local default uses its own SQLite job queue).
   */
  outboundQueueUrl?: string;
  /**
   * AWS mode: DELIVERY_QUEUE_URL, where the edge queues its delivery reports (the MSRP outcome
   * of each hand-off) for the deliver function to settle.
   */
  deliveryQueueUrl?: string;
  /** How handlers reach this task's control API; found from the ECS task metadata when unset. */
  edgeId?: string;
  /**
   * ADMIN_TOKEN: the operator credential for /api and the console; unset, one is made at first
   * start and kept in DATA_DIR/admin-token.
   */
  adminToken?: string;
  /** FLOW_TRACE: keep the last SIP/MSRP first lines for the console's ladder (on locally, off in lambda mode). */
  flowTrace: boolean;
}

/** DynamoDB's TTL ignores items whose expiry is more than five years away: the service's cap. */
export const MAX_RETENTION_SECONDS = 5 * 365 * 24 * 3600;
export type AdvertisedTransport = 'udp' | 'tcp' | 'tls' | 'ws' | 'msrp' | 'msrps';
export interface HostPort {
  host: string;
  port: number;
}

const ADVERTISE_VARIABLES: Record<AdvertisedTransport, string> = {
  udp: 'SIP_ADVERTISE_UDP',
  tcp: 'SIP_ADVERTISE_TCP',
  tls: 'SIP_ADVERTISE_TLS',
  ws: 'SIP_ADVERTISE_WS',
  msrp: 'SIP_ADVERTISE_MSRP',
  msrps: 'SIP_ADVERTISE_MSRPS',
};

/** `host:port` or `[v6]:port`; split at the last colon, so linear on any input. */
function hostPort(env: Env, name: string): HostPort | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const colon = raw.lastIndexOf(':');
  const host = colon > 0 ? raw.slice(0, colon) : '';
  const portText = colon > 0 ? raw.slice(colon + 1) : '';
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const hostOk = host.startsWith('[') ? isIP(bare) === 6 : /^[A-Za-z0-9.-]+$/.test(host);
  if (!hostOk || !/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    throw new ConfigError(name, `"${raw}" is not host:port (e.g. nlb.example.net:5060, [2001:db8::1]:5061)`);
  }
  return { host: bare, port: Number(portText) };
}

function advertiseTransports(env: Env): Partial<Record<AdvertisedTransport, HostPort>> {
  const out: Partial<Record<AdvertisedTransport, HostPort>> = {};
  for (const [transport, name] of Object.entries(ADVERTISE_VARIABLES) as [AdvertisedTransport, string][]) {
    const value = hostPort(env, name);
    if (value) out[transport] = value;
  }
  return out;
}

/** The service's own URI, which a user may address instead of their own AOR (protocol.md). */
export function serviceUri(domain: string): string {
  return `sip:deferred@${domain}`;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function port(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65535) {
    throw new ConfigError(name, `"${raw}" is not a port number (0-65535; 0 = any free port)`);
  }
  return Number(raw);
}

function positiveInt(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) <= 0) throw new ConfigError(name, `"${raw}" is not a positive integer`);
  return Number(raw);
}

function wholeNumber(env: Env, name: string, fallback: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) > max) {
    throw new ConfigError(name, `"${raw}" is not a whole number from 0 to ${max}`);
  }
  return Number(raw);
}

const BYTE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** A byte count: "65536", "64K", "64M", "8G" (powers of 1024), at least 1. */
function byteSize(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const m = /^(\d{1,15})\s*([kmgt]?)i?b?$/i.exec(raw.trim());
  const bytes = m ? Number(m[1]) * BYTE_UNITS[m[2]!.toLowerCase()]! : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new ConfigError(name, `"${raw}" is not a size in bytes (e.g. 65536, 64K, 64M, 8G)`);
  }
  return bytes;
}

function fraction(env: Env, name: string): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return 0;
  if (!/^(0(\.\d+)?|1(\.0+)?)$/.test(raw)) throw new ConfigError(name, `"${raw}" is not a number from 0 to 1`);
  return Number(raw);
}

/** CIDR ranges ("127.0.0.0/8", "::1/128", or a bare address). */
function cidrs(env: Env, name: string, fallback: string): string[] {
  const raw = env[name] ?? fallback;
  const ranges = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  for (const range of ranges) {
    const [addr, bits, extra] = range.split('/');
    const family = isIP(addr ?? '');
    const max = family === 6 ? 128 : 32;
    if (family === 0 || extra !== undefined || (bits !== undefined && !(/^\d+$/.test(bits) && Number(bits) <= max))) {
      throw new ConfigError(name, `"${range}" is not an address range (e.g. 127.0.0.0/8, 10.0.0.0/16, ::1/128)`);
    }
  }
  return ranges;
}

/** sip:/sips: [userinfo@] host [:port] [;params] [?headers] (RFC 3261 §19.1.1); group 1 is the host. */
const SIP_URI = /^sips?:(?:[^@\s]*@)?(\[[0-9A-Fa-f:.]+\]|[^\s:;?@[\]]+)(?::\d{1,5})?(?:[;?]\S*)?$/i;

/**
 * A SIP URI whose host is an IP address: the edge resolves no host names (RFC 3263 is not
 * implemented), so a proxy given by name could never be reached.
 */
function address(env: Env, name: string, fallback: string): string {
  const value = env[name] || fallback;
  if (isIP(value) === 0) throw new ConfigError(name, `"${value}" is not an IP address`);
  return value;
}

function sipUri(env: Env, name: string): string {
  const raw = env[name] ?? '';
  const host = SIP_URI.exec(raw)?.[1]?.replace(/^\[|\]$/g, '');
  if (host === undefined || isIP(host) === 0) {
    throw new ConfigError(
      name,
      `"${raw}" is not a SIP URI with an IP address host (e.g. sip:10.0.0.5:5060;transport=tcp)`,
    );
  }
  return raw;
}

function queueUrl(env: Env, variable: 'OUTBOUND_QUEUE_URL' | 'DELIVERY_QUEUE_URL', what: string): string {
  const value = env[variable];
  if (!value) throw new ConfigError(variable, `required with HANDLER_MODE=lambda (${what})`);
  if (!/^https?:\/\/\S+$/.test(value)) throw new ConfigError(variable, `"${value}" is not a queue URL`);
  return value;
}

function functionNames(env: Env): { subscribe: string; invite: string; deposit: string } {
  const name = (variable: string) => {
    const value = env[variable];
    if (!value) throw new ConfigError(variable, 'required with HANDLER_MODE=lambda (the function to invoke)');
    return value;
  };
  return {
    subscribe: name('SUBSCRIBE_FUNCTION_NAME'),
    invite: name('INVITE_FUNCTION_NAME'),
    deposit: name('DEPOSIT_FUNCTION_NAME'),
  };
}

function controlToken(env: Env): string {
  const value = env.CONTROL_TOKEN;
  if (value === undefined || value === '') return randomBytes(32).toString('base64url');
  if (value.length < 32 || !/^[\x21-\x7e]+$/.test(value)) {
    throw new ConfigError('CONTROL_TOKEN', 'must be at least 32 printable characters without spaces');
  }
  return value;
}

export function loadConfig(env: Env = process.env): Config {
  const listen = env.SIP_LISTEN || '127.0.0.1';
  if (isIP(listen) === 0) throw new ConfigError('SIP_LISTEN', `"${listen}" is not an IP address`);
  const sipDomain = env.SIP_DOMAIN || 'example.com';
  if (!/^[A-Za-z0-9.-]+$/.test(sipDomain)) throw new ConfigError('SIP_DOMAIN', `"${sipDomain}" is not a host name`);
  const retention = env.RETENTION || '7d';
  const retentionSeconds = parseDuration(retention);
  if (retentionSeconds === undefined || retentionSeconds <= 0) {
    throw new ConfigError('RETENTION', `"${retention}" is not a duration (e.g. 7d, 12h, 30m, 3600)`);
  }
  if (retentionSeconds > MAX_RETENTION_SECONDS) {
    throw new ConfigError('RETENTION', `"${retention}" is over 5 years (1825d), the longest DynamoDB's TTL honours`);
  }
  // A key without its certificate (or the reverse) would silently fall back to a self-signed pair.
  if (Boolean(env.SIP_TLS_KEY) !== Boolean(env.SIP_TLS_CERT)) {
    const [set, missing] = env.SIP_TLS_KEY ? ['SIP_TLS_KEY', 'SIP_TLS_CERT'] : ['SIP_TLS_CERT', 'SIP_TLS_KEY'];
    throw new ConfigError(missing, `required with ${set} (the key and its certificate go together)`);
  }
  const adminToken = env.ADMIN_TOKEN;
  if (adminToken !== undefined && adminToken !== '' && !/^[\x21-\x7e]{16,256}$/.test(adminToken)) {
    throw new ConfigError('ADMIN_TOKEN', '16 to 256 printable characters without spaces');
  }
  const flowTraceRaw = (env.FLOW_TRACE ?? '').toLowerCase();
  if (!['', 'on', 'off', '1', '0', 'true', 'false'].includes(flowTraceRaw)) {
    throw new ConfigError('FLOW_TRACE', `"${env.FLOW_TRACE}" is neither "on" nor "off"`);
  }
  const lease = env.DELIVERY_LEASE || '3m';
  const deliveryLeaseSeconds = parseDuration(lease);
  if (deliveryLeaseSeconds === undefined || deliveryLeaseSeconds <= 0) {
    throw new ConfigError('DELIVERY_LEASE', `"${lease}" is not a duration (e.g. 3m, 180)`);
  }
  const handlerMode = env.HANDLER_MODE || 'local';
  if (handlerMode !== 'local' && handlerMode !== 'lambda') {
    throw new ConfigError('HANDLER_MODE', `"${handlerMode}" is neither "local" nor "lambda"`);
  }
  const sqliteSynchronous = (env.SQLITE_SYNCHRONOUS || 'FULL').toUpperCase();
  if (sqliteSynchronous !== 'FULL' && sqliteSynchronous !== 'NORMAL') {
    throw new ConfigError('SQLITE_SYNCHRONOUS', `"${env.SQLITE_SYNCHRONOUS}" is neither FULL nor NORMAL`);
  }
  if (env.MSRPS_PORT && env.MSRP_TLS_OFFLOAD_PORT) {
    throw new ConfigError(
      'MSRPS_PORT',
      'set either it (TLS ended here) or MSRP_TLS_OFFLOAD_PORT (ended before), not both',
    );
  }
  const msrpsPort = env.MSRPS_PORT
    ? port(env, 'MSRPS_PORT', 0)
    : env.SIP_TLS_CERT && !env.MSRP_TLS_OFFLOAD_PORT
      ? 2856
      : undefined;
  const advertise = env.SIP_ADVERTISE || listen;
  if (!/^[A-Za-z0-9.:-]+$/.test(advertise)) throw new ConfigError('SIP_ADVERTISE', `"${advertise}" is not a host`);
  return {
    sipDomain,
    listen,
    sipPort: port(env, 'SIP_PORT', 5060),
    sipTcpPort: port(env, 'SIP_TCP_PORT', port(env, 'SIP_PORT', 5060)),
    sipsPort: port(env, 'SIPS_PORT', 5061),
    wsPort: port(env, 'SIP_WS_PORT', 5066),
    msrpPort: port(env, 'MSRP_PORT', 2855),
    adminPort: port(env, 'ADMIN_PORT', 8080),
    advertise,
    advertiseTransports: advertiseTransports(env),
    ...(env.SIP_TLS_OFFLOAD_PORT ? { tlsOffloadPort: port(env, 'SIP_TLS_OFFLOAD_PORT', 0) } : {}),
    ...(env.MSRP_TLS_OFFLOAD_PORT ? { msrpTlsOffloadPort: port(env, 'MSRP_TLS_OFFLOAD_PORT', 0) } : {}),
    ...(msrpsPort !== undefined ? { msrpsPort } : {}),
    udpReceiveBufferBytes: byteSize(env, 'SIP_UDP_RECEIVE_BUFFER', TRANSPORT_DEFAULTS.udpReceiveBufferBytes),
    idleTimeoutSeconds: positiveInt(env, 'SIP_IDLE_TIMEOUT', TRANSPORT_DEFAULTS.idleTimeoutMs / 1000),
    dataDir: env.DATA_DIR || '.data',
    sqliteSynchronous,
    sqliteCacheBytes: byteSize(env, 'SQLITE_CACHE_SIZE', 2 * 1024 ** 2),
    sqliteCommitDelayMs: wholeNumber(env, 'SQLITE_COMMIT_DELAY_MS', 20, 1000),
    trustedPeers: cidrs(env, 'TRUSTED_PEERS', '127.0.0.0/8'),
    directClients: cidrs(env, 'DIRECT_CLIENTS', '127.0.0.0/8,::1/128'),
    adminListen: address(env, 'ADMIN_LISTEN', '127.0.0.1'),
    controlToken: controlToken(env),
    msrpRelayAllow: cidrs(env, 'MSRP_RELAY_ALLOW', ''),
    retentionSeconds,
    deliveryLeaseSeconds,
    maxMessagesPerUser: positiveInt(env, 'MAX_MESSAGES_PER_USER', 1000),
    maxBytesPerUser: byteSize(env, 'MAX_BYTES_PER_USER', 64 * 1024 ** 2),
    maxStoreBytes: byteSize(env, 'MAX_STORE_BYTES', 8 * 1024 ** 3),
    ...(env.SIP_TLS_KEY ? { tlsKeyFile: env.SIP_TLS_KEY } : {}),
    ...(env.SIP_TLS_CERT ? { tlsCertFile: env.SIP_TLS_CERT } : {}),
    handlerMode,
    handlerTimeoutMs: positiveInt(env, 'HANDLER_TIMEOUT_MS', 3000),
    maxInFlight: positiveInt(env, 'MAX_IN_FLIGHT', 500),
    maxLoopLagMs: positiveInt(env, 'MAX_LOOP_LAG_MS', 250),
    // A completed UDP transaction is kept 32 s (Timer J) at under 1 KiB: 150,000 is about 4,700
    // new requests a second held, in about 150 MiB (50,000 capped UDP at about 1,560/s).
    maxTransactions: positiveInt(env, 'MAX_TRANSACTIONS', 150_000),
    traceSampleRate: fraction(env, 'TRACE_SAMPLE_RATE'),
    ...(env.OUTBOUND_PROXY ? { outboundProxy: sipUri(env, 'OUTBOUND_PROXY') } : {}),
    ...(handlerMode === 'lambda'
      ? {
          functions: functionNames(env),
          outboundQueueUrl: queueUrl(env, 'OUTBOUND_QUEUE_URL', 'the IMDN reports to send'),
          deliveryQueueUrl: queueUrl(env, 'DELIVERY_QUEUE_URL', 'where delivery reports go'),
        }
      : {}),
    ...(env.EDGE_ID ? { edgeId: env.EDGE_ID } : {}),
    ...(adminToken ? { adminToken } : {}),
    flowTrace: flowTraceRaw === '' ? handlerMode === 'local' : ['on', '1', 'true'].includes(flowTraceRaw),
  };
}

/**
 * Where the edge may send SIP of its own accord (NOTIFY and BYE asked for through /control/send,
 * IMDN reports): the SIP/IP Core (TRUSTED_PEERS), admitted direct clients (DIRECT_CLIENTS) and
 * the OUTBOUND_PROXY. Anything else is refused before a byte is sent, so that whoever reaches
 * the control API cannot aim the edge at arbitrary hosts.
 */
export function controlDestinations(config: Config): (address: string) => boolean {
  const proxyHost = config.outboundProxy ? SIP_URI.exec(config.outboundProxy)?.[1]?.replace(/^\[|\]$/g, '') : undefined;
  return makeTrustCheck([...config.trustedPeers, ...config.directClients, ...(proxyHost ? [proxyHost] : [])]);
}

/**
 * Whether an address belongs to the given ranges: the trusted ones (RFC 3325 §2: the trust
 * domain), or the MSRP relay's.
 */
export function makeTrustCheck(ranges: readonly string[]): (address: string) => boolean {
  const list = new BlockList();
  for (const range of ranges) {
    const [addr, bits] = range.split('/') as [string, string | undefined];
    const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(addr, family);
    else list.addSubnet(addr, Number(bits), family);
  }
  if (ranges.length === 0) return () => false;
  // Asked for every request and every send; BlockList.check builds a SocketAddress each time.
  // The answers for the addresses seen last are kept (a bounded memo: many sources clear it).
  const seen = new Map<string, boolean>();
  return (address) => {
    let known = seen.get(address);
    if (known === undefined) {
      const family = isIP(address);
      known = family !== 0 && list.check(address, family === 6 ? 'ipv6' : 'ipv4');
      if (seen.size >= TRUST_MEMO_SIZE) seen.clear();
      seen.set(address, known);
    }
    return known;
  };
}

/** Addresses whose trust answer a check keeps. */
const TRUST_MEMO_SIZE = 1024;
