import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { initRuntime, readJsonFile, tf } from '@distill/core';
import { DsmdOfficialBalancer } from '@distill/balancer';
import { compareToFixture, formatParityReport, isBaselineFixture, runLossParity, runLossParityFile, runLossParityOnnx, type LossFixture, type ParityBalancerFactory } from './parity.js';

/** The replay's balancer, handed in as the CLI does (losses do not depend on @distill/balancer). */
const official: ParityBalancerFactory = (c) => new DsmdOfficialBalancer(c);

/** In-repo copy of shared/parity/dsmd_public.json (the test runs on any clone). */
const file = fileURLToPath(new URL('./fixtures/parity/dsmd_public.json', import.meta.url));

describe('parity with the official DSMD / DCD fixture (fixtures/parity/dsmd_public.json)', () => {
  // Each test runs the fixture itself (not in a hook), so mutation testing can tell which test covers what.
  beforeAll(async () => {
    await initRuntime('cpu', { quiet: true });
  });

  it('produces every output key of the fixture (and frees every tensor it made)', () => {
    const before = tf.memory().numTensors;
    const got = runLossParityFile(file, official);
    expect(tf.memory().numTensors).toBe(before);
    const expected = Object.keys(readJsonFile<{ outputs: Record<string, unknown> }>(file).outputs).filter((k) => !k.startsWith('float32/'));
    expect(Object.keys(got).sort()).toEqual(expected.sort());
    // Matrices come back as rows: [B][D] features, [K][D] queues.
    const fx = readJsonFile<LossFixture>(file);
    expect((got['step1/stu_img_norm'] as number[][]).map((r) => r.length)).toEqual(Array(fx.config.batch_size).fill(fx.config.dim));
    expect((got['step1/i_queue_after'] as number[][]).length).toBe(fx.config.queue_size_K);
  });

  it('matches every loss, balancer, queue and DCD output at 1e-5 relative', () => {
    const diffs = compareToFixture(runLossParityFile(file, official), readJsonFile<{ outputs: Record<string, unknown> }>(file).outputs);
    const bad = Object.entries(diffs).filter(([k, v]) => !k.endsWith('_per_sample') && !(v <= 1e-5));
    expect(bad).toEqual([]);
  });

  it('runs the blocks a fixture has (one step, no balancer or DCD inputs), frees its tensors, honours the config', () => {
    const fx = readJsonFile<LossFixture>(file);
    const inputs = Object.fromEntries(Object.entries(fx.inputs).filter(([k]) => !k.endsWith('step2') && !k.startsWith('balancer') && !k.startsWith('dcd')));
    const before = tf.memory().numTensors;
    const got = runLossParity({ ...fx, inputs }, official);
    expect(tf.memory().numTensors).toBe(before);
    const prefixes = [...new Set(Object.keys(got).map((k) => k.split('/')[0]))];
    expect(prefixes).toEqual(['step1']);
    // The e2e balancer weighs the hinge at main_margin_for_e2e, whatever the order of the margins.
    const want = readJsonFile<{ outputs: Record<string, number> }>(file).outputs['step1/e2e_total_loss'];
    const reordered = runLossParity({ ...fx, inputs, config: { ...fx.config, margins: [...fx.config.margins].reverse() } }, official);
    expect(reordered['step1/e2e_total_loss']).toBeCloseTo(want, 5);
    // normalize_eps reaches l2n: rows shorter than eps are divided by eps instead of their norm.
    const big = runLossParity({ ...fx, inputs, config: { ...fx.config, normalize_eps: 1e6 } }, official);
    const row = (big['step1/stu_img_norm'] as number[][])[0];
    const raw = (fx.inputs.stu_img_raw_step1 as number[][])[0];
    expect(row.map((v, i) => v * 1e6 - raw[i])).toEqual(raw.map(() => expect.closeTo(0, 4)));
  });

  it('on the onnx engine (the same definitions as onnx graphs in onnxruntime): every key, the same figures', async () => {
    const fx = readJsonFile<LossFixture & { outputs: Record<string, number[]> }>(file);
    const got = await runLossParityOnnx(fx, official);
    const keys = Object.keys(fx.outputs).filter((k) => !k.startsWith('float32/'));
    expect(Object.keys(got).sort()).toEqual(keys.sort());
    const diffs = compareToFixture(got, fx.outputs);
    expect(Object.entries(diffs).filter(([k, v]) => !k.endsWith('_per_sample') && !(v <= 1e-5))).toEqual([]);
    // Per sample: 1e-6 absolute for the values below 1 (down to 1e-3), 1e-6 relative above (values up to 10: 4 ulp).
    for (const k of keys.filter((k) => k.endsWith('_per_sample'))) fx.outputs[k].forEach((v, i) => expect(Math.abs(v - (got[k] as number[])[i]), k).toBeLessThan(1e-6 * Math.max(1, Math.abs(v))));
    // The engines agree with each other more closely than either with the fixture.
    const tfjs = runLossParity(fx, official);
    expect(compareToFixture(got, tfjs as Record<string, unknown>)['step2/con_loss']).toBeLessThan(1e-5);
  });

  it('matches the per-sample InfoNCE intermediates to 1e-6 absolute (float32 limit for values ~1e-3)', () => {
    const got = runLossParityFile(file, official);
    const expected = readJsonFile<{ outputs: Record<string, number[]> }>(file).outputs;
    for (const k of Object.keys(expected).filter((k) => k.endsWith('_per_sample') && !k.startsWith('float32/'))) {
      const g = got[k] as number[];
      expected[k].forEach((v, i) => expect(Math.abs(v - g[i])).toBeLessThan(1e-6));
    }
  });
});

