import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '@distill/core';
import { EMOJI_TEACHER_DIR } from './teacher-features.js';

const root = repoRoot();
const bin = join(root, 'apps', 'cli', 'bin', 'distill.js');
const SUBSET = ['--train-subset', '1200', '--eval-subset', '100', '--batch-size', '32'];
const featureDir = (cache: string) => join(cache, 'teacher-features');
const partsOf = (cache: string) =>
  existsSync(featureDir(cache))
    ? readdirSync(featureDir(cache))
        .filter((d) => d.endsWith('.parts'))
        .flatMap((d) => readdirSync(join(featureDir(cache), d)))
    : [];

describe.skipIf(!existsSync(join(EMOJI_TEACHER_DIR, 'student.json')))('teacher extract: cache, reuse, resume', () => {
  it('a killed extraction resumes and writes the same features; a second run reuses the cache', async () => {
    const a = mkdtempSync(join(tmpdir(), 'distill-cache-a-'));
    const b = mkdtempSync(join(tmpdir(), 'distill-cache-b-'));
    const run = (cache: string) =>
      spawnSync(process.execPath, [bin, 'teacher', 'extract', ...SUBSET], {
        cwd: root,
        encoding: 'utf8',
        env: { ...process.env, DISTILL_CACHE_DIR: cache },
      });
    const first = run(a);
    expect(first.status, first.stderr).toBe(0);
    const out = JSON.parse(first.stdout) as {
      cache: string;
      splits: Record<string, { images: number; texts: number }>;
    };
    expect(out.splits.train.images).toBe(1200);
    const again = run(a);
    expect(again.stderr).toMatch(/features from cache/);

    const child = spawn(process.execPath, [bin, 'teacher', 'extract', ...SUBSET], {
      cwd: root,
      stdio: 'ignore',
      env: { ...process.env, DISTILL_CACHE_DIR: b },
    });
    const deadline = Date.now() + 120_000;
    while (partsOf(b).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const doneBefore = partsOf(b).length;
    expect(doneBefore).toBeGreaterThanOrEqual(3);
    const resumed = run(b);
    expect(resumed.status, resumed.stderr).toBe(0);
    const fileB = (JSON.parse(resumed.stdout) as { cache: string }).cache;
    expect(readFileSync(fileB).equals(readFileSync(out.cache))).toBe(true);
  }, 300_000); // 48 s in CI; a guard, not a timed test
});
