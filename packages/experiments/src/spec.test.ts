import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DistillError } from '@distill/core';
import { createStudentFor, methodFor } from '@distill/training';
import { describe, expect, it } from 'vitest';
import { expandSpecs, loadSpec, planRows, shippedSpecNames } from './spec.js';
import { createTrainingContainer as builtinsContainer } from '@distill/training';

/** This test's own registries (the built-ins; there is no global container). */
const builtins = builtinsContainer();

describe('shipped experiment specs', () => {
  it('ship the paper tables, arch, finding2, figure2, glyphs and all', () => {
    expect(shippedSpecNames()).toEqual([
      'all',
      'arch',
      'figure2',
      'finding2',
      'glyphs',
      'table2',
      'table4',
      'table5',
      'table6',
      'table7',
      'table8',
      'table9',
      'table10',
    ]);
  });

  it('every spec resolves to valid configs at both scales, one per seed', () => {
    for (const spec of [...expandSpecs('all'), loadSpec('glyphs')]) {
      for (const scale of ['smoke', 'full'] as const) {
        const rows = planRows(spec, { container: builtins, scale, seeds: 2 });
        for (const r of rows) {
          expect(r.runs.map((x) => x.seed)).toEqual([0, 1]);
          expect(r.runs[0].hash).not.toBe(r.runs[1].hash);
          expect(r.runs[0].config.baseline).toBe(false);
        }
      }
    }
  });

  it('table2 has a row for each method of the done-when check', () => {
    const rows = planRows(loadSpec('table2'), { container: builtins, scale: 'smoke', seeds: 1 });
    expect(rows.map((r) => r.label)).toEqual([
      'dsmd',
      'dsmd-official',
      'dcd',
      'clip-kd',
      'kd',
      'fitnet',
      'rkd',
      'none',
    ]);
    expect(rows.map((r) => r.runs[0].config.losses)).toEqual([
      'dsmd',
      'dsmd-official',
      'dcd',
      'clip-kd',
      'kd',
      'fitnet',
      'rkd',
      'none',
    ]);
  });

  it('the dsmd-official run is one run shared by the tables that contain it', () => {
    const hashOf = (name: string, label: string) =>
      planRows(loadSpec(name), { container: builtins, scale: 'full', seeds: 1 }).find((r) => r.label === label)!.runs[0]
        .hash;
    const shared = hashOf('table2', 'dsmd-official');
    expect([
      hashOf('table4', 'cd+fd+sd+hnd'),
      hashOf('table5', 'with balancer'),
      hashOf('table6', 'with L2 normalisation'),
      hashOf('table7', 'T=0.05'),
      hashOf('table8', 'K=4096'),
      hashOf('table9', 'm=0.2'),
      hashOf('table10', 'T=1'),
      hashOf('figure2', 'dsmd-official'),
      hashOf('arch', 'vit-bert'),
    ]).toEqual(Array(9).fill(shared));
    // and the rows that vary a setting are other runs
    expect(hashOf('table10', 'T=0.5')).not.toBe(shared);
    expect(hashOf('table5', 'without (static 1:1:1:1)')).not.toBe(shared);
    expect(hashOf('table6', 'without L2 normalisation')).not.toBe(shared);
  });

  it('the command-line flags set every run; the scale picks the preset, --preset overrides it', () => {
    const rows = planRows(loadSpec('arch'), {
      container: builtins,
      scale: 'full',
      seeds: 1,
      flags: { student: { preset: 'small' }, teacher: { name: 'emoji' } },
    });
    expect(rows.slice(0, 4).map((r) => `${r.runs[0].config.student.pair}/${r.runs[0].config.student.preset}`)).toEqual([
      'vit-bert/small',
      'resnet-bert/small',
      'vit-textcnn/small',
      'resnet-textcnn/small',
    ]);
    // finding2 sets its sizes per row: --size would collapse them
    expect(() =>
      planRows(loadSpec('finding2'), {
        container: builtins,
        scale: 'full',
        seeds: 1,
        flags: { student: { preset: 'small' } },
      }),
    ).toThrow(
      /--size small would override the sizes experiment 'finding2' sets per row \(vit-bert tiny, deit-albert tiny, vit-bert small, deit-albert small\); drop --size./,
    );
    const g = planRows(loadSpec('table2'), { container: builtins, scale: 'full', seeds: 1, preset: 'glyphs' })[0]
      .runs[0].config;
    expect([g.dataset.name, g.teacher.name]).toEqual(['glyphs', 'glyphs']);
    expect(
      planRows(loadSpec('table2'), { container: builtins, scale: 'smoke', seeds: 1 })[0].runs[0].config.dataset
        .trainSubset,
    ).toBe(256);
    expect(
      planRows(loadSpec('table2'), { container: builtins, scale: 'full', seeds: 1 })[0].runs[0].config.dataset
        .trainSubset,
    ).toBeUndefined();
  });

  it('arch is a 2x2 of image x text family at matched parameter counts, each pair with and without a teacher; its claims are contrasts', async () => {
    const spec = loadSpec('arch');
    const rows = planRows(spec, { container: builtins, scale: 'full', seeds: 1 });
    expect(rows.map((r) => [r.runs[0].config.student.pair, r.runs[0].config.losses])).toEqual([
      ...['vit-bert', 'resnet-bert', 'vit-textcnn', 'resnet-textcnn'].map((p) => [p, 'dsmd-official']),
      ...['vit-bert', 'resnet-bert', 'vit-textcnn', 'resnet-textcnn'].map((p) => [p, 'none']),
    ]);
    const container = builtins;
    const params: number[] = [];
    for (const r of rows.slice(0, 4)) {
      const student = await createStudentFor(r.runs[0].config.student, { embedDim: 256, seed: 0, container });
      params.push(student.parameterCount().total);
      student.dispose();
    }
    expect(params).toEqual([352128, 352203, 351238, 351313]);
    expect(Math.max(...params) / Math.min(...params)).toBeLessThan(1.003);
    // the interaction's weights sum to 0 over each factor
    expect(spec.findings[0].contrast).toEqual({
      'vit-bert': 1,
      'resnet-textcnn': 1,
      'resnet-bert': -1,
      'vit-textcnn': -1,
    });
    expect(Object.values(spec.findings[1].contrast!).reduce((a, b) => a + b, 0)).toBe(0);
  });

  it('a finding names better and worse rows or a contrast, not both', () => {
    const dir = mkdtempSync(join(tmpdir(), 'distill-spec-'));
    const f = join(dir, 'c.yaml');
    writeFileSync(
      f,
      'name: x\ntitle: X\nruns: [{ label: a }, { label: b }]\nfindings: [{ claim: c, better: a, worse: b, contrast: { a: 1 } }]\n',
    );
    expect(() => loadSpec(f)).toThrow(/a finding names either 'better' and 'worse' rows, or a 'contrast'/);
    writeFileSync(
      f,
      'name: x\ntitle: X\nruns: [{ label: a }, { label: b }]\nfindings: [{ claim: c, contrast: { a: 1, zz: -1 } }]\n',
    );
    expect(() => loadSpec(f)).toThrow(/names 'zz', which is not a run label/);
  });

  it("table6 switches the L2 normalisation of the losses' features off in one row, and the trainer's student gets it", async () => {
    const rows = planRows(loadSpec('table6'), { container: builtins, scale: 'smoke', seeds: 1 });
    expect(rows.map((r) => [r.label, r.runs[0].config.student.normalize, r.paper?.rsum])).toEqual([
      ['with L2 normalisation', true, 528.8],
      ['without L2 normalisation', false, 318.9],
    ]);
    const container = builtins;
    const got: boolean[] = [];
    for (const r of rows) {
      const student = await createStudentFor(r.runs[0].config.student, { embedDim: 16, seed: 0, container });
      got.push(student.normalizeInTraining);
      student.dispose();
    }
    expect(got).toEqual([true, false]);
  });

  it("table10 sets the balancer temperature, and the trainer's balancer gets it", async () => {
    const rows = planRows(loadSpec('table10'), { container: builtins, scale: 'smoke', seeds: 1 });
    expect(rows.map((r) => r.runs[0].config.balancerOptions?.temperature)).toEqual([0.05, 0.2, 0.5, undefined]);
    const temperatures: unknown[] = [];
    for (const r of rows) {
      const cfg = r.runs[0].config;
      const state = (await methodFor(cfg, builtins)).createState(8, cfg);
      temperatures.push((state.balancer as unknown as { cfg: { temperature: number } }).cfg.temperature);
      state.dispose();
    }
    expect(temperatures).toEqual([0.05, 0.2, 0.5, 1]);
    // a temperature for a balancer that has none is refused, not dropped
    const cfg = { ...rows[0].runs[0].config, balancer: 'static' };
    await expect(methodFor(cfg, builtins).then((m) => m.createState(8, cfg))).rejects.toThrow(
      /does not apply to the 'static' balancer/,
    );
  });
});

