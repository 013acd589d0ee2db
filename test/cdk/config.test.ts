/** Deployment settings from CDK context: defaults, accepted forms, and errors that name the key. */
import { describe, expect, it } from 'vitest';
import { DEFAULTS, DeployConfigError, readDeployConfig } from '../../cdk/config.ts';

/** The one key without a default, given unless a test is about it. */
const CORE = { trustedPeers: '198.51.100.0/24' };
const read = (context: Record<string, unknown>) =>
  readDeployConfig((key) => (({ ...CORE, ...context }) as Record<string, unknown>)[key]);

function errorOf(context: Record<string, unknown>): DeployConfigError {
  try {
    read(context);
  } catch (err) {
    if (err instanceof DeployConfigError) return err;
    throw err;
  }
  throw new Error('no error');
}

describe('deploy configuration', () => {
  it('stops without trustedPeers, naming the key (the tasks would answer every request 403)', () => {
    for (const missing of [undefined, '', ' , ']) {
      let err: unknown;
      try {
        readDeployConfig((key) => (key === 'trustedPeers' ? missing : undefined));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DeployConfigError);
      expect((err as DeployConfigError).key).toBe('trustedPeers');
      expect((err as Error).message).toMatch(/^CDK context "trustedPeers": required/);
    }
  });

  it('fills everything else from the defaults: two tasks, no fixed egress, sampled tracing', () => {
    expect(read({})).toEqual({
      sipDomain: DEFAULTS.sipDomain,
      trustedPeers: ['198.51.100.0/24'],
      imageSource: { kind: 'asset' },
      retention: '7d',
      retentionSeconds: 7 * 86_400,
      logRetentionDays: 30,
      minTasks: 2,
      maxTasks: 4,
      fixedEgress: false,
      tracing: 'sampled',
    });
  });

  it('takes every setting as `-c key=value` strings', () => {
    const config = read({
      sipDomain: 'pf.operator.net',
      trustedPeers: '10.20.0.0/16, 192.0.2.10',
      certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/0f0e0d0c-1111-2222-3333-444455556666',
      imageSource: 'ecr:cpm/edge:2026.11.1',
      retention: '30d',
      logRetentionDays: '90',
      minTasks: '2',
      maxTasks: '8',
      alarmEmail: 'noc@operator.net',
      outboundProxy: 'sip:10.20.0.5:5060;transport=tcp',
    });
    expect(config).toMatchObject({
      sipDomain: 'pf.operator.net',
      trustedPeers: ['10.20.0.0/16', '192.0.2.10'],
      imageSource: { kind: 'ecr', repository: 'cpm/edge', tag: '2026.11.1' },
      retentionSeconds: 30 * 86_400,
      logRetentionDays: 90,
      minTasks: 2,
      maxTasks: 8,
      alarmEmail: 'noc@operator.net',
      outboundProxy: 'sip:10.20.0.5:5060;transport=tcp',
    });
  });

  it('takes numbers and lists as cdk.json gives them', () => {
    expect(read({ trustedPeers: ['10.0.0.0/8', '172.16.0.0/12'], minTasks: 2, maxTasks: 2 })).toMatchObject({
      trustedPeers: ['10.0.0.0/8', '172.16.0.0/12'],
      minTasks: 2,
      maxTasks: 2,
    });
  });

  it.each([
    [{ sipDomain: 'pf example.net' }, 'sipDomain'],
    [{ trustedPeers: '10.0.0.0/33' }, 'trustedPeers'],
    [{ trustedPeers: 'core.example.net' }, 'trustedPeers'],
    [{ certificateArn: 'arn:aws:iam::123456789012:server-certificate/x' }, 'certificateArn'],
    [{ imageSource: 'docker.io/library/node:22' }, 'imageSource'],
    [{ imageSource: 'ecr:Edge:latest' }, 'imageSource'],
    [{ retention: 'a week' }, 'retention'],
    [{ retention: '0' }, 'retention'],
    [{ retention: '10000d' }, 'retention'],
    [{ logRetentionDays: '10' }, 'logRetentionDays'],
    [{ minTasks: '0' }, 'minTasks'],
    [{ minTasks: '3', maxTasks: '2' }, 'maxTasks'],
    [{ alarmEmail: 'noc' }, 'alarmEmail'],
    [{ outboundProxy: '10.20.0.5:5060' }, 'outboundProxy'],
    [{ outboundProxy: 'sip:core.operator.net' }, 'outboundProxy'],
    [{ sipDomain: { name: 'x' } }, 'sipDomain'],
    [{ fixedEgress: 'yes' }, 'fixedEgress'],
    [{ tracing: 'always' }, 'tracing'],
  ])('rejects %j naming "%s"', (context, key) => {
    const err = errorOf(context);
    expect(err.key).toBe(key);
    expect(err.message).toContain(`CDK context "${key}"`);
  });
});
