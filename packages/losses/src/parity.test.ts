import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { initRuntime, readJsonFile } from '@distill/core';
import { compareToFixture, formatParityReport, isBaselineFixture, runLossParityFile } from './parity.js';

// The official DSMD fixture (fixtures/parity/dsmd_public.json) replays the dsmd-official balancer too: that
// test composes losses and balancer, so it lives in @distill/training (src/loss-parity.test.ts). Here, only
// that the replay asks for the balancer it is handed instead of importing one.
/** In-repo copy of shared/parity/dsmd_public.json (the test runs on any clone). */
const file = fileURLToPath(new URL('./fixtures/parity/dsmd_public.json', import.meta.url));

describe('the official fixture replay without a balancer', () => {
  it('refuses with what to pass (losses does not import @distill/balancer)', () => {
    expect(() => runLossParityFile(file)).toThrow(/^This fixture replays the dsmd-official balancer: pass one/);
  });
});

// Float64 PyTorch references of the baseline losses (spec/baseline-losses.md): the shared fixture
// (seed 0, B 10, D 12, ids with repeats) and one from tools/parity/baseline_losses.py (seed 7, B 13,
// D 20, groups of 3/2/1, tau 0.1, kd tau 4), both written without distill's code. Copies in fixtures/.
const fixture = (f: string) => fileURLToPath(new URL(`./fixtures/${f}`, import.meta.url));
const BASELINE_FIXTURES = ['baselines.json', 'baselines-seed7.json'];
const BASELINE_KEYS = [
  'info_nce_image_text',
  'contrastive',
  'kd',
  'fitnet',
  'rkd_distance_image',
  'rkd_angle_image',
  'rkd',
  'clip_kd',
];