// Float64 PyTorch references of the baseline losses (spec/baseline-losses.md): the shared fixture
// (seed 0, B 10, D 12, ids with repeats) and one from tools/parity/baseline_losses.py (seed 7, B 13,
// D 20, groups of 3/2/1, tau 0.1, kd tau 4), both written without distill's code. Copies in fixtures/.
const fixture = (f: string) => fileURLToPath(new URL(`./fixtures/${f}`, import.meta.url));
const BASELINE_FIXTURES = ['baselines.json', 'baselines-seed7.json'];
const BASELINE_KEYS = ['info_nce_image_text', 'contrastive', 'kd', 'fitnet', 'rkd_distance_image', 'rkd_angle_image', 'rkd', 'clip_kd'];

describe('parity with the float64 PyTorch baseline losses', () => {
  beforeAll(async () => {
    await initRuntime('cpu', { quiet: true });
  });

  for (const f of BASELINE_FIXTURES) {
    it(`${f}: every key (contrastive, kd, fitnet, rkd, clip-kd) within 1e-5 relative`, () => {
      const fx = readJsonFile<{ outputs: Record<string, number> }>(fixture(f));
      expect(Object.keys(fx.outputs).sort()).toEqual([...BASELINE_KEYS].sort());
      const got = runLossParityFile(fixture(f), official);
      expect(Object.keys(got).sort()).toEqual([...BASELINE_KEYS].sort());
      const rel = compareToFixture(got, fx.outputs);
      for (const k of BASELINE_KEYS) expect(rel[k], k).toBeLessThanOrEqual(1e-5);
    });
  }

  it('the two fixtures differ (other seeds, sizes and temperatures)', () => {
    const [a, b] = BASELINE_FIXTURES.map((f) => readJsonFile<{ batch: number; dim: number; seed: number; kd_temperature: number }>(fixture(f)));
    expect([a.seed, a.batch, a.dim]).not.toEqual([b.seed, b.batch, b.dim]);
    expect(a.kd_temperature).not.toBe(b.kd_temperature);
  });

  it('a wrong reference value shows as a relative difference, worst last', () => {
    const fx = readJsonFile<{ outputs: Record<string, number> }>(fixture('baselines.json'));
    const got = runLossParityFile(fixture('baselines.json'), official);
    const rel = compareToFixture(got, { ...fx.outputs, kd: fx.outputs.kd * 1.01 });
    expect(rel.kd).toBeCloseTo(0.01 / 1.01, 4);
    const { lines, worst } = formatParityReport(got, rel);
    expect(worst).toBe(rel.kd);
    expect(lines).toHaveLength(BASELINE_KEYS.length + 1);
    expect(lines.at(-2)).toMatch(/^kd 0\.08267\d+ rel=9\.90e-3$/);
    expect(lines.at(-1)).toBe('worst_rel=9.90e-3');
    // A missing output or a NaN is the worst possible.
    expect(compareToFixture({}, { kd: 1 }).kd).toBe(Infinity);
    expect(formatParityReport({ kd: Number.NaN }, compareToFixture({ kd: Number.NaN }, { kd: 1 })).lines.at(-1)).toBe('worst_rel=Infinity');
  });

  it('tells the two fixture formats apart', () => {
    expect(isBaselineFixture(readJsonFile(fixture('baselines.json')))).toBe(true);
    expect(isBaselineFixture(readJsonFile(file))).toBe(false);
    for (const x of [null, 42, 'x', {}, { inputs: {} }, { inputs: { s_image: 1 } }]) expect(isBaselineFixture(x)).toBe(false);
  });

  it('the report shows arrays as a count, null and missing values; equal differences sort by key', () => {
    const { lines, worst } = formatParityReport({ a: [[1, 2], [3]], b: null, z: 1 }, { z: 0, b: 0.5, c: 0.5, a: 0 });
    expect(lines).toEqual(['a [3 values] rel=0.00e+0', 'z 1 rel=0.00e+0', 'b null rel=5.00e-1', 'c missing rel=5.00e-1', 'worst_rel=5.00e-1']);
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
    expect(() => runLossParityFile(bad)).toThrow(/^baselines fixture: temperature and kd_temperature must be positive numbers \(got 0.07, 0\).$/);
    writeFileSync(bad, JSON.stringify({ ...fx, temperature: -1 }));
    expect(() => runLossParityFile(bad)).toThrow(/\(got -1, 2\)/);
    writeFileSync(bad, JSON.stringify({ ...fx, temperature: 0 }));
    expect(() => runLossParityFile(bad)).toThrow(/\(got 0, 2\)/);
    writeFileSync(bad, JSON.stringify({ ...fx, inputs: { ...fx.inputs, ids: undefined } }));
    expect(() => runLossParityFile(bad)).toThrow(/^baselines fixture: inputs.ids has no entries for a batch of 10; give one group id per row.$/);
    for (const x of [null, { config: {}, inputs: null }, { config: {} }, { config: 1, inputs: {} }]) {
      writeFileSync(bad, JSON.stringify(x));
      expect(() => runLossParityFile(bad)).toThrow(/^\S+bad.json is not a loss fixture: expected the format of shared\/parity\/dsmd_public.json \(config, inputs\) or of baselines.json/);
    }
    rmSync(dir, { recursive: true, force: true });
  });
});
