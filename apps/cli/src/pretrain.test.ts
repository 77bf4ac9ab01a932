import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, readSafetensors } from '@distill/core';
import { resolveConfig } from '@distill/training';
import { afterAll, describe, expect, it } from 'vitest';
import { createTrainingContainer as builtinsContainer } from '@distill/training';

/** This test's own registries (the built-ins; there is no global container). */
const builtins = builtinsContainer();

const root = repoRoot();
const tmp = mkdtempSync(join(tmpdir(), 'distill-pretrain-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
// cwd and cache in the temp folder: nothing lands in the checkout (the default --out is teachers/<dataset>-teacher under the cwd)
const distill = (...args: string[]) =>
  spawnSync(process.execPath, [join(root, 'apps/cli/bin/distill.js'), ...args], {
    cwd: tmp,
    encoding: 'utf8',
    env: { ...process.env, DISTILL_CACHE_DIR: join(tmp, 'cache') },
  });

describe('distill teacher pretrain', () => {
  it('--help lists its flags and the preset epochs it defaults to', () => {
    const r = distill('teacher', 'pretrain', '--help');
    expect(r.status).toBe(0);
    for (const flag of [
      '--dataset',
      '--annotations',
      '--preset',
      '--config',
      '--out',
      '--epochs',
      '--max-steps',
      '--seed',
      '--run-dir',
      '--resume',
    ])
      expect(r.stdout).toContain(flag);
    expect(r.stdout).toContain(
      `emoji-teacher: ${resolveConfig({ container: builtins, preset: 'emoji-teacher' }).schedule.epochs} epochs`,
    );
    expect(r.stdout).toContain(
      `glyphs-teacher: ${resolveConfig({ container: builtins, preset: 'glyphs-teacher' }).schedule.epochs} epochs`,
    );
    expect(r.stdout).toContain('teachers/<dataset>-teacher'); // the default --out: never the shipped teacher
  });

  it('refuses an unknown preset and --resume without the run folder, before any training', () => {
    const p = distill('teacher', 'pretrain', '--preset', 'huge');
    expect(p.status).toBe(2);
    expect(p.stderr).toContain(
      "Unknown preset 'huge'. Available: emoji, smoke, emoji-teacher, glyphs-teacher, glyphs, paper.",
    );
    const r = distill('teacher', 'pretrain', '--resume');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--resume needs the run folder: --resume <dir>');
    const m = distill('teacher', 'pretrain', '--resume', join(tmp, 'no-such-run'));
    expect(m.status).toBe(2);
    expect(m.stderr).toContain('no-such-run does not exist');
  });

  it("a user's own JSONL dataset: a teacher folder under teachers/<dataset>-teacher, its command recorded", () => {
    // the user's data: the emoji benchmark written out as JSONL (train/val/test.jsonl + images/)
    const data = join(tmp, 'mydata');
    expect(distill('data', 'build', 'emoji', '--out', data).status).toBe(0);
    const r = distill(
      'teacher',
      'pretrain',
      '--dataset',
      'jsonl',
      '--annotations',
      data,
      '--image-root',
      data,
      '--max-steps',
      '2',
      '--seed',
      '1',
      '--run-dir',
      join(tmp, 'run-jsonl'),
    );
    expect(r.status, r.stderr).toBe(0);
    const printed = JSON.parse(r.stdout);
    const out = join(tmp, 'teachers', 'jsonl-teacher');
    // 1,672,064 parameters: the emoji-teacher towers with the emoji captions' whole-word tokenizer (5,397 entries)
    expect(printed).toMatchObject({ out, dataset: 'jsonl', preset: 'emoji-teacher', steps: 2, parameters: 1_672_064 });
    const meta = JSON.parse(readFileSync(join(out, 'student.json'), 'utf8'));
    expect(meta.provenance.command).toBe(
      `distill teacher pretrain --dataset jsonl --annotations ${data} --image-root ${data} --seed 1 --max-steps 2`,
    );
    expect(meta.provenance.config).toMatchObject({
      losses: 'none',
      dataset: { name: 'jsonl', annotations: data, imageRoot: data },
    });
  }, 300_000);

  it("a 2-step run writes a teacher folder (the run's best student + provenance) that --teacher loads", () => {
    const out = join(tmp, 'teacher');
    const runDir = join(tmp, 'run');
    const r = distill(
      'teacher',
      'pretrain',
      '--epochs',
      '1',
      '--max-steps',
      '2',
      '--seed',
      '3',
      '--out',
      out,
      '--run-dir',
      runDir,
    );
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
    expect(meta.provenance).toMatchObject({
      command: 'distill teacher pretrain --seed 3 --epochs 1 --max-steps 2',
      seed: 3,
      steps: 2,
      parameters: { total: 1_672_064 },
    });
    expect(meta.provenance.test.rsum).toBeCloseTo(printed.test.rsum, 10);
    expect(readFileSync(join(out, 'tokenizer.json'), 'utf8')).toBe(
      readFileSync(join(runDir, 'best', 'tokenizer.json'), 'utf8'),
    );
    const saved = readSafetensors(join(out, 'model.safetensors'));
    const best = readSafetensors(join(runDir, 'best', 'model.safetensors'));
    expect([...saved.keys()].sort()).toEqual([...best.keys()].sort());
    for (const [k, t] of best) expect(saved.get(k)!.data, k).toEqual(t.data);

    // --teacher <name> --teacher-model <folder> loads it (feature extraction on a few emoji)
    const x = distill(
      'teacher',
      'extract',
      '--teacher',
      'mine',
      '--teacher-model',
      out,
      '--train-subset',
      '4',
      '--eval-subset',
      '4',
      '--batch-size',
      '4',
    );
    expect(x.status, x.stderr).toBe(0);
    const ext = JSON.parse(x.stdout);
    expect(ext).toMatchObject({
      teacher: 'mine',
      dim: 256,
      splits: { train: { images: 4 }, val: { images: 4 }, test: { images: 4 } },
    });
    expect(ext.cache.startsWith(join(tmp, 'cache'))).toBe(true);
    expect(existsSync(ext.cache)).toBe(true);

    // the finished run folder again: the same command reuses it (no training); another seed is refused
    const same = distill(
      'teacher',
      'pretrain',
      '--epochs',
      '1',
      '--max-steps',
      '2',
      '--seed',
      '3',
      '--out',
      out,
      '--run-dir',
      runDir,
    );
    expect(same.status, same.stderr).toBe(0);
    expect(JSON.parse(same.stdout)).toMatchObject({ out, steps: 2 });
    const other = distill(
      'teacher',
      'pretrain',
      '--epochs',
      '1',
      '--max-steps',
      '2',
      '--seed',
      '4',
      '--out',
      out,
      '--run-dir',
      runDir,
    );
    expect(other.status).toBe(2);
    expect(other.stderr).toContain(`${runDir} holds a run with another config (yours differs in seed 3 -> 4)`);
    expect(readFileSync(join(runDir, 'result.json'), 'utf8')).toContain('"steps": 2');

    // the swap deletes nothing but the old teacher's own files: a user's file in the teacher folder stays,
    // and --force into another folder keeps a same-named file as <name>.bak-<time>
    writeFileSync(join(out, 'NOTES.md'), 'mine');
    const again = distill(
      'teacher',
      'pretrain',
      '--epochs',
      '1',
      '--max-steps',
      '2',
      '--seed',
      '3',
      '--out',
      out,
      '--run-dir',
      runDir,
    );
    expect(again.status, again.stderr).toBe(0);
    expect(readFileSync(join(out, 'NOTES.md'), 'utf8')).toBe('mine');
    expect(JSON.parse(readFileSync(join(out, 'student.json'), 'utf8')).format).toBe('distill-student-v1');
    const mine = join(tmp, 'mine');
    mkdirSync(mine, { recursive: true });
    writeFileSync(join(mine, 'model.safetensors'), 'not a teacher');
    const forced = distill(
      'teacher',
      'pretrain',
      '--epochs',
      '1',
      '--max-steps',
      '2',
      '--seed',
      '3',
      '--out',
      mine,
      '--run-dir',
      runDir,
      '--force',
    );
    expect(forced.status, forced.stderr).toBe(0);
    const bak = readdirSync(mine).find((f) => f.startsWith('model.safetensors.bak-'));
    expect(bak).toBeDefined();
    expect(readFileSync(join(mine, bak!), 'utf8')).toBe('not a teacher');
    expect(readdirSync(mine).sort()).toEqual([bak, 'model.safetensors', 'student.json', 'tokenizer.json'].sort());
  }, 300_000);

  it("--out naming a user's file or folder, or the run folder, is refused before any training; the files survive", () => {
    const file = join(tmp, 'notes.txt');
    writeFileSync(file, 'my notes');
    const runDir = join(tmp, 'run-out');
    const f = distill('teacher', 'pretrain', '--max-steps', '2', '--out', file, '--run-dir', runDir);
    expect(f.status).toBe(2);
    expect(f.stderr).toContain(`--out ${file} is a file, not a folder: nothing was written`);
    expect(readFileSync(file, 'utf8')).toBe('my notes');
    expect(existsSync(runDir)).toBe(false); // stopped before the run folder was made
    const folder = join(tmp, 'photos');
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, 'cat.jpg'), 'a cat');
    const d = distill('teacher', 'pretrain', '--max-steps', '2', '--out', folder, '--run-dir', runDir);
    expect(d.status).toBe(2);
    expect(d.stderr).toContain(
      `--out ${folder} exists and is not a teacher folder written by distill (it holds cat.jpg): nothing was written`,
    );
    expect(d.stderr).toContain('--force');
    expect(readFileSync(join(folder, 'cat.jpg'), 'utf8')).toBe('a cat');
    const same = distill('teacher', 'pretrain', '--max-steps', '2', '--out', runDir, '--run-dir', runDir);
    expect(same.status).toBe(2);
    expect(same.stderr).toContain(`--out ${runDir} is the run folder ${runDir}`);
    const parent = distill('teacher', 'pretrain', '--max-steps', '2', '--out', tmp, '--run-dir', runDir);
    expect(parent.status).toBe(2);
    expect(parent.stderr).toContain(`--out ${tmp} holds the run folder`);
    expect(existsSync(runDir)).toBe(false);
    for (const r of [f, d, same, parent]) expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a second pretrain in a run folder in use is refused; SIGTERM ends training at once; --resume with a changed seed or epochs is refused', async () => {
    const runDir = join(tmp, 'run-lock');
    const first = spawn(
      process.execPath,
      [
        join(root, 'apps/cli/bin/distill.js'),
        'teacher',
        'pretrain',
        '--max-steps',
        '100000',
        '--out',
        join(tmp, 't-lock'),
        '--run-dir',
        runDir,
      ],
      {
        cwd: tmp,
        env: { ...process.env, DISTILL_CACHE_DIR: join(tmp, 'cache') },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let err = '';
    first.stderr.on('data', (b) => (err += String(b)));
    const exited = new Promise<{ code: number | null; signal: string | null }>((r) =>
      first.on('exit', (code, signal) => r({ code, signal })),
    );
    const until = async (what: () => boolean, ms: number) => {
      for (const t0 = Date.now(); !what();) {
        if (Date.now() - t0 > ms) throw new Error(`timed out; stderr: ${err}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    try {
      await until(() => existsSync(join(runDir, 'run.lock')), 120_000);
      const second = distill(
        'teacher',
        'pretrain',
        '--max-steps',
        '2',
        '--out',
        join(tmp, 't-lock2'),
        '--run-dir',
        runDir,
      );
      expect(second.status).not.toBe(0);
      expect(second.stderr).toContain(`pid ${first.pid}`);
      // in training: a step recorded
      await until(
        () =>
          existsSync(join(runDir, 'metrics.jsonl')) &&
          readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').includes('"step"'),
        180_000,
      );
      const t0 = Date.now();
      first.kill('SIGTERM');
      const e = await exited;
      const ms = Date.now() - t0;
      console.info(`teacher pretrain (training): ended ${ms} ms after SIGTERM`);
      expect(ms).toBeLessThan(8_000);
      expect(e.code === 0).toBe(false);
    } finally {
      first.kill('SIGKILL');
    }
    expect(existsSync(join(runDir, 'run.lock'))).toBe(false);
    expect(JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8'))).toMatchObject({
      configHash: expect.any(String),
      config: { seed: 0, losses: 'none' },
    });
    const seed = distill('teacher', 'pretrain', '--resume', runDir, '--seed', '1');
    expect(seed.status).toBe(2);
    expect(seed.stderr).toContain(`Cannot resume ${runDir}: the config differs in seed 0 -> 1`);
    // the spelling of older versions (--run-dir <dir> --resume) still works, with a note
    const epochs = distill('teacher', 'pretrain', '--run-dir', runDir, '--resume', '--epochs', '3');
    expect(epochs.stderr).toContain(`'--run-dir ${runDir} --resume' is deprecated: write '--resume ${runDir}'.`);
    expect(epochs.status).toBe(2);
    expect(epochs.stderr).toMatch(/Cannot resume .*: the config differs in schedule\.epochs \d+ -> 3/);
  }, 400_000);

  it('a --teacher-model folder that is not a saved student is refused with what it lacks', () => {
    const x = distill(
      'teacher',
      'extract',
      '--teacher',
      'emoji',
      '--teacher-model',
      join(tmp, 'nowhere'),
      '--train-subset',
      '2',
      '--eval-subset',
      '2',
    );
    expect(x.status).not.toBe(0);
    expect(x.stderr).toMatch(/emoji teacher is missing at .*nowhere.*distill teacher pretrain/);
    expect(x.stderr).not.toMatch(/\n\s+at /);
  });
});
