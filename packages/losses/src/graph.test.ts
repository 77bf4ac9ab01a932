import { beforeAll, describe, expect, it } from 'vitest';
import { Graph, initRuntime, OnnxRunner, Rng, tf, type Sym } from '@distill/core';
import { l2n } from './dsmd.js';
import { groupTargetArray } from './graph.js';
import { groupTargets } from './baselines.js';
import { resolveLossMethod } from './methods.js';

/**
 * The graph form of each loss method (run by onnxruntime) against its tfjs form: the same component
 * values, and the same gradients of the balanced loss sum_c w_c L_c w.r.t. both student embeddings.
 */
const B = 8, D = 16, K = 32;
const unit = (seed: number, n: number) => l2n(tf.tensor2d(new Rng(seed).normalArray(n * D), [n, D])).dataSync() as Float32Array;

async function compare(spec: string, data: Record<string, Float32Array>, ids?: number[], tol = 2e-5): Promise<string[]> {
  const method = resolveLossMethod(spec, { temperature: 0.05 });
  expect(method.graph, `${spec} has a graph form`).toBeDefined();
  const shapes: Record<string, number[]> = {
    si: [B, D], st: [B, D], ti: [B, D], tt: [B, D], qi: [K, D], qt: [K, D], targets: [B, B],
  };
  data = { ...data, targets: groupTargetArray(ids, B) };
  const g = new Graph();
  const x: Record<string, Sym> = Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, g.input(k, s, { requiresGrad: k === 'si' || k === 'st' })]));
  const comps = method.graph!({
    studentImage: x.si, studentText: x.st, teacherImage: x.ti, teacherText: x.tt, imageQueue: x.qi, textQueue: x.qt, targets: x.targets,
  });
  const names = Object.keys(comps);
  expect(names).toEqual(method.components);
  const weights = names.map((_, i) => 0.5 + i * 0.7);
  const grads = g.gradients(names.map((n) => comps[n]), weights.map((w) => g.scalar(w)), [x.si, x.st]);
  const outNames = [...names.map((n) => `c_${n}`), 'g_si', 'g_st'];
  const runner = await OnnxRunner.create(g.encode([...names.map((n) => comps[n]), ...grads], outNames), { threads: 1 });
  const feeds = Object.fromEntries(
    Object.entries(shapes).filter(([k]) => g.inputs.some((s) => s.name === k)).map(([k, s]) => [k, { data: data[k], dims: s }]),
  );
  const out = await runner.run(feeds, outNames);
  await runner.release();

  const t = (k: string) => tf.tensor2d(data[k], shapes[k] as [number, number]);
  const [si, st] = [t('si'), t('st')];
  const inputs = (a: tf.Tensor, b: tf.Tensor) => ({
    studentImage: a as tf.Tensor2D, studentText: b as tf.Tensor2D, teacherImage: t('ti'), teacherText: t('tt'),
    imageQueue: t('qi'), textQueue: t('qt'), imageIds: ids && Int32Array.from(ids),
  });
  const ref = method.loss(inputs(si, st));
  expect(Object.keys(ref)).toEqual(names);
  names.forEach((n, i) => {
    const want = ref[n].dataSync()[0];
    expect(Math.abs(out[i][0] - want) / Math.max(1e-3, Math.abs(want)), `${spec} ${n}`).toBeLessThan(tol);
  });
  const gRef = tf.grads((a: tf.Tensor, b: tf.Tensor) => {
    const c = method.loss(inputs(a, b));
    return names.map((n, i) => c[n].mul(weights[i])).reduce((p, q) => p.add(q)) as tf.Scalar;
  })([si, st]);
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

describe('graph losses (onnx engine) equal the tfjs losses', () => {
  beforeAll(async () => {
    await initRuntime('cpu', { quiet: true });
  });
  const random = () => ({ si: unit(1, B), st: unit(2, B), ti: unit(3, B), tt: unit(4, B), qi: unit(5, K), qt: unit(6, K) });

  it('dsmd-official and dsmd (paper mode): all four components, values and gradients', async () => {
    expect(await compare('dsmd-official', random())).toEqual(['l1_loss', 'cos_loss', 'con_loss', 'hnd_loss']);
    expect(await compare('dsmd', random())).toEqual(['l1_loss', 'cos_loss', 'con_loss', 'hnd_loss']);
  });

  it('component lists (ablations) keep their order', async () => {
    expect(await compare('fd,sd', random())).toEqual(['l1_loss', 'cos_loss']);
    expect(await compare('cd', random())).toEqual(['con_loss']);
    expect(await compare('hnd', random())).toEqual(['hnd_loss']);
  });

  it('contrastive distillation stays exact when the positive dominates (loss ~ 1e-3 and below)', async () => {
    // Student = teacher: every negative logit sits far below the positive one.
    const d = random();
    d.si = d.ti.slice();
    d.st = d.tt.slice();
    await compare('cd', d, undefined, 1e-4);
  });

  it("'none' (no-teacher CLIP loss) with same-image captions as shared positives", async () => {
    const ids = [0, 0, 1, 2, 2, 2, 3, 4];
    expect(await compare('none', random(), ids)).toEqual(['contrastive']);
    expect(Array.from(groupTargetArray(ids, B))).toEqual(Array.from(groupTargets(ids, B).dataSync()));
  });

  it('methods without a graph form say so by leaving it out', () => {
    for (const spec of ['dcd', 'kd', 'clip-kd']) expect(resolveLossMethod(spec, { temperature: 0.05 }).graph).toBeUndefined();
  });
});