describe('user specs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'distill-spec-'));
  const write = (name: string, text: string) => {
    const f = join(dir, name);
    writeFileSync(f, text);
    return f;
  };

  it('a spec file by path: base + runs as overrides', () => {
    const f = write(
      'mine.yaml',
      'name: mine\ntitle: Mine\nbase: { losses: dsmd-official, batchSize: 16 }\nruns:\n  - { label: a }\n  - { label: b, set: { lossOptions: { queueSize: 512 } } }\n',
    );
    const rows = planRows(loadSpec(f), { container: builtins, scale: 'smoke', seeds: 1 });
    expect(rows.map((r) => [r.runs[0].config.batchSize, r.runs[0].config.lossOptions.queueSize])).toEqual([
      [16, 256],
      [16, 512],
    ]);
  });

  it('says what is wrong in one line', () => {
    expect(() => loadSpec('table99')).toThrow(
      /Unknown experiment 'table99'. Available: all, arch, figure2, finding2, glyphs, table2/,
    );
    expect(() => loadSpec(join(dir, 'missing.yaml'))).toThrow(/Experiment spec not found/);
    expect(() => loadSpec(write('bad-key.yaml', 'name: x\ntitle: X\nrunz: []\n'))).toThrow(DistillError);
    expect(() => loadSpec(write('dup.yaml', 'name: x\ntitle: X\nruns: [{ label: a }, { label: a }]\n'))).toThrow(
      /'a' is used twice/,
    );
    expect(() =>
      loadSpec(
        write(
          'claim.yaml',
          'name: x\ntitle: X\nruns: [{ label: a }]\nfindings: [{ claim: c, better: a, worse: zz }]\n',
        ),
      ),
    ).toThrow(/names 'zz', which is not a run label/);
    const badCfg = loadSpec(write('cfg.yaml', 'name: x\ntitle: X\nruns: [{ label: a, set: { losses: nope } }]\n'));
    expect(() => planRows(badCfg, { container: builtins, scale: 'smoke', seeds: 1 })).toThrow(/losses.*row 'a'/);
  });
});
