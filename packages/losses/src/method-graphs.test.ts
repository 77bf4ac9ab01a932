import { beforeAll, describe, expect, it } from 'vitest';
import { initRuntime, OnnxRunner, Rng, tf } from '@distill/core';
import { Graph } from '@distill/autodiff';
import { l2n } from './common.js';
import { METHOD_NAMES, resolveLossMethod, type HostLossInputs } from './methods.js';

/**
 * Every method's graph form (what the onnx engine trains: `graph` in the student's graph + `feeds`
 * each step, run by onnxruntime at 2 threads) against its tfjs form (`loss`): the same components,
 * and the same gradients of the balanced loss sum_c w_c L_c w.r.t. both student embeddings.
 */
const B = 12,
  D = 16,
  K = 32;
const unit = (seed: number, n: number) =>
  l2n(tf.tensor2d(new Rng(seed).normalArray(n * D), [n, D])).dataSync() as Float32Array;

async function compare(
  spec: string,
  data: Record<string, Float32Array>,
  ids?: number[],
  tol = 2e-5,
): Promise<string[]> {
  const method = resolveLossMethod(spec, { temperature: 0.05 });
  const g = new Graph();
  const si = g.input('si', [B, D], { requiresGrad: true });
  const st = g.input('st', [B, D], { requiresGrad: true });
  const comps = method.graph(g, { image: si, text: st }, { batch: B, dim: D, queueSize: K });
  const names = Object.keys(comps);
  expect(names).toEqual(method.components);
  const weights = names.map((_, i) => 0.5 + i * 0.7);
  const grads = g.gradients(
    names.map((n) => comps[n]),
    weights.map((w) => g.scalar(w)),
    [si, st],
  );
  const outNames = [...names.map((n) => `c_${n}`), 'g_si', 'g_st'];
  const runner = await OnnxRunner.create(g.encode([...names.map((n) => comps[n]), ...grads], outNames), { threads: 2 });
  const host: HostLossInputs = {
    batch: B,
    dim: D,
    teacherImage: data.ti,
    teacherText: data.tt,
    imageQueue: data.qi,
    textQueue: data.qt,
    imageIds: ids,
  };
  const feeds = method.feeds(host);
  // The method's own inputs: values as declared (names, shapes, dtypes).
  const declared = method.extraInputs({ batch: B, dim: D, queueSize: K }).map((s) => [s.name, s.shape, s.dtype]);
  expect(Object.entries(method.extraValues(host)).map(([k, v]) => [k, v.dims, v.dtype])).toEqual(declared);
  // The graph declares exactly the inputs the method feeds (besides the student's).
  expect(
    g.inputs
      .map((x) => x.name)
      .filter((n) => n !== 'si' && n !== 'st')
      .sort(),
  ).toEqual(Object.keys(feeds).sort());
  const out = await runner.run(
    { ...feeds, si: { data: data.si, dims: [B, D] }, st: { data: data.st, dims: [B, D] } },
    outNames,
  );
  await runner.release();

  const t = (k: string, n = B) => tf.tensor2d(data[k], [n, D]);
  const inputs = (a: tf.Tensor, b: tf.Tensor) => ({
    studentImage: a as tf.Tensor2D,
    studentText: b as tf.Tensor2D,
    teacherImage: t('ti'),
    teacherText: t('tt'),
    imageQueue: t('qi', K),
    textQueue: t('qt', K),
    imageIds: ids && Int32Array.from(ids),
  });
  const [a, b] = [t('si'), t('st')];
  const ref = method.loss(inputs(a, b));
  expect(Object.keys(ref)).toEqual(names);
  names.forEach((n, i) => {
    const want = ref[n].dataSync()[0];
    expect(Math.abs(out[i][0] - want) / Math.max(1e-3, Math.abs(want)), `${spec} ${n}`).toBeLessThan(tol);
  });
  const gRef = tf.grads((x: tf.Tensor, y: tf.Tensor) => {
    const c = method.loss(inputs(x, y));
    return names.map((n, i) => c[n].mul(weights[i])).reduce((p, q) => p.add(q)) as tf.Scalar;
  })([a, b]);
  gRef.forEach((gr, j) => {
    const want = gr.dataSync();
    const got = out[names.length + j];
    const scale = Math.max(1e-3, ...Array.from(want, Math.abs));
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / scale);
    expect(worst, `${spec} gradient w.r.t. the student ${j ? 'text' : 'image'}`).toBeLessThan(tol);
  });
  return names;
}

