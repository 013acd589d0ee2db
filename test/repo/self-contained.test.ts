/**
 * The repository carries everything its tests read: the suites that open files run again from
 * a copy of the repository in an empty temporary folder, with nothing beside it (CI puts other
 * folders beside its clone, so only this catches a read outside the repository).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = process.cwd();
const self = 'test/repo/self-contained.test.ts';

/** Files of the working tree as a clone would have them: tracked and new, not ignored. */
function repositoryFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root });
  return out.toString('utf8').split('\0').filter(Boolean);
}

/** Test files that read repository files themselves or through test helpers they import. */
function suitesReadingFiles(files: string[]): string[] {
  const readsFiles = new Map<string, boolean>();
  const visit = (file: string): boolean => {
    const known = readsFiles.get(file);
    if (known !== undefined) return known;
    readsFiles.set(file, false); // cycles end here
    const text = readFileSync(path.join(root, file), 'utf8');
    // Reads of repository files: by a path from the working folder or from the module's own place.
    let found = /readFileSync\(|readdirSync\(|readFile\(|process\.cwd\(\)|import\.meta\.(url|dirname)/.test(text);
    for (const m of text.matchAll(/from '(\.{1,2}\/[^']+)'/g)) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1]!));
      // test/support starts emulators in temporary folders; it reads nothing of the repository.
      if (!found && target.startsWith('test/') && !target.startsWith('test/support/') && files.includes(target))
        found = visit(target);
    }
    readsFiles.set(file, found);
    return found;
  };
  return files.filter((f) => f.endsWith('.test.ts') && f !== self && visit(f));
}

describe('a copy of the repository with nothing beside it', () => {
  const parent = mkdtempSync(path.join(tmpdir(), 'clone-'));
  afterAll(() => rmSync(parent, { recursive: true, force: true }));

  it('passes the suites that read files', () => {
    const files = repositoryFiles();
    const clone = path.join(parent, 'repo');
    for (const f of files) {
      mkdirSync(path.dirname(path.join(clone, f)), { recursive: true });
      cpSync(path.join(root, f), path.join(clone, f), { dereference: false });
    }
    symlinkSync(path.join(root, 'node_modules'), path.join(clone, 'node_modules'), 'dir');
    const suites = suitesReadingFiles(files);
    expect(suites.length).toBeGreaterThan(3);
    const run = spawnSync(process.execPath, [path.join(root, 'node_modules/vitest/vitest.mjs'), 'run', ...suites], {
      cwd: clone,
      env: { ...process.env, VITEST_JSON_REPORT: '' },
      encoding: 'utf8',
      timeout: 480_000,
    });
    const tail = `${run.stdout}\n${run.stderr}`.split('\n').slice(-40).join('\n');
    expect(run.status, tail).toBe(0);
  }, 600_000);
});
