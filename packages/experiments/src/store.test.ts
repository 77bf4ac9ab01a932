import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { atomicWriteJson, createLogger } from '@distill/core';
import type { TrainConfig, TrainResult } from '@distill/training';
import { describe, expect, it } from 'vitest';
import { runExperiments } from './experiment.js';
import { codeFingerprint, teacherFingerprint, type RunFingerprint } from './fingerprint.js';
import type { Trainer } from './scheduler.js';
import type { PlannedRun } from './spec.js';
import { recallFromRanks, type RunRanks } from './stats.js';
import { obtainRanks, ranksProblems, readVerifiedResult, resultProblems } from './store.js';
import { createTrainingContainer as builtinsContainer } from '@distill/training';

/** This test's own registries (the built-ins; there is no global container). */
const builtins = builtinsContainer();

const quiet = createLogger({ level: 'error' } as never);

/** A stand-in trainer: result.json with a test RSUM from the config; counts its calls. */
function trainer(calls: string[]): Trainer {
  return async (job) => {
    calls.push(`${job.label}/${job.config.seed}`);
    const rsum = 100 + job.config.seed + (job.config.losses === 'none' ? 0 : 50);
    const m = {
      i2t_r1: rsum / 6,
      i2t_r5: rsum / 6,
      i2t_r10: rsum / 6,
      t2i_r1: rsum / 6,
      t2i_r5: rsum / 6,
      t2i_r10: rsum / 6,
      rsum,
    };
    const result = {
      runDir: job.dir,
      label: job.label,
      steps: 4,
      epochs: 1,
      bestEpoch: 1,
      bestValRsum: rsum,
      val: [],
      test: m,
      parameters: { image: 1, text: 1, head: 1, total: 3 },
      seconds: 0,
    } as unknown as TrainResult;
    atomicWriteJson(join(job.dir, 'result.json'), result);
    return result;
  };
}

/** A spec with a distilled row (uses the teacher) and a no-teacher row, and one claim. */
function setup() {
  const tmp = mkdtempSync(join(tmpdir(), 'distill-fp-'));
  const store = join(tmp, 'store');
  const out = join(tmp, 'out');
  const spec = join(tmp, 'two.yaml');
  writeFileSync(
    spec,
    [
      'name: two',
      'title: two',
      'runs:',
      '  - { label: distilled, set: { losses: dsmd-official } }',
      '  - { label: none, set: { losses: none } }',
      'findings:',
      '  - { claim: "distilled beats none", better: distilled, worse: none }',
    ].join('\n'),
  );
  // a teacher folder and a package's sources of our own: the test edits them
  const teacher = join(tmp, 'teacher');
  mkdirSync(teacher);
  writeFileSync(join(teacher, 'model.safetensors'), 'weights v1');
  writeFileSync(join(teacher, 'student.json'), '{}');
  const src = join(tmp, 'src');
  mkdirSync(join(src, 'losses'), { recursive: true });
  writeFileSync(join(src, 'losses', 'dsmd.ts'), 'export const margin = 0.2;\n');
  writeFileSync(join(src, 'losses', 'dsmd.test.ts'), 'a test: not executed by a run\n');
  const fingerprint = async (run: PlannedRun): Promise<RunFingerprint> => ({
    code: codeFingerprint([src]),
    teacher: await teacherFingerprint(run.config, builtins),
    dataset: 'manifest-1',
  });
  const ranks = async (cfg: TrainConfig): Promise<RunRanks> => {
    const r = Array.from({ length: 40 }, (_, i) => (i < (cfg.losses === 'none' ? 10 : 25) + cfg.seed ? 0 : 30));
    return { i2t: r, t2i: r, textToImage: r.map((_, i) => i) };
  };
  const opts = {
    container: builtins,
    scale: 'smoke' as const,
    seeds: 2,
    workers: 1,
    out,
    store,
    logger: quiet,
    fingerprint,
    ranks: ranks as never,
    replicates: 50,
    flags: { teacher: { model: teacher } },
  };
  return { tmp, store, out, spec, teacher, src, opts };
}

