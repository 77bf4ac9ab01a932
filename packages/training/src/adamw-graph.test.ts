import { describe, expect, it } from 'vitest';
import {
  findIcds,
  findLibvulkan,
  initRuntime,
  loadOrt,
  probeWebGpuSession,
  readToHost,
  Rng,
  tf,
  type NamedVariable,
  type OrtTensor,
} from '@distill/core';
import { AdamW, ArrayAdamW, type AdamWOptions, type AdamWState } from './adamw.js';
import { buildAdamWGraph, DeviceAdamW } from './adamw-graph.js';

const OPTS: AdamWOptions = {
  lr: 3e-3,
  weightDecay: 0.05,
  betas: [0.9, 0.999],
  eps: 1e-8,
  groupLr: { text: 1e-3, head: 5e-3 },
};
const PARAMS = [
  { name: 'image.w', group: 'image' as const, shape: [4, 3] },
  { name: 'text.b', group: 'text' as const, shape: [5] },
  { name: 'head.w', group: 'head' as const, shape: [2, 2, 2] },
];
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Seeded parameters and K steps of gradients (some exact zeros, some large: both ends of sqrt(v)). */
function fixture(K: number) {
  const rng = new Rng(7);
  const p0 = PARAMS.map((p) => rng.normalArray(size(p.shape), 0, 0.5));
  const grads = Array.from({ length: K }, (_, k) =>
    PARAMS.map((p) => {
      const g = rng.normalArray(size(p.shape), 0, k % 2 ? 10 : 0.01);
      g[0] = 0;
      return g;
    }),
  );
  return { p0, grads };
}

/** K host-side steps (ArrayAdamW, float64 per element), with lrScale changing mid-way as a schedule would. */
function hostRun(K: number) {
  const { p0, grads } = fixture(K);
  const params = PARAMS.map((p, i) => ({ ...p, data: Float32Array.from(p0[i]) }));
  const opt = new ArrayAdamW(params, OPTS);
  for (let k = 0; k < K; k++) {
    opt.lrScale = k < 3 ? 1 : 0.1;
    opt.apply(grads[k]);
  }
  return {
    p: params.map((p) => p.data),
    m: PARAMS.map((p) => opt.state().m[p.name]),
    v: PARAMS.map((p) => opt.state().v[p.name]),
  };
}

/** The same K steps with DeviceAdamW on `ep`, resumed from a flushed state() after `resumeAt` steps when given. */
async function deviceRun(K: number, ep: string, resumeAt?: number) {
  const ort = await loadOrt();
  const { p0, grads } = fixture(K);
  const t = (a: Float32Array, shape: number[]) => new ort.Tensor('float32', Float32Array.from(a), shape);
  let opt = new DeviceAdamW(PARAMS, OPTS, [ep]);
  let params: OrtTensor[] = PARAMS.map((p, i) => t(p0[i], p.shape));
  for (let k = 0; k < K; k++) {
    if (k === resumeAt) {
      await opt.flush();
      const saved = opt.state();
      const host = await readToHost(params, [ep]);
      await opt.release();
      opt = new DeviceAdamW(PARAMS, OPTS, [ep]);
      opt.load({ ...saved, m: { ...saved.m }, v: { ...saved.v } });
      params = PARAMS.map((p, i) => t(host[i], p.shape));
    }
    opt.lrScale = k < 3 ? 1 : 0.1;
    params = await opt.apply(
      params,
      PARAMS.map((p, i) => t(grads[k][i], p.shape)),
    );
  }
  expect(() => opt.state()).toThrow(/flush\(\) first/);
  await opt.flush();
  const s = opt.state();
  const p = await readToHost(params, [ep]);
  await opt.release();
  return { p, m: PARAMS.map((q) => s.m[q.name]), v: PARAMS.map((q) => s.v[q.name]), step: s.step };
}

/** Largest difference relative to the largest magnitude, over all arrays. */
function rel(a: Float32Array[], b: Float32Array[]): number {
  let d = 0;
  let s = 0;
  a.forEach((x, i) =>
    x.forEach((v, j) => ((d = Math.max(d, Math.abs(v - b[i][j]))), (s = Math.max(s, Math.abs(b[i][j]))))),
  );
  return d / s;
}
const bits = (xs: Float32Array[]) => xs.map((x) => Array.from(new Uint32Array(x.buffer, x.byteOffset, x.length)));

const K = 6;
const hasVulkan = !!findLibvulkan() && findIcds().icds.length > 0;
const probe = hasVulkan ? await probeWebGpuSession() : undefined;

