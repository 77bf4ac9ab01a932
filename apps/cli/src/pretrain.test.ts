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
// cwd and cache in the temp folder: nothing lands in the checkout (the default --out is teachers/<dataset>-teacher under the cwd)
const distill = (...args: string[]) =>
  spawnSync(process.execPath, [join(root, 'apps/cli/bin/distill.js'), ...args], { cwd: tmp, encoding: 'utf8', env: { ...process.env, DISTILL_CACHE_DIR: join(tmp, 'cache') } });

describe('distill teacher pretrain', () => {
  it('--help lists its flags and the preset epochs it defaults to', () => {
    const r = distill('teacher', 'pretrain', '--help');
    expect(r.status).toBe(0);
    for (const flag of ['--dataset', '--annotations', '--preset', '--config', '--out', '--epochs', '--max-steps', '--seed', '--run-dir', '--resume']) expect(r.stdout).toContain(flag);
    expect(r.stdout).toContain(`emoji-teacher: ${resolveConfig({ preset: 'emoji-teacher' }).schedule.epochs} epochs`);
    expect(r.stdout).toContain(`glyphs-teacher: ${resolveConfig({ preset: 'glyphs-teacher' }).schedule.epochs} epochs`);
    expect(r.stdout).toContain('teachers/<dataset>-teacher'); // the default --out: never the shipped teacher
  });

  it('refuses an unknown preset and --resume without the run folder, before any training', () => {
    const p = distill('teacher', 'pretrain', '--preset', 'huge');
    expect(p.status).toBe(2);
    expect(p.stderr).toContain("Unknown preset 'huge'. Available: emoji, smoke, emoji-teacher, glyphs-teacher, glyphs, paper.");
    const r = distill('teacher', 'pretrain', '--resume');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--resume needs --run-dir');
    const m = distill('teacher', 'pretrain', '--resume', '--run-dir', join(tmp, 'no-such-run'));
    expect(m.status).toBe(2);
    expect(m.stderr).toContain('no-such-run does not exist');
  });

  it("a user's own JSONL dataset: a teacher folder under teachers/<dataset>-teacher, its command recorded", () => {
    // the user's data: the emoji benchmark written out as JSONL (train/val/test.jsonl + images/)
    const data = join(tmp, 'mydata');
    expect(distill('data', 'build', 'emoji', '--out', data).status).toBe(0);
    const r = distill('teacher', 'pretrain', '--dataset', 'jsonl', '--annotations', data, '--image-root', data, '--max-steps', '2', '--seed', '1', '--run-dir', join(tmp, 'run-jsonl'));
    expect(r.status, r.stderr).toBe(0);
    const printed = JSON.parse(r.stdout);
    const out = join(tmp, 'teachers', 'jsonl-teacher');
    // 1,672,064 parameters: the emoji-teacher towers with the emoji captions' whole-word tokenizer (5,397 entries)
    expect(printed).toMatchObject({ out, dataset: 'jsonl', preset: 'emoji-teacher', steps: 2, parameters: 1_672_064 });
    const meta = JSON.parse(readFileSync(join(out, 'student.json'), 'utf8'));
    expect(meta.provenance.command).toBe(`distill teacher pretrain --dataset jsonl --annotations ${data} --image-root ${data} --seed 1 --max-steps 2`);
    expect(meta.provenance.config).toMatchObject({ losses: 'none', dataset: { name: 'jsonl', annotations: data, imageRoot: data } });
  }, 300_000);

  it('a 2-step run writes a teacher folder (the run\'s best student + provenance) that --teacher loads', () => {
    const out = join(tmp, 'teacher');
    const runDir = join(tmp, 'run');
    const r = distill('teacher', 'pretrain', '--epochs', '1', '--max-steps', '2', '--seed', '3', '--out', out, '--run-dir', runDir);
    expect(r.status, r.stderr).toBe(0);
    const printed = JSON.parse(r.stdout);
    expect(printed).toMatchObject({ out, steps: 2, parameters: 1_672_064 });
    expect(printed.test.rsum).toBeGreaterThan(0);

    // the folder: a saved distill student, the run's best weights, provenance of this command
    expect(existsSync(`${out}.tmp`)).toBe(false);
    expect(existsSync(`${out}.old`)).toBe(false);
    const meta = JSON.parse(readFileSync(join(out, 'student.json'), 'utf8'));
    expect(meta.format).toBe('distill-student-v1');
    expect(meta.config).toMatchObject({ pair: 'vit-bert', embedDim: 256 });
    expect(meta.provenance).toMatchObject({ command: 'distill teacher pretrain --seed 3 --epochs 1 --max-steps 2', seed: 3, steps: 2, parameters: { total: 1_672_064 } });
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
