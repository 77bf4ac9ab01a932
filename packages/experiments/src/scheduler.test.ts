import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { atomicWriteJson, createLogger, DistillError } from '@distill/core';
import type { TrainResult } from '@distill/training';
import { describe, expect, it } from 'vitest';
import { runExperiments } from './experiment.js';
import { runDirOf, runScheduled, type Trainer } from './scheduler.js';
import { loadSpec, planRows } from './spec.js';
import type { RunRanks } from './stats.js';
import { createTrainingContainer as builtinsContainer } from '@distill/training';

/** This test's own registries (the built-ins; there is no global container). */
const builtins = builtinsContainer();

const quiet = createLogger({ level: 'error' } as never);
/** A fixed fingerprint (code, teacher, dataset): these tests are about scheduling, not staleness (store.test.ts). */
const fp = () => ({ code: 'c', teacher: 't', dataset: 'd' });

/** A stand-in for the training process: writes result.json with a test RSUM derived from the config. */
function fakeTrainer(
  calls: { label: string; seed: number; resume: boolean }[],
  opts: { failOn?: string; concurrency?: { now: number; max: number } } = {},
): Trainer {
  return async (job) => {
    calls.push({ label: job.label, seed: job.config.seed, resume: job.resume });
    const c = opts.concurrency;
    if (c) c.max = Math.max(c.max, ++c.now);
    await new Promise((r) => setTimeout(r, 20));
    if (c) c.now--;
    if (job.label === opts.failOn) {
      writeFileSync(join(job.dir, 'checkpoint.safetensors'), 'partial');
      throw new DistillError(`Run '${job.label}' failed`);
    }
    const rsum = 100 + job.config.seed + (job.config.balancer === 'static' ? 0 : 50);
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

describe('runScheduled', () => {
  it('trains each distinct run once, at most `workers` at a time; a rerun reuses them all', async () => {
    const store = mkdtempSync(join(tmpdir(), 'distill-store-'));
    const rows = [
      ...planRows(loadSpec('table5'), { container: builtins, scale: 'smoke', seeds: 2 }).slice(0, 2),
      ...planRows(loadSpec('figure2'), { container: builtins, scale: 'smoke', seeds: 2 }),
    ];
    const runs = rows.flatMap((r) => r.runs);
    expect(runs).toHaveLength(6);
    const calls: { label: string; seed: number; resume: boolean }[] = [];
    const concurrency = { now: 0, max: 0 };
    const first = await runScheduled(runs, {
      store,
      fingerprint: fp,
      workers: 2,
      log: quiet,
      trainer: fakeTrainer(calls, { concurrency }),
    });
    expect(calls).toHaveLength(4); // figure2's run is table5's 'with balancer' run
    expect(concurrency.max).toBe(2);
    expect([...first.values()].every((o) => o.status === 'trained')).toBe(true);
    const mtimes = [...first.values()].map((o) => statSync(join(o.dir, 'result.json')).mtimeMs);
    const again = await runScheduled(runs, {
      store,
      fingerprint: fp,
      workers: 2,
      log: quiet,
      trainer: fakeTrainer(calls),
    });
    expect(calls).toHaveLength(4);
    expect([...again.values()].map((o) => o.status)).toEqual(['reused', 'reused', 'reused', 'reused']);
    expect([...again.values()].map((o) => statSync(join(o.dir, 'result.json')).mtimeMs)).toEqual(mtimes);
    // the record of each run: its config and hash
    const o = [...again.values()][0];
    expect(JSON.parse(readFileSync(join(o.dir, 'config.json'), 'utf8')).configHash).toBe(o.run.hash);
  });

  it('a failed run stops the experiment; the rerun resumes it from its checkpoint and keeps the finished ones', async () => {
    const store = mkdtempSync(join(tmpdir(), 'distill-store-'));
    const runs = planRows(loadSpec('table5'), { container: builtins, scale: 'smoke', seeds: 1 })
      .slice(0, 2)
      .flatMap((r) => r.runs);
    const calls: { label: string; seed: number; resume: boolean }[] = [];
    await expect(
      runScheduled(runs, {
        store,
        fingerprint: fp,
        workers: 1,
        log: quiet,
        trainer: fakeTrainer(calls, { failOn: 'without (static 1:1:1:1)' }),
      }),
    ).rejects.toThrow(/failed/);
    const finished = join(runDirOf(store, runs[0].hash, fp()), 'result.json');
    const t = statSync(finished).mtimeMs;
    const out = await runScheduled(runs, {
      store,
      fingerprint: fp,
      workers: 1,
      log: quiet,
      trainer: fakeTrainer(calls),
    });
    expect(calls.map((c) => [c.label, c.resume])).toEqual([
      ['with balancer', false],
      ['without (static 1:1:1:1)', false],
      ['without (static 1:1:1:1)', true],
    ]);
    expect(out.get(runs[1].hash)!.status).toBe('resumed');
    expect(statSync(finished).mtimeMs).toBe(t);
  });

  it('two experiments that need the same run at the same time train it once', async () => {
    const store = mkdtempSync(join(tmpdir(), 'distill-store-'));
    const runs = planRows(loadSpec('table5'), { container: builtins, scale: 'smoke', seeds: 1 })
      .slice(0, 2)
      .flatMap((r) => r.runs);
    const calls: { label: string; seed: number; resume: boolean }[] = [];
    const slow: Trainer = async (job, log) => {
      await new Promise((r) => setTimeout(r, 300));
      return fakeTrainer(calls)(job, log);
    };
    const [a, b] = await Promise.all([
      runScheduled(runs, { store, fingerprint: fp, workers: 1, log: quiet, trainer: slow }),
      runScheduled([runs[0]], { store, fingerprint: fp, workers: 1, log: quiet, trainer: slow }),
    ]);
    expect(calls.map((c) => c.label)).toEqual(['with balancer', 'without (static 1:1:1:1)']);
    // whichever got the run's lock first trained it; the other waited and reused it
    expect([a.get(runs[0].hash)!.status, b.get(runs[0].hash)!.status].sort()).toEqual(['reused', 'trained']);
    expect(b.get(runs[0].hash)!.result).toEqual(a.get(runs[0].hash)!.result);
  });

  it('refuses a store folder that holds another config', async () => {
    const store = mkdtempSync(join(tmpdir(), 'distill-store-'));
    const [run] = planRows(loadSpec('figure2'), { container: builtins, scale: 'smoke', seeds: 1 })[0].runs;
    atomicWriteJson(join(runDirOf(store, run.hash, fp()), 'config.json'), {
      config: { ...run.config, seed: 5 },
      configHash: 'other',
    });
    await expect(
      runScheduled([run], { store, fingerprint: fp, workers: 1, log: quiet, trainer: fakeTrainer([]) }),
    ).rejects.toThrow(/holds another config/);
  });
});

describe('runExperiments (with a stand-in trainer)', () => {
  it('writes results.json with label, n and rsum {mean, std} per row, findings with effect, ci and verdict, and results.md', async () => {
    const store = mkdtempSync(join(tmpdir(), 'distill-store-'));
    const out = mkdtempSync(join(tmpdir(), 'distill-out-'));
    // ranks: every run finds its first k of 50 images at rank 0, k from the run's RSUM
    const ranks = async (cfg: { seed: number; balancer?: string }): Promise<RunRanks> => {
      const k = cfg.balancer === 'static' ? 10 : 40;
      const r = Array.from({ length: 50 }, (_, i) => (i < k ? 0 : 30));
      return { i2t: r, t2i: r, textToImage: r.map((_, i) => i) };
    };
    const { results, table } = await runExperiments('table5', {
      container: builtins,
      only: ['with balancer', 'without (static 1:1:1:1)'],
      scale: 'smoke',
      seeds: 3,
      workers: 2,
      out,
      store,
      fingerprint: fp,
      logger: quiet,
      trainer: fakeTrainer([]),
      ranks: ranks as never,
      replicates: 200,
    });
    const json = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(json.rows.map((r: { label: string; n: number; rsum: unknown }) => [r.label, r.n, r.rsum])).toEqual([
      ['with balancer', 3, { mean: 151, std: 1 }],
      ['without (static 1:1:1:1)', 3, { mean: 101, std: 1 }],
    ]);
    expect(json.findings).toHaveLength(1);
    expect(json.findings[0]).toMatchObject({
      claim: expect.stringMatching(/balancer helps/),
      effect: { mean: 360 },
      verdict: 'holds',
      verdictKind: 'holds',
      seeds: [0, 1, 2],
    });
    expect(json.findings[0].effect.lo).toBeGreaterThan(0);
    for (const k of ['p', 'pHolm', 'mde']) expect(typeof json.findings[0][k]).toBe('number');
    expect(json.reuse).toMatch(/^6 distinct runs: 0 reused .*, 6 trained \(6 new\), 0 resumed$/);
    expect(results[0].rows[0].paper?.rsum).toBe(528.8);
    const md = readFileSync(join(out, 'results.md'), 'utf8');
    expect(md).toContain('| with balancer | 3 | ');
    expect(md).toContain('151.0 ± 1.0');
    expect(md).toContain('**holds**');
    expect(existsSync(join(out, 'table5-bars.svg'))).toBe(true);
    expect(table.split('\n').at(-1)).toMatch(/\*\*holds\*\* \|$/);
  });

  it("teacherRow: the teacher's test recall beside the rows, and every gap in units of the spread over seeds", async () => {
    const store = mkdtempSync(join(tmpdir(), 'distill-store-'));
    const out = mkdtempSync(join(tmpdir(), 'distill-out-'));
    const spec = join(out, 'gaps.yaml');
    writeFileSync(
      spec,
      [
        'name: gaps',
        'title: gaps',
        'teacherRow: true',
        'runs:',
        '  - { label: distilled, set: { losses: dsmd-official } }',
        '  - { label: static, set: { losses: dsmd-official, balancer: static } }',
        'findings:',
        '  - { claim: "distilled beats static", better: distilled, worse: static }',
      ].join('\n'),
    );
    const ranks = async (cfg: { balancer?: string }): Promise<RunRanks> => {
      const r = Array.from({ length: 50 }, (_, i) => (i < (cfg.balancer === 'static' ? 10 : 40) ? 0 : 30));
      return { i2t: r, t2i: r, textToImage: r.map((_, i) => i) };
    };
    const m = { i2t_r1: 30, i2t_r5: 40, i2t_r10: 50, t2i_r1: 20, t2i_r5: 30, t2i_r10: 30, rsum: 200 };
    const asked: string[] = [];
    const teacherMetrics = async (cfg: { losses: string }) => (
      asked.push(cfg.losses),
      { name: 'glyphs', test: m as never }
    );
    const threads: number[] = [];
    const trainer: Trainer = async (job, log) => (threads.push(job.config.threads), fakeTrainer([])(job, log));
    const { results, table } = await runExperiments(spec, {
      container: builtins,
      scale: 'smoke',
      seeds: 3,
      workers: 2,
      threads: 1,
      out,
      store,
      fingerprint: fp,
      logger: quiet,
      trainer,
      ranks: ranks as never,
      replicates: 100,
      teacherMetrics: teacherMetrics as never,
    });
    expect(threads).toEqual([1, 1, 1, 1, 1, 1]); // --threads wins over cores / workers
    expect(asked).toEqual(['dsmd-official']); // the teacher is evaluated once, from a row that uses it
    const r = results[0];
    expect(r.teacher).toEqual({ name: 'glyphs', test: m });
    // rows: 151 ± 1 and 101 ± 1; the finding's effect (from the ranks) is 360
    expect(r.gaps!.map((g) => [g.between, g.gap, g.std, g.ratio])).toEqual([
      ['teacher (glyphs) - distilled', 49, 1, 49],
      ['teacher (glyphs) - static', 99, 1, 99],
      ['distilled beats static', 360, 1, 360],
    ]);
    const md = readFileSync(join(out, 'results.md'), 'utf8');
    expect(md).toContain('Teacher `glyphs` on the same test split (from its cached features): i2t_r1 30.0,');
    expect(md).toContain('| teacher (glyphs) - distilled | +49.0 | 1.00 | 49.0 |');
    expect(table).toContain('teacher glyphs: test RSUM 200.0');
    expect(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).gaps).toHaveLength(3);
    await expect(
      runExperiments(spec, {
        container: builtins,
        scale: 'smoke',
        seeds: 1,
        threads: 0,
        out,
        store,
        fingerprint: fp,
        logger: quiet,
        trainer,
      }),
    ).rejects.toThrow('--threads expects a whole number >= 1, got 0.');
  });

  it('--only keeps the named rows and the claims that compare only them', async () => {
    const store = mkdtempSync(join(tmpdir(), 'distill-store-'));
    const out = mkdtempSync(join(tmpdir(), 'distill-out-'));
    const ranks = async (): Promise<RunRanks> => ({ i2t: [0, 1], t2i: [0, 1], textToImage: [0, 1] });
    const opts = {
      container: builtins,
      scale: 'smoke' as const,
      seeds: 1,
      out,
      store,
      fingerprint: fp,
      logger: quiet,
      trainer: fakeTrainer([]),
      ranks: ranks as never,
      replicates: 50,
    };
    const { results } = await runExperiments('finding2', { ...opts, only: ['vit-bert tiny', 'deit-albert tiny'] });
    expect(results[0].rows.map((r) => r.label)).toEqual(['vit-bert tiny', 'deit-albert tiny']);
    expect(results[0].findings.map((f) => f.claim)).toEqual([
      'Finding 2 at tiny: ViT+BERT beats the smaller DeiT+ALBERT',
    ]);
    await expect(runExperiments('arch', { ...opts, only: ['vit-bart'] })).rejects.toThrow(
      /--only: no row labelled 'vit-bart' in 'arch' \(rows: vit-bert, resnet-bert, vit-textcnn/,
    );
  });
});

describe('--seeds auto', () => {
  it('adds seeds to the rows of undecided claims only, until each is decided (or --max-seeds)', async () => {
    const store = mkdtempSync(join(tmpdir(), 'distill-store-'));
    const out = mkdtempSync(join(tmpdir(), 'distill-out-'));
    const spec = join(out, 'auto.yaml');
    writeFileSync(
      spec,
      [
        'name: auto',
        'title: auto',
        'runs:',
        '  - { label: a, set: { losses: dsmd-official } }',
        '  - { label: b, set: { losses: none } }',
        '  - { label: c, set: { losses: kd } }',
        '  - { label: d, set: { losses: fitnet } }',
        'findings:',
        '  - { claim: "a beats b", better: a, worse: b }',
        '  - { claim: "c beats d", better: c, worse: d }',
      ].join('\n'),
    );
    // every image of a run reaches the same R@K hits (i2t level, t2i level): its RSUM does not move with the images
    const run = (i2tHits: number, t2iHits: number): RunRanks => {
      const rank = (h: number) => [20, 7, 2, 0][h];
      const n = 30;
      return {
        i2t: Array(n).fill(rank(i2tHits)),
        t2i: Array(n).fill(rank(t2iHits)),
        textToImage: Array.from({ length: n }, (_, i) => i),
      };
    };
    // a 600 and b 0 at every seed; c - d per seed: 100, 500, 300, 300, ... (inconclusive at 2 and 3 seeds, holds at 4)
    const c = [
      [2, 2],
      [3, 3],
      [3, 2],
      [3, 2],
      [3, 2],
      [3, 2],
    ];
    const d = [
      [2, 1],
      [1, 0],
      [1, 1],
      [1, 1],
      [1, 1],
      [1, 1],
    ];
    const ranks = async (cfg: { losses: string; seed: number }) =>
      ({
        'dsmd-official': run(3, 3),
        none: run(0, 0),
        kd: run(c[cfg.seed][0], c[cfg.seed][1]),
        fitnet: run(d[cfg.seed][0], d[cfg.seed][1]),
      })[cfg.losses]!;
    const calls: { label: string; seed: number; resume: boolean }[] = [];
    const { results } = await runExperiments(spec, {
      container: builtins,
      scale: 'smoke',
      seeds: 'auto',
      minSeeds: 2,
      maxSeeds: 6,
      workers: 1,
      out,
      store,
      fingerprint: fp,
      logger: quiet,
      trainer: fakeTrainer(calls),
      ranks: ranks as never,
      replicates: 20,
    });
    const r = results[0];
    expect(r.rows.map((x) => [x.label, x.n])).toEqual([
      ['a', 2],
      ['b', 2],
      ['c', 4],
      ['d', 4],
    ]);
    expect(calls).toHaveLength(12);
    expect(r.findings.map((f) => [f.claim, f.seeds.length, f.verdict])).toEqual([
      ['a beats b', 2, 'holds'],
      ['c beats d', 4, 'holds'],
    ]);
    expect(r.findings[1].effect.mean).toBeCloseTo(300, 9);
    expect(r.seeds).toBe(4);
    // capped: with --max-seeds 3 the claim stays undecided at 3 seeds
    const capped = await runExperiments(spec, {
      container: builtins,
      scale: 'smoke',
      seeds: 'auto',
      minSeeds: 2,
      maxSeeds: 3,
      workers: 1,
      out,
      store,
      fingerprint: fp,
      logger: quiet,
      trainer: fakeTrainer(calls),
      ranks: ranks as never,
      replicates: 20,
    });
    expect(capped.results[0].findings.map((f) => [f.seeds.length, f.verdict])).toEqual([
      [2, 'holds'],
      [3, 'inconclusive'],
    ]);
    expect(calls).toHaveLength(12); // every run was in the store
    await expect(
      runExperiments(spec, {
        container: builtins,
        scale: 'smoke',
        seeds: 'auto',
        minSeeds: 3,
        maxSeeds: 2,
        out,
        store,
        fingerprint: fp,
        logger: quiet,
        trainer: fakeTrainer(calls),
      }),
    ).rejects.toThrow(/--max-seeds expects a whole number >= 3/);
  });
});
