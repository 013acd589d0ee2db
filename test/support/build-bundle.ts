/**
 * vitest globalSetup: the end-to-end tests start the service as `npm start` runs it, the esbuild
 * bundle in dist/edge (scripts/build.mjs), rebuilt here when a source is newer.
 */
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync(process.execPath, ['scripts/build.mjs', '--if-stale'], { stdio: 'inherit' });
}