describe('fingerprinted run store', () => {
  it('a run is retrained after its teacher or its code changed, not otherwise; --reuse-stale reuses it, marked stale everywhere', async () => {
    const { store, out, spec, teacher, src, opts } = setup();
    const calls: string[] = [];
    const first = await runExperiments(spec, { ...opts, trainer: trainer(calls) });
    expect(calls).toHaveLength(4);
    expect(first.results[0].reuse).toBe(
      '4 distinct runs: 0 reused (same config, seed, code, teacher and dataset), 4 trained (4 new), 0 resumed',
    );

    // nothing changed: every run reused
    const again = await runExperiments(spec, { ...opts, trainer: trainer(calls) });
    expect(calls).toHaveLength(4);
    expect(again.results[0].reuse).toMatch(/^4 distinct runs: 4 reused/);

    // a test file of the package changed: not executed by a run, nothing retrained
    writeFileSync(join(src, 'losses', 'dsmd.test.ts'), 'another test\n');
    await runExperiments(spec, { ...opts, trainer: trainer(calls) });
    expect(calls).toHaveLength(4);

    // the teacher's weights changed: the distilled runs retrain, the no-teacher runs (which never read it) do not
    writeFileSync(join(teacher, 'model.safetensors'), 'weights v2');
    const t = await runExperiments(spec, { ...opts, trainer: trainer(calls) });
    expect(calls.slice(4)).toEqual(['distilled/0', 'distilled/1']);
    expect(t.results[0].reuse).toBe(
      '4 distinct runs: 2 reused (same config, seed, code, teacher and dataset), 2 trained (0 new, 2 stale: teacher changed: 2), 0 resumed',
    );
    expect(t.results[0].rows[0].runs.map((r) => r.reason)).toEqual([
      'stale (teacher changed), retrained',
      'stale (teacher changed), retrained',
    ]);

    // a source file changed: every run retrains
    writeFileSync(join(src, 'losses', 'dsmd.ts'), 'export const margin = 0.1;\n');
    const c = await runExperiments(spec, { ...opts, trainer: trainer(calls) });
    expect(calls).toHaveLength(10);
    expect(c.results[0].reuse).toMatch(/4 trained \(0 new, 4 stale: code changed: 4\)/);

    // changed again, and --reuse-stale: nothing trains; every run is reported as stale
    writeFileSync(join(src, 'losses', 'dsmd.ts'), 'export const margin = 0.3;\n');
    const s = await runExperiments(spec, { ...opts, reuseStale: true, trainer: trainer(calls) });
    expect(calls).toHaveLength(10);
    expect(s.results[0].reuse).toMatch(/0 trained .* 4 STALE reused \(--reuse-stale; code changed: 4\)$/);
    expect(s.results[0].rows.map((r) => r.stale)).toEqual([2, 2]);
    expect(s.results[0].findings[0].stale).toBe(true);
    expect(s.results[0].staleRuns).toHaveLength(4);
    const md = readFileSync(join(out, 'results.md'), 'utf8');
    expect(md).toMatch(/\*\*STALE RUNS \(--reuse-stale\)\*\*: 4 runs/);
    expect(md).toContain('| distilled (STALE: 2 runs) | 2 |');
    expect(md).toMatch(/\*\* \(STALE runs\) \|/);
    expect(s.table).toMatch(/^two\nSTALE: 4 run\(s\) reused with --reuse-stale/);
    // and without the flag they retrain
    await runExperiments(spec, { ...opts, trainer: trainer(calls) });
    expect(calls).toHaveLength(14);
    // kept side by side: the distilled runs under 4 fingerprints (teacher v1; v2 with code 1, 2, 3), the no-teacher runs under 3 (code 1, 2, 3), 2 seeds each
    expect(readdirSync(store).length).toBe(4 * 2 + 3 * 2);
  });

  it('a digit flipped in a stored result.json: named, not reported, the run retrained', async () => {
    const { store, spec, opts } = setup();
    const calls: string[] = [];
    const warnings: string[] = [];
    const log = { ...quiet, warn: (m: string) => warnings.push(m), child: () => log } as unknown as typeof quiet;
    await runExperiments(spec, { ...opts, trainer: trainer(calls) });
    const dir = readdirSync(store)
      .map((d) => join(store, d))
      .find(
        (d) =>
          JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')).label === 'none' &&
          JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')).seed === 0,
      )!;
    const file = join(dir, 'result.json');
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('"rsum": 100');
    writeFileSync(file, text.replace('"rsum": 100', '"rsum": 900')); // 100 -> 900: a flipped digit
    expect(readVerifiedResult(file)).toMatchObject({ ok: false, problem: expect.stringMatching(/^checksum mismatch/) });
    const r = await runExperiments(spec, { ...opts, logger: log, trainer: trainer(calls) });
    expect(calls.slice(4)).toEqual(['none/0']);
    expect(warnings.some((w) => w.startsWith(`${file}: checksum mismatch`) && /retrained/.test(w))).toBe(true);
    expect(r.results[0].rows[1].rsum.mean).toBe(100.5); // 100 and 101, never 900
    expect(r.results[0].rows[1].runs[0].reason).toMatch(/^corrupt, retrained \(.*result\.json: checksum mismatch/);
    expect(readdirSync(store).some((d) => d.startsWith(`${dir.split('/').at(-1)}.corrupt-`))).toBe(true);
  });

  it('range checks: RSUM within [0, 600] and the sum of its recalls; ranks within the split', () => {
    const m = { i2t_r1: 10, i2t_r5: 20, i2t_r10: 30, t2i_r1: 10, t2i_r5: 20, t2i_r10: 30, rsum: 120 };
    const ok = { test: m, val: [m], steps: 4, parameters: { total: 3 } } as unknown as TrainResult;
    expect(resultProblems(ok)).toEqual([]);
    expect(resultProblems({ ...ok, test: { ...m, rsum: 920 } } as TrainResult)).toEqual([
      'test.rsum = 920 (RSUM lies in [0, 600])',
    ]);
    expect(resultProblems({ ...ok, test: { ...m, i2t_r1: 19, rsum: 129 } } as TrainResult)).toEqual([]);
    expect(resultProblems({ ...ok, test: { ...m, i2t_r1: 19 } } as TrainResult)[0]).toMatch(
      /test.rsum = 120 is not the sum of its six recalls/,
    );
    const r = { i2t: [0, 3, -1], t2i: [0, 1, 2, 2], textToImage: [0, 1, 1, 2] };
    expect(ranksProblems(r, { images: 3, captions: 4 })).toEqual([]);
    expect(ranksProblems({ ...r, t2i: [0, 1, 7, 2] }, { images: 3, captions: 4 })).toEqual([
      't2i[2] = 7 (a rank in [0, 3))',
    ]);
    expect(ranksProblems(r, { images: 4, captions: 4 })).toEqual(['3 image ranks for a test split of 4 images']);
    expect(ranksProblems({ ...r, rsum: 1 })[0]).toMatch(/recorded rsum 1 differs from the ranks' own/);
  });

  it('a character changed in a stored ranks.json: named, recomputed, and the claim unchanged', async () => {
    const { spec, opts, tmp } = setup();
    const warnings: string[] = [];
    const log = { ...quiet, warn: (m: string) => warnings.push(m), child: () => log } as unknown as typeof quiet;
    let computed = 0;
    const rankFor = (cfg: TrainConfig) => {
      const r = Array.from({ length: 40 }, (_, i) => (i < (cfg.losses === 'none' ? 10 : 25) + cfg.seed ? 0 : 30));
      return { i2t: r, t2i: r, textToImage: r.map((_, i) => i), rsum: 0 };
    };
    const ranks = (cfg: TrainConfig, dir: string) =>
      obtainRanks(
        join(dir, 'ranks.json'),
        { images: 40, captions: 40 },
        async () => {
          computed++;
          const r = rankFor(cfg);
          return { ...r, rsum: recallFromRanks(r).rsum };
        },
        log,
      );
    const o = { ...opts, logger: log, ranks: ranks as never, trainer: trainer([]) };
    const first = await runExperiments(spec, o);
    expect(computed).toBe(4);
    const dir = first.results[0].rows[0].runs[0].dir;
    const file = join(dir, 'ranks.json');
    cpSync(file, join(tmp, 'ranks.bak'));
    // one rank 0 -> 3: in range, but not what was written
    const text = readFileSync(file, 'utf8');
    writeFileSync(
      file,
      text.replace(/\[\n\s+0,/, (m) => m.replace('0,', '3,')),
    );
    expect(readFileSync(file, 'utf8')).not.toBe(text);
    const again = await runExperiments(spec, o);
    expect(computed).toBe(5);
    expect(warnings.some((w) => w.startsWith(`${file}: checksum mismatch`) && /recomputing/.test(w))).toBe(true);
    expect(again.results[0].findings[0].effect).toEqual(first.results[0].findings[0].effect);
    expect(existsSync(`${file}.sha256`)).toBe(true);
  });
});
