import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, readSafetensors } from '@distill/core';
import { resolveConfig } from '@distill/training';
import { afterAll, describe, expect, it } from 'vitest';

const root = repoRoot();
const tmp = mkdtempSync(join(tmpdir(), 'distill-pretrain-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
// cwd and cache in the temp folder: nothing lands in the checkout (and --out is always given: its default is the embedded teacher)
const distill = (...args: string[]) =>
  spawnSync(process.execPath, [join(root, 'apps/cli/bin/distill.js'), ...args], { cwd: tmp, encoding: 'utf8', env: { ...process.env, DISTILL_CACHE_DIR: join(tmp, 'cache') } });

describe('distill teacher pretrain', () => {
  it('--help lists its flags and the preset epochs it defaults to', () => {
    const r = distill('teacher', 'pretrain', '--help');
    expect(r.status).toBe(0);
    for (const flag of ['--out', '--epochs', '--max-steps', '--seed', '--run-dir', '--resume']) expect(r.stdout).toContain(flag);
    expect(r.stdout).toContain(`preset emoji-teacher: ${resolveConfig({ preset: 'emoji-teacher' }).schedule.epochs}`);
    expect(r.stdout).toContain('assets/teachers/emoji-teacher-v1'); // the default --out
  });

  it('a 2-step run writes a teacher folder (the run\'s best student + provenance) that --teacher loads', () => {
    const out = join(tmp, 'teacher');
    const runDir = join(tmp, 'run');
    const r = distill('teacher', 'pretrain', '--epochs', '1', '--max-steps', '2', '--seed', '3', '--out', out, '--run-dir', runDir);
    expect(r.status, r.stderr).toBe(0);
    const printed = JSON.parse(r.stdout);
    expect(printed).toMatchObject({ out, steps: 2, parameters: 1_237_248 });
    expect(printed.test.rsum).toBeGreaterThan(0);

    // the folder: a saved distill student, the run's best weights, provenance of this command
    expect(existsSync(`${out}.tmp`)).toBe(false);
    const meta = JSON.parse(readFileSync(join(out, 'student.json'), 'utf8'));
    expect(meta.format).toBe('distill-student-v1');
    expect(meta.config).toMatchObject({ pair: 'vit-bert', embedDim: 256 });
    expect(meta.provenance).toMatchObject({ command: 'distill teacher pretrain --seed 3 --epochs 1 --max-steps 2', seed: 3, steps: 2, parameters: { total: 1_237_248 } });
    expect(meta.provenance.test.rsum).toBeCloseTo(printed.test.rsum, 10);
    expect(readFileSync(join(out, 'tokenizer.json'), 'utf8')).toBe(readFileSync(join(runDir, 'best', 'tokenizer.json'), 'utf8'));
    const saved = readSafetensors(join(out, 'model.safetensors'));
    const best = readSafetensors(join(runDir, 'best', 'model.safetensors'));
    expect([...saved.keys()].sort()).toEqual([...best.keys()].sort());
    for (const [k, t] of best) expect(saved.get(k)!.data, k).toEqual(t.data);

    // --teacher <name> --teacher-model <folder> loads it (feature extraction on a few emoji)
    const x = distill('teacher', 'extract', '--teacher', 'mine', '--teacher-model', out, '--train-subset', '4', '--eval-subset', '4', '--batch-size', '4');
    expect(x.status, x.stderr).toBe(0);
    const ext = JSON.parse(x.stdout);
    expect(ext).toMatchObject({ teacher: 'mine', dim: 256, splits: { train: { images: 4 }, val: { images: 4 }, test: { images: 4 } } });
    expect(ext.cache.startsWith(join(tmp, 'cache'))).toBe(true);
    expect(existsSync(ext.cache)).toBe(true);
  }, 300_000);

  it('a --teacher-model folder that is not a saved student is refused with what it lacks', () => {
    const x = distill('teacher', 'extract', '--teacher', 'emoji', '--teacher-model', join(tmp, 'nowhere'), '--train-subset', '2', '--eval-subset', '2');
    expect(x.status).not.toBe(0);
    expect(x.stderr).toMatch(/emoji teacher is missing at .*nowhere.*distill teacher pretrain/);
    expect(x.stderr).not.toMatch(/\n\s+at /);
  });
});
