import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initRuntime, readJsonFile, repoRoot, tf } from '@distill/core';
import { DsmdOfficialBalancer } from '@distill/balancer';
import {
  compareToFixture,
  runLossParity,
  runLossParityFile,
  runLossParityOnnx,
  type LossFixture,
  type ParityBalancerFactory,
} from '@distill/losses';

// The official DSMD fixture replays losses and the dsmd-official balancer together: this test composes the
// two packages, so it lives here (training depends on both) and @distill/losses does not depend on balancer.

/** The replay's balancer, handed in as the CLI does. */
const official: ParityBalancerFactory = (c) => new DsmdOfficialBalancer(c);

/** In-repo copy of shared/parity/dsmd_public.json (the test runs on any clone), @distill/losses' fixture. */
const file = join(repoRoot(), 'packages/losses/src/fixtures/parity/dsmd_public.json');

describe('parity with the official DSMD / DCD fixture (fixtures/parity/dsmd_public.json)', () => {
  // Each test runs the fixture itself (not in a hook), so mutation testing can tell which test covers what.
  beforeAll(async () => {
    await initRuntime('cpu', { quiet: true });
  });

  it('produces every output key of the fixture (and frees every tensor it made)', () => {
    const before = tf.memory().numTensors;
    const got = runLossParityFile(file, official);
    expect(tf.memory().numTensors).toBe(before);
    const expected = Object.keys(readJsonFile<{ outputs: Record<string, unknown> }>(file).outputs).filter(
      (k) => !k.startsWith('float32/'),
    );
    expect(Object.keys(got).sort()).toEqual(expected.sort());
    // Matrices come back as rows: [B][D] features, [K][D] queues.
    const fx = readJsonFile<LossFixture>(file);
    expect((got['step1/stu_img_norm'] as number[][]).map((r) => r.length)).toEqual(
      Array(fx.config.batch_size).fill(fx.config.dim),
    );
    expect((got['step1/i_queue_after'] as number[][]).length).toBe(fx.config.queue_size_K);
  });

  it('matches every loss, balancer, queue and DCD output at 1e-5 relative', () => {
    const diffs = compareToFixture(
      runLossParityFile(file, official),
      readJsonFile<{ outputs: Record<string, unknown> }>(file).outputs,
    );
    const bad = Object.entries(diffs).filter(([k, v]) => !k.endsWith('_per_sample') && !(v <= 1e-5));
    expect(bad).toEqual([]);
  });

  it('runs the blocks a fixture has (one step, no balancer or DCD inputs), frees its tensors, honours the config', () => {
    const fx = readJsonFile<LossFixture>(file);
    const inputs = Object.fromEntries(
      Object.entries(fx.inputs).filter(
        ([k]) => !k.endsWith('step2') && !k.startsWith('balancer') && !k.startsWith('dcd'),
      ),
    );
    const before = tf.memory().numTensors;
    const got = runLossParity({ ...fx, inputs }, official);
    expect(tf.memory().numTensors).toBe(before);
    const prefixes = [...new Set(Object.keys(got).map((k) => k.split('/')[0]))];
    expect(prefixes).toEqual(['step1']);
    // The e2e balancer weighs the hinge at main_margin_for_e2e, whatever the order of the margins.
    const want = readJsonFile<{ outputs: Record<string, number> }>(file).outputs['step1/e2e_total_loss'];
    const reordered = runLossParity(
      { ...fx, inputs, config: { ...fx.config, margins: [...fx.config.margins].reverse() } },
      official,
    );
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
    for (const k of keys.filter((k) => k.endsWith('_per_sample')))
      fx.outputs[k].forEach((v, i) =>
        expect(Math.abs(v - (got[k] as number[])[i]), k).toBeLessThan(1e-6 * Math.max(1, Math.abs(v))),
      );
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
