import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@distill/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The teacher-feature cache is keyed by content: the teacher's files, every image's bytes and every
// caption. Through the CLI: `teacher extract` of the emoji teacher over a few images of a JSONL dataset.
const root = repoRoot();
const tmp = mkdtempSync(join(tmpdir(), 'distill-fcache-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const env = { ...process.env, DISTILL_CACHE_DIR: join(tmp, 'cache') };
const distill = (...args: string[]) =>
  spawnSync(process.execPath, [join(root, 'apps/cli/bin/distill.js'), ...args], { cwd: tmp, encoding: 'utf8', env });
const data = join(tmp, 'data');
const extract = (...more: string[]) =>
  distill(
    'teacher',
    'extract',
    '--teacher',
    'emoji',
    '--dataset',
    'jsonl',
    '--annotations',
    data,
    '--train-subset',
    '3',
    '--eval-subset',
    '2',
    '--batch-size',
    '4',
    ...more,
  );
const firstTrainImage = () =>
  JSON.parse(readFileSync(join(data, 'train.jsonl'), 'utf8').split('\n')[0]).image as string;

beforeAll(() => {
  const b = distill('data', 'build', 'emoji', '--out', data);
  expect(b.status, b.stderr).toBe(0);
}, 120_000);

describe('teacher features by content', () => {
  it('a picture replaced in place (same name) gives a new cache key: its features are recomputed, not read from the cache', () => {
    const a = extract('--image-root', data);
    expect(a.status, a.stderr).toBe(0);
    const first = JSON.parse(a.stdout);
    const again = extract('--image-root', data);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).toContain('features from cache');
    expect(JSON.parse(again.stdout).key).toBe(first.key);
    // another emoji's drawing under the first train image's name
    const img = firstTrainImage();
    const other = JSON.parse(readFileSync(join(data, 'test.jsonl'), 'utf8').split('\n')[0]).image as string;
    copyFileSync(join(data, other), join(data, img));
    // a distill-built dataset records each image's sha256 (JSONL "sha256"): the change is named
    const named = extract('--image-root', data);
    expect(named.status).toBe(1);
    expect(named.stderr).toContain(`differ from the sha256 its manifest recorded (${join(data, img)})`);
    // a user's own JSONL (no "sha256" fields): the changed picture gets a new key
    for (const s of ['train', 'val', 'test']) {
      const f = join(data, `${s}.jsonl`);
      const lines = readFileSync(f, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.stringify({ ...JSON.parse(l), sha256: undefined }));
      writeFileSync(f, lines.join('\n') + '\n');
    }
    const b = extract('--image-root', data);
    expect(b.status, b.stderr).toBe(0);
    expect(b.stderr).not.toContain('features from cache');
    expect(JSON.parse(b.stdout).key).not.toBe(first.key);
  }, 240_000);

  it('an image root without the images is an error naming the file; with --skip-bad-images the skips are listed and keyed', () => {
    const empty = join(tmp, 'empty');
    mkdirSync(empty, { recursive: true });
    const r = extract('--image-root', empty);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`distill: Could not read image ${join(empty, 'images')}/`);
    expect(r.stderr).toContain('file not found');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const s = extract('--image-root', empty, '--skip-bad-images');
    expect(s.status, s.stderr).toBe(0);
    expect(s.stderr).toMatch(/7 unreadable image\(s\) skipped/);
    expect(s.stderr).not.toContain('features from cache');
    const full = extract('--image-root', data);
    expect(JSON.parse(s.stdout).key).not.toBe(JSON.parse(full.stdout).key);
  }, 240_000);
});
