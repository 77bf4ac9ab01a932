import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@distill/core';
import { afterAll, describe, expect, it } from 'vitest';

// File-system causes through the CLI, reported for what they are: a folder where a cache file should be
// (EISDIR), and a read-only file system (EROFS, which Node's recursive mkdir reports as ENOENT) for
// --run-dir and a cold DISTILL_CACHE_DIR. EROFS needs a read-only mount: a tmpfs mounted as root (the
// test is skipped only when not root).
const root = repoRoot();
const tmp = mkdtempSync(join(tmpdir(), 'distill-fs-faults-'));
const ro = join(tmp, 'ro');
const isRoot = process.getuid?.() === 0;
afterAll(() => {
  if (isRoot) spawnSync('umount', [ro]);
  rmSync(tmp, { recursive: true, force: true });
});
const distill = (env: Record<string, string>, ...args: string[]) =>
  spawnSync(process.execPath, [join(root, 'apps/cli/bin/distill.js'), ...args], {
    cwd: tmp,
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
const oneLine = (s: string) => {
  expect(s).not.toMatch(/\n\s+at /);
  expect(s).not.toContain('unexpected error');
};

describe('file-system causes', () => {
  it('a folder where the teacher-feature cache file should be: EISDIR naming it, exit 73', () => {
    const env = { DISTILL_CACHE_DIR: join(tmp, 'cache') };
    const args = [
      'teacher',
      'extract',
      '--teacher',
      'emoji',
      '--train-subset',
      '4',
      '--eval-subset',
      '4',
      '--batch-size',
      '4',
    ];
    const a = distill(env, ...args);
    expect(a.status, a.stderr).toBe(0);
    const file = JSON.parse(a.stdout).cache as string;
    rmSync(file);
    mkdirSync(join(file, 'something'), { recursive: true });
    const b = distill(env, ...args);
    expect(b.status).toBe(73);
    expect(b.stderr).toContain(`distill: cannot remove ${file} (EISDIR): this is a folder where a file was expected.`);
    oneLine(b.stderr);
  }, 120_000);

  it.skipIf(!isRoot)(
    'a read-only file system (EROFS) for --run-dir and a cold DISTILL_CACHE_DIR: named as read-only with the folder, exit 73',
    () => {
      mkdirSync(ro, { recursive: true });
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', ro]);
      const runDir = join(ro, 'runs', 'a');
      const r = distill(
        { DISTILL_CACHE_DIR: join(tmp, 'cache') },
        'train',
        '--preset',
        'smoke',
        '--max-steps',
        '1',
        '--run-dir',
        runDir,
      );
      expect(r.status).toBe(73);
      expect(r.stderr).toContain(
        `distill: cannot create ${runDir}: its nearest existing parent ${ro} cannot be written (EROFS): the file system is read-only.`,
      );
      oneLine(r.stderr);
      const cache = join(ro, 'cache');
      const c = distill(
        { DISTILL_CACHE_DIR: cache },
        'teacher',
        'extract',
        '--teacher',
        'emoji',
        '--train-subset',
        '4',
        '--eval-subset',
        '4',
        '--batch-size',
        '4',
      );
      expect(c.status).toBe(73);
      expect(c.stderr).toMatch(
        new RegExp(
          `distill: cannot create ${cache}/\\S+: its nearest existing parent ${ro} cannot be written \\(EROFS\\)`,
        ),
      );
      expect(c.stderr).not.toContain('ENOENT');
      oneLine(c.stderr);
    },
    120_000,
  );
});
