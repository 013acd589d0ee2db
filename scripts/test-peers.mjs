#!/usr/bin/env node
// `npm test`'s pretest step: the Debian packages whose programs the tests use as real peers.
// Missing ones are installed when running as root on Debian; otherwise the step stops and
// names them, so `npm ci && npm test` on a fresh Debian machine is the whole set-up.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Each peer: the Debian package and a file that shows it is installed. */
export const TEST_PEERS = [
  // The operator console's test drives a real browser (playwright-core, no browser download).
  { package: 'chromium', file: '/usr/bin/chromium' },
  // test/interop: the SIP/IP Core in front of the service, and its WebSocket transport.
  { package: 'kamailio', file: '/usr/sbin/kamailio' },
  {
    package: 'kamailio-websocket-modules',
    file: `/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu/kamailio/modules/websocket.so`,
  },
  // test/interop: SIPp scenarios for SUBSCRIBE/NOTIFY and MESSAGE.
  { package: 'sip-tester', file: '/usr/bin/sipp' },
];

const missing = TEST_PEERS.filter((p) => !existsSync(p.file));
if (missing.length === 0) process.exit(0);

const packages = [...new Set(missing.map((p) => p.package))];
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (!isRoot || !existsSync('/etc/debian_version')) {
  console.error(`The tests need these Debian packages: ${packages.join(' ')}`);
  console.error(`Install them with: sudo apt-get install -y ${packages.join(' ')}`);
  process.exit(1);
}
console.error(`Installing test peers from Debian: ${packages.join(' ')}`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execFileSync('apt-get', ['update', '-q'], { stdio: 'inherit', env });
const r = spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...packages], {
  stdio: 'inherit',
  env,
});
if (r.status !== 0) {
  console.error(`apt-get install ${packages.join(' ')} failed (exit ${r.status})`);
  process.exit(1);
}