describe('parity with the float64 PyTorch baseline losses', () => {
  beforeAll(async () => {
    await initRuntime('cpu', { quiet: true });
  });

  for (const f of BASELINE_FIXTURES) {
    it(`${f}: every key (contrastive, kd, fitnet, rkd, clip-kd) within 1e-5 relative`, () => {
      const fx = readJsonFile<{ outputs: Record<string, number> }>(fixture(f));
      expect(Object.keys(fx.outputs).sort()).toEqual([...BASELINE_KEYS].sort());
      const got = runLossParityFile(fixture(f));
      expect(Object.keys(got).sort()).toEqual([...BASELINE_KEYS].sort());
      const rel = compareToFixture(got, fx.outputs);
      for (const k of BASELINE_KEYS) expect(rel[k], k).toBeLessThanOrEqual(1e-5);
    });
  }

  it('the two fixtures differ (other seeds, sizes and temperatures)', () => {
    const [a, b] = BASELINE_FIXTURES.map((f) =>
      readJsonFile<{ batch: number; dim: number; seed: number; kd_temperature: number }>(fixture(f)),
    );
    expect([a.seed, a.batch, a.dim]).not.toEqual([b.seed, b.batch, b.dim]);
    expect(a.kd_temperature).not.toBe(b.kd_temperature);
  });

  it('a wrong reference value shows as a relative difference, worst last', () => {
    const fx = readJsonFile<{ outputs: Record<string, number> }>(fixture('baselines.json'));
    const got = runLossParityFile(fixture('baselines.json'));
    const rel = compareToFixture(got, { ...fx.outputs, kd: fx.outputs.kd * 1.01 });
    expect(rel.kd).toBeCloseTo(0.01 / 1.01, 4);
    const { lines, worst } = formatParityReport(got, rel);
    expect(worst).toBe(rel.kd);
    expect(lines).toHaveLength(BASELINE_KEYS.length + 1);
    expect(lines.at(-2)).toMatch(/^kd 0\.08267\d+ rel=9\.90e-3$/);
    expect(lines.at(-1)).toBe('worst_rel=9.90e-3');
    // A missing output or a NaN is the worst possible.
    expect(compareToFixture({}, { kd: 1 }).kd).toBe(Infinity);
    expect(formatParityReport({ kd: Number.NaN }, compareToFixture({ kd: Number.NaN }, { kd: 1 })).lines.at(-1)).toBe(
      'worst_rel=Infinity',
    );
  });

  it('tells the two fixture formats apart', () => {
    expect(isBaselineFixture(readJsonFile(fixture('baselines.json')))).toBe(true);
    expect(isBaselineFixture(readJsonFile(file))).toBe(false);
    for (const x of [null, 42, 'x', {}, { inputs: {} }, { inputs: { s_image: 1 } }])
      expect(isBaselineFixture(x)).toBe(false);
  });

  it('the report shows arrays as a count, null and missing values; equal differences sort by key', () => {
    const { lines, worst } = formatParityReport({ a: [[1, 2], [3]], b: null, z: 1 }, { z: 0, b: 0.5, c: 0.5, a: 0 });
    expect(lines).toEqual([
      'a [3 values] rel=0.00e+0',
      'z 1 rel=0.00e+0',
      'b null rel=5.00e-1',
      'c missing rel=5.00e-1',
      'worst_rel=5.00e-1',
    ]);
    expect(worst).toBe(0.5);
    expect(formatParityReport({}, {}).lines).toEqual(['worst_rel=0.00e+0']);
    // compareToFixture: nested arrays element by element, a floor under tiny references, float32/ keys skipped.
    const rel = compareToFixture({ a: [[1, 2]], t: 1e-9, n: null }, { a: [[1, 2.5]], t: 0, 'float32/a': 5, n: [1] });
    expect(rel).toEqual({ a: 0.2, t: 1e-3, n: Infinity });
    expect(compareToFixture({ t: 1e-9 }, { t: 0 }, 1e-3).t).toBeCloseTo(1e-6, 15);
  });

  it('explains a file of neither format, and a batch without one id per row', () => {
    expect(() => runLossParityFile(fixture('../parity.ts'))).toThrow(/Could not parse JSON/);
    const dir = mkdtempSync(join(tmpdir(), 'distill-parity-'));
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ inputs: { x: 1 } }));
    expect(() => runLossParityFile(bad)).toThrow(/is not a loss fixture/);
    const fx = readJsonFile<{ inputs: { ids: number[] } }>(fixture('baselines.json'));
    writeFileSync(bad, JSON.stringify({ ...fx, inputs: { ...fx.inputs, ids: fx.inputs.ids.slice(1) } }));
    expect(() => runLossParityFile(bad)).toThrow(/inputs.ids has 9 entries for a batch of 10/);
    writeFileSync(bad, JSON.stringify({ ...fx, kd_temperature: 0 }));
    expect(() => runLossParityFile(bad)).toThrow(
      /^baselines fixture: temperature and kd_temperature must be positive numbers \(got 0.07, 0\).$/,
    );
    writeFileSync(bad, JSON.stringify({ ...fx, temperature: -1 }));
    expect(() => runLossParityFile(bad)).toThrow(/\(got -1, 2\)/);
    writeFileSync(bad, JSON.stringify({ ...fx, temperature: 0 }));
    expect(() => runLossParityFile(bad)).toThrow(/\(got 0, 2\)/);
    writeFileSync(bad, JSON.stringify({ ...fx, inputs: { ...fx.inputs, ids: undefined } }));
    expect(() => runLossParityFile(bad)).toThrow(
      /^baselines fixture: inputs.ids has no entries for a batch of 10; give one group id per row.$/,
    );
    for (const x of [null, { config: {}, inputs: null }, { config: {} }, { config: 1, inputs: {} }]) {
      writeFileSync(bad, JSON.stringify(x));
      expect(() => runLossParityFile(bad)).toThrow(
        /^\S+bad.json is not a loss fixture: expected the format of shared\/parity\/dsmd_public.json \(config, inputs\) or of baselines.json/,
      );
    }
    rmSync(dir, { recursive: true, force: true });
  });
});