describe('every method has a graph form that equals its tfjs form', () => {
  beforeAll(async () => {
    await initRuntime('cpu', { quiet: true });
  });
  const random = () => ({
    si: unit(1, B),
    st: unit(2, B),
    ti: unit(3, B),
    tt: unit(4, B),
    qi: unit(5, K),
    qt: unit(6, K),
  });
  const IDS = [0, 0, 1, 2, 2, 2, 3, 4, 5, 6, 6, 7];

  it('dsmd-official and dsmd (paper mode): all four components, values and gradients', async () => {
    expect(await compare('dsmd-official', random())).toEqual(['l1_loss', 'cos_loss', 'con_loss', 'hnd_loss']);
    expect(await compare('dsmd', random())).toEqual(['l1_loss', 'cos_loss', 'con_loss', 'hnd_loss']);
  });

  it('component lists (ablations) keep their order', async () => {
    expect(await compare('fd,sd', random())).toEqual(['l1_loss', 'cos_loss']);
    expect(await compare('hnd,cd', random())).toEqual(['con_loss', 'hnd_loss']);
  });

  it('contrastive distillation stays exact when the positive dominates (loss ~ 1e-3 and below)', async () => {
    const d = random();
    d.si = d.ti.slice();
    d.st = d.tt.slice();
    await compare('cd', d, undefined, 1e-4);
  });

  for (const name of ['dcd', 'kd', 'fitnet', 'rkd', 'clip-kd', 'none'] as const) {
    it(`${name}: with same-image captions as shared positives`, async () => {
      // kd at tau 0.05: the logits are 20x the similarities and the KL is a difference of terms ~8x its size;
      // against float64 the tfjs engine is 4e-6 off, onnxruntime 2.7e-5 (2e-7 / 3e-7 at tau 4).
      expect(await compare(name, random(), IDS, name === 'kd' ? 5e-5 : 2e-5)).toEqual([
        name === 'none' ? 'contrastive' : name,
      ]);
    });
  }

  it('covers every named method', () => {
    expect([...METHOD_NAMES].sort()).toEqual([
      'clip-kd',
      'dcd',
      'dsmd',
      'dsmd-official',
      'fitnet',
      'kd',
      'none',
      'rkd',
    ]);
  });

  it('DCD feeds its teacher selection as int64 indices, changing with the teacher features', () => {
    const m = resolveLossMethod('dcd', { temperature: 0.05 });
    expect(m.extraInputs({ batch: B, dim: D }).map((s) => `${s.name}:${s.dtype}[${s.shape}]`)).toEqual([
      `dcd_i2t_index:int64[${B * 8}]`,
      `dcd_i2t_teacher:float32[${B},8]`,
      `dcd_i2t_share:float32[${B}]`,
      'dcd_i2t_rsum:float32[]',
      `dcd_t2i_index:int64[${B * 8}]`,
      `dcd_t2i_teacher:float32[${B},8]`,
      `dcd_t2i_share:float32[${B}]`,
      'dcd_t2i_rsum:float32[]',
    ]);
    const d = random();
    const a = m.feeds({ batch: B, dim: D, teacherImage: d.ti, teacherText: d.tt });
    const b = m.feeds({ batch: B, dim: D, teacherImage: d.tt, teacherText: d.ti });
    expect(a.dcd_i2t_index.data).toBeInstanceOf(BigInt64Array);
    // Each row's first candidate is its own positive (column i of row i: flat index i * B + i).
    expect(
      Array.from(a.dcd_i2t_index.data as BigInt64Array)
        .filter((_, k) => k % 8 === 0)
        .map(Number),
    ).toEqual(Array.from({ length: B }, (_, i) => i * B + i));
    expect(Array.from(a.dcd_i2t_index.data as BigInt64Array)).not.toEqual(
      Array.from(b.dcd_i2t_index.data as BigInt64Array),
    );
    expect(() =>
      m.feeds({ batch: 4, dim: D, teacherImage: d.ti.subarray(0, 4 * D), teacherText: d.tt.subarray(0, 4 * D) }),
    ).toThrow(/^DCD: batch 4 gives fewer than topK=8 candidates per row.$/);
  });
});
