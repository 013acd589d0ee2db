/**
 * `npm start` and the edge's container run the service with the same runtime settings
 * (package.json "config": node's flags and glibc's MALLOC_ARENA_MAX; README "Resident memory").
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
  config: { nodeFlags: string; mallocArenaMax: string };
  scripts: { start: string };
};
const dockerfile = readFileSync('functions/edge/Dockerfile', 'utf8');

describe('the runtime settings of npm start and the container', () => {
  it('npm start passes the configured node flags and arena cap', () => {
    expect(pkg.scripts.start).toContain('$npm_package_config_nodeFlags dist/edge/main.js');
    expect(pkg.scripts.start).toContain('MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-$npm_package_config_mallocArenaMax}');
  });

  it('the container runs node with the same flags and arena cap', () => {
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
    expect(cmd).toEqual(['node', ...pkg.config.nodeFlags.split(/\s+/), 'dist/edge/main.js']);
    expect(dockerfile).toMatch(new RegExp(`MALLOC_ARENA_MAX=${pkg.config.mallocArenaMax}\\b`));
  });
});
