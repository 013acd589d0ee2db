/**
 * Deployment settings from CDK context (`cdk deploy -c sipDomain=pf.example.net ...` or
 * cdk.json), with defaults that synthesize a working stack. A bad value stops the synth with
 * an error naming the context key; the edge's own settings are checked by the same
 * `loadConfig` the edge runs at start, so the deploy rejects what the edge would reject.
 */
import { ConfigError, loadConfig } from '../shared/config.ts';
import { parseDuration } from '../shared/deferred/policy.ts';

/** Where the edge's container image comes from. */
export type ImageSource = { kind: 'asset' } | { kind: 'ecr'; repository: string; tag: string };

export interface DeployConfig {
  /** The SIP domain the service answers for (SIP_DOMAIN). */
  sipDomain: string;
  /** Address ranges of the SIP/IP Core whose P-Asserted-Identity is believed (TRUSTED_PEERS). */
  trustedPeers: string[];
  /** ACM certificate for the NLB's TLS listener on 5061; no TLS listener without it. */
  certificateArn?: string;
  imageSource: ImageSource;
  /** Deferred-message retention as given (RETENTION), e.g. "7d". */
  retention: string;
  retentionSeconds: number;
  /** Days the Lambda, edge and flow logs are kept. */
  logRetentionDays: number;
  /** Edge task count bounds for CPU autoscaling. */
  minTasks: number;
  maxTasks: number;
  /** Optional e-mail address subscribed to the alarm topic. */
  alarmEmail?: string;
  /** SIP URI of the SIP/IP Core's entry for IMDN failure reports (OUTBOUND_PROXY). */
  outboundProxy?: string;
  /**
   * Fixed egress: the edge tasks leave through a NAT gateway with an Elastic IP (one address a
   * peer can allow-list) instead of their own changing public addresses.
   */
  fixedEgress: boolean;
  /** X-Ray for the functions: `sampled` (the edge marks TRACE_SAMPLE_RATE of its calls), `active`, `off`. */
  tracing: 'sampled' | 'active' | 'off';
}

export class DeployConfigError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`CDK context "${key}": ${message}`);
    this.name = 'DeployConfigError';
  }
}

/** The context keys this app reads, for the README and for error messages. */
export const CONTEXT_KEYS = [
  'sipDomain',
  'trustedPeers',
  'certificateArn',
  'imageSource',
  'retention',
  'logRetentionDays',
  'minTasks',
  'maxTasks',
  'alarmEmail',
  'outboundProxy',
  'fixedEgress',
  'tracing',
] as const;
export type ContextKey = (typeof CONTEXT_KEYS)[number];

/** The edge variable each context key feeds, so the edge's error can be reported by key. */
const EDGE_VARIABLE: Partial<Record<string, ContextKey>> = {
  SIP_DOMAIN: 'sipDomain',
  TRUSTED_PEERS: 'trustedPeers',
  RETENTION: 'retention',
  OUTBOUND_PROXY: 'outboundProxy',
};

/** CloudWatch Logs accepts only these retention periods (days). */
const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

const CERTIFICATE_ARN = /^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[A-Za-z0-9-]+$/;
/** ECR repository names (lowercase, with optional namespaces) and image tags. */
const ECR_SOURCE =
  /^ecr:([a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*):([A-Za-z0-9_][A-Za-z0-9._-]{0,127})$/;
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

export const DEFAULTS = {
  sipDomain: 'example.com',
  imageSource: 'asset',
  retention: '7d',
  logRetentionDays: 30,
  // Two tasks: one task's replacement (deploy, crash, AZ loss) leaves the other answering.
  minTasks: 2,
  maxTasks: 4,
  fixedEgress: false,
  tracing: 'sampled',
} as const;

type Lookup = (key: ContextKey) => unknown;

function text(lookup: Lookup, key: ContextKey, fallback?: string): string | undefined {
  const raw = lookup(key);
  if (raw === undefined || raw === null || raw === '') return fallback;
  // `-c key=value` gives strings; cdk.json may give numbers or lists.
  if (Array.isArray(raw)) return raw.map(String).join(',');
  if (typeof raw === 'string' || typeof raw === 'number' || typeof raw === 'boolean') return String(raw).trim();
  throw new DeployConfigError(key, `expected a string, got ${JSON.stringify(raw)}`);
}

function count(lookup: Lookup, key: ContextKey, fallback: number, min: number, max: number): number {
  const raw = text(lookup, key);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new DeployConfigError(key, `"${raw}" is not a whole number from ${min} to ${max}`);
  }
  return Number(raw);
}