describe('AdamW as an ONNX graph (DeviceAdamW)', () => {
  it('declares one lr pair per group in use, one bias-correction scalar and three outputs per parameter', () => {
    const g = buildAdamWGraph(PARAMS.slice(0, 2), OPTS);
    expect(g.inputs).toEqual([
      'decay_image',
      'decay_text',
      'step_image',
      'step_text',
      'bc2',
      'p0',
      'g0',
      'm0',
      'v0',
      'p1',
      'g1',
      'm1',
      'v1',
    ]);
    expect(g.outputs).toEqual(['p0_out', 'm0_out', 'v0_out', 'p1_out', 'm1_out', 'v1_out']);
  });

  it(`gives ArrayAdamW's parameters and moments after ${K} steps (per-group lr, weight decay, bias correction, lrScale), to float32 rounding`, async () => {
    const host = hostRun(K);
    const dev = await deviceRun(K, 'cpu');
    expect(dev.step).toBe(K);
    expect(rel(dev.p, host.p)).toBeLessThan(1e-6);
    expect(rel(dev.m, host.m)).toBeLessThan(1e-6);
    expect(rel(dev.v, host.v)).toBeLessThan(1e-6);
    // and it really moved: a wrong lr or sign would be far off
    expect(rel(dev.p, fixture(K).p0)).toBeGreaterThan(1e-3);
  });

  it('flush + state + load mid-way continues bit-identically', async () => {
    const straight = await deviceRun(K, 'cpu');
    const resumed = await deviceRun(K, 'cpu', 2);
    expect(bits(resumed.p)).toEqual(bits(straight.p));
    expect(bits(resumed.m)).toEqual(bits(straight.m));
    expect(bits(resumed.v)).toEqual(bits(straight.v));
  });

  it('refuses a state whose moments do not match the parameters', () => {
    const opt = new DeviceAdamW(PARAMS, OPTS, ['cpu']);
    const m = { 'image.w': new Float32Array(12), 'text.b': new Float32Array(4), 'head.w': new Float32Array(8) };
    expect(() => opt.load({ step: 1, lrScale: 1, m, v: m })).toThrow(/'m' of text.b has 4 values, the parameter 5/);
  });

  it(`the three holders (tfjs AdamW, ArrayAdamW, DeviceAdamW) give the same weights after ${K} steps and refuse a mismatched state with the same error`, async () => {
    await initRuntime('cpu', { quiet: true });
    const { p0, grads } = fixture(K);
    const vars: NamedVariable[] = PARAMS.map((p, i) => ({
      name: p.name,
      group: p.group,
      variable: tf.variable(tf.tensor(p0[i], p.shape)),
    }));
    const t = new AdamW(vars, OPTS);
    for (let k = 0; k < K; k++) {
      t.lrScale = k < 3 ? 1 : 0.1;
      t.apply(Object.fromEntries(PARAMS.map((p, i) => [p.name, tf.tensor(grads[k][i], p.shape)])));
    }
    const tfjs = vars.map((v) => v.variable.dataSync() as Float32Array);
    const host = hostRun(K);
    const dev = await deviceRun(K, 'cpu');
    expect(rel(tfjs, host.p)).toBeLessThan(1e-6);
    expect(rel(dev.p, host.p)).toBeLessThan(1e-6);
    expect(rel(tfjs, fixture(K).p0)).toBeGreaterThan(1e-3);
    expect(t.step).toBe(K);
    // one bookkeeping base: the same checks and messages for a checkpoint that does not match
    const bad: AdamWState = {
      step: 1,
      lrScale: 1,
      m: { 'image.w': new Float32Array(12), 'text.b': new Float32Array(4), 'head.w': new Float32Array(8) },
      v: {},
    };
    const array = new ArrayAdamW(
      PARAMS.map((p) => ({ ...p, data: new Float32Array(size(p.shape)) })),
      OPTS,
    );
    const device = new DeviceAdamW(PARAMS, OPTS, ['cpu']);
    const errors = [t, array, device].map((o) => {
      try {
        o.load(bad);
        return 'loaded';
      } catch (e) {
        return (e as Error).message;
      }
    });
    expect(errors[0]).toMatch(/'m' of text.b has 4 values, the parameter 5/);
    expect(new Set(errors).size).toBe(1);
    t.dispose();
    vars.forEach((v) => v.variable.dispose());
  });

  it.skipIf(!probe?.ok)(
    `on WebGPU, state resident between steps: ArrayAdamW's result, and bit-identical across a resume${probe?.ok ? '' : ' (skipped: no WebGPU session)'}`,
    async () => {
      const host = hostRun(K);
      const dev = await deviceRun(K, 'webgpu');
      expect(rel(dev.p, host.p)).toBeLessThan(1e-6);
      expect(rel(dev.m, host.m)).toBeLessThan(1e-6);
      expect(rel(dev.v, host.v)).toBeLessThan(1e-6);
      const resumed = await deviceRun(K, 'webgpu', 3);
      expect(bits(resumed.p)).toEqual(bits(dev.p));
      expect(bits(resumed.v)).toEqual(bits(dev.v));
    },
  );
});
