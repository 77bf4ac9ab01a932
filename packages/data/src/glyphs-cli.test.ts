import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@distill/base';

// Through the CLI, as a user runs it, on a sample build (DISTILL_GLYPHS_SAMPLE=12: the first 12 concepts of
// each style, val/test of 6 concepts) in a fresh cache: the full build takes about a minute.
const root = repoRoot();
const distill = (args: string[], env: Record<string, string>) =>
  spawnSync(process.execPath, [join(root, 'apps', 'cli', 'bin', 'distill.js'), ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
const haveTeacher = existsSync(
  join(root, 'packages', 'teacher-adapters', 'assets', 'teachers', 'emoji-teacher-v1', 'student.json'),
);

describe('distill data / train with glyphs', { timeout: 240_000 }, () => {
  it('data build glyphs --sample writes a build; data info glyphs shows its splits, captions, licences and no Tabler', () => {
    const cache = mkdtempSync(join(tmpdir(), 'glyphs-cli-'));
    const out = join(cache, 'built');
    const b = distill(['data', 'build', 'glyphs', '--sample', '12', '--eval-size', '6', '--out', out], {});
    expect(b.status, b.stderr).toBe(0);
    expect(b.stderr).toMatch(/built glyphs into .* in \d+\.\d s/);
    const built = JSON.parse(b.stdout);
    expect(built.splits.glyphs.test).toEqual({ concepts: 6, images: 6, captions: 30 });
    expect(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')).manifestHash).toBe(built.manifestHash);
    const again = distill(['data', 'build', 'glyphs', '--sample', '12', '--eval-size', '6', '--out', out], {});
    expect(again.stderr).toMatch(/already built .*nothing to do/);

    const info = distill(['data', 'info', 'glyphs'], { DISTILL_CACHE_DIR: cache, DISTILL_GLYPHS_SAMPLE: '12' });
    expect(info.status, info.stderr).toBe(0);
    const j = JSON.parse(info.stdout);
    expect(j.splits.test).toEqual({ images: 6, captions: 30 });
    expect(j.glyphs.manifestHash).toBe(built.manifestHash); // the same inputs give the same build
    expect(j.glyphs.captionsPerImage.min).toBeGreaterThanOrEqual(5);
    expect(j.glyphs.sources.map((s: { package: string }) => s.package)).toContain('@phosphor-icons/core');
    for (const s of j.glyphs.sources) expect(s.licence).toMatch(/^(MIT|ISC|Apache-2\.0|CC-BY-4\.0|CC-BY-SA-4\.0)$/);
    expect(JSON.stringify(j.glyphs.sources)).not.toMatch(/tabler/i);
    expect(j.glyphs.excluded).toContain('@tabler/icons');
  });

  it.skipIf(!haveTeacher)(
    'train --dataset glyphs takes a few steps with the embedded teacher and reports test recall',
    () => {
      const cache = mkdtempSync(join(tmpdir(), 'glyphs-train-'));
      const run = join(cache, 'run');
      const r = distill(['train', '--preset', 'smoke', '--dataset', 'glyphs', '--run-dir', run, '--max-steps', '3'], {
        DISTILL_CACHE_DIR: cache,
        DISTILL_GLYPHS_SAMPLE: '12',
      });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/test RSUM \d+\.\d\d\n$/);
      const cfg = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
      expect(cfg.config.dataset.name).toBe('glyphs');
      const steps = readFileSync(join(run, 'student', 'metrics.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l.includes('"components"'));
      expect(steps).toHaveLength(3);
      expect(r.stderr).toMatch(/DISTILL_GLYPHS_SAMPLE=12: a small sample build/);
    },
  );
});