function flag(lookup: Lookup, key: ContextKey, fallback: boolean): boolean {
  const raw = text(lookup, key);
  if (raw === undefined) return fallback;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw new DeployConfigError(key, `"${raw}" is neither true nor false`);
}

function imageSource(raw: string): ImageSource {
  if (raw === 'asset') return { kind: 'asset' };
  const m = ECR_SOURCE.exec(raw);
  if (!m) {
    throw new DeployConfigError(
      'imageSource',
      `"${raw}" is neither "asset" (build functions/edge/Dockerfile) nor "ecr:<repository>:<tag>"`,
    );
  }
  return { kind: 'ecr', repository: m[1]!, tag: m[2]! };
}

/** Read and check every setting; `lookup` is `node.tryGetContext` in the app. */
export function readDeployConfig(lookup: Lookup): DeployConfig {
  const sipDomain = text(lookup, 'sipDomain', DEFAULTS.sipDomain)!;
  const trustedPeers = (text(lookup, 'trustedPeers') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  // The task admits no direct clients: without the core's ranges every request would get 403.
  if (trustedPeers.length === 0) {
    throw new DeployConfigError(
      'trustedPeers',
      'required: the SIP/IP Core address ranges (e.g. -c trustedPeers=10.20.0.0/16); without them every request gets 403',
    );
  }
  const retention = text(lookup, 'retention', DEFAULTS.retention)!;
  const retentionSeconds = parseDuration(retention);
  if (retentionSeconds === undefined || retentionSeconds <= 0) {
    throw new DeployConfigError('retention', `"${retention}" is not a duration (e.g. 7d, 12h, 30m, 3600)`);
  }
  // DynamoDB TTL ignores items whose expiresAt is more than five years ahead.
  if (retentionSeconds > 5 * 365 * 86_400) {
    throw new DeployConfigError('retention', `"${retention}" is longer than DynamoDB TTL honours (5 years)`);
  }
  const outboundProxy = text(lookup, 'outboundProxy');
  // The edge's own checks (host name, address ranges, SIP URI) on the values it will be given.
  try {
    loadConfig({
      SIP_DOMAIN: sipDomain,
      TRUSTED_PEERS: trustedPeers.join(','),
      RETENTION: retention,
      ...(outboundProxy !== undefined ? { OUTBOUND_PROXY: outboundProxy } : {}),
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      throw new DeployConfigError(EDGE_VARIABLE[err.variable] ?? err.variable, err.message);
    }
    throw err;
  }

  const certificateArn = text(lookup, 'certificateArn');
  if (certificateArn !== undefined && !CERTIFICATE_ARN.test(certificateArn)) {
    throw new DeployConfigError('certificateArn', `"${certificateArn}" is not an ACM certificate ARN`);
  }
  const logRetentionDays = count(lookup, 'logRetentionDays', DEFAULTS.logRetentionDays, 1, 3653);
  if (!LOG_RETENTION_DAYS.includes(logRetentionDays)) {
    throw new DeployConfigError(
      'logRetentionDays',
      `${logRetentionDays} is not a CloudWatch Logs retention (one of ${LOG_RETENTION_DAYS.join(', ')})`,
    );
  }
  const minTasks = count(lookup, 'minTasks', DEFAULTS.minTasks, 1, 100);
  const maxTasks = count(lookup, 'maxTasks', Math.max(DEFAULTS.maxTasks, minTasks), 1, 100);
  if (maxTasks < minTasks) throw new DeployConfigError('maxTasks', `${maxTasks} is below minTasks (${minTasks})`);
  const alarmEmail = text(lookup, 'alarmEmail');
  if (alarmEmail !== undefined && !EMAIL.test(alarmEmail)) {
    throw new DeployConfigError('alarmEmail', `"${alarmEmail}" is not an e-mail address`);
  }

  const fixedEgress = flag(lookup, 'fixedEgress', DEFAULTS.fixedEgress);
  const tracing = text(lookup, 'tracing', DEFAULTS.tracing)!;
  if (tracing !== 'sampled' && tracing !== 'active' && tracing !== 'off') {
    throw new DeployConfigError('tracing', `"${tracing}" is none of sampled, active, off`);
  }

  return {
    sipDomain,
    trustedPeers,
    fixedEgress,
    tracing,
    ...(certificateArn ? { certificateArn } : {}),
    imageSource: imageSource(text(lookup, 'imageSource', DEFAULTS.imageSource)!),
    retention,
    retentionSeconds,
    logRetentionDays,
    minTasks,
    maxTasks,
    ...(alarmEmail ? { alarmEmail } : {}),
    ...(outboundProxy ? { outboundProxy } : {}),
  };
}
