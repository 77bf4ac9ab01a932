import { beforeAll, describe, expect, it } from 'vitest';
import { graphOps, initRuntime, OnnxRunner, Rng, tf, tfOps, type Ops } from '@distill/core';
import { onGraph, onTfjs, type In, type LossFn } from './engine-harness.test-util.js';
import {
  clipKdLossOps,
  contrastiveLossOps,
  fitnetLossOps,
  groupTargetArray,
  infoNceOps,
  kdLossOps,
  rkdAngleOps,
  rkdDistanceOps,
  rkdLossOps,
} from './baselines.js';
import { l2nOps, logSoftmaxRows } from './common.js';
import {
  dcdDualEncoderOps,
  dcdDualPlans,
  dcdLossOps,
  dcdPlan,
  dcdPlanTensors,
  DCD_DEFAULTS,
  type DcdPlan,
} from './dcd.js';
import {
  contrastiveDistillOps,
  featureDistillOps,
  hardNegativeDistillOps,
  hingePairOps,
  similarityDistillOps,
} from './dsmd.js';

/**
 * Every loss is one definition over Ops<T>: here each runs on the tfjs engine (tfOps, tfjs autodiff) and
 * as an onnx graph (graphOps, distill's autodiff, run by onnxruntime at 2 threads), and both give the
 * same value and the same gradients w.r.t. every differentiable input.
 */
const B = 8,
  D = 16,
  K = 32;
const normal = (seed: number, n: number) => new Rng(seed).normalArray(n);
/** n unit rows of dim D (seeded), row-major. */
const unit = (seed: number, n: number, d = D) => {
  const x = normal(seed, n * d);
  for (let i = 0; i < n; i++) {
    const r = Math.hypot(...x.subarray(i * d, (i + 1) * d));
    for (let j = 0; j < d; j++) x[i * d + j] /= r;
  }
  return x;
};

/** Worst difference of value (relative) and gradients (relative to the largest entry) between the engines. */
async function engineGap(
  f: LossFn,
  inputs: Record<string, In>,
): Promise<{ value: number; grad: number; tfjs: number; gradScale: number }> {
  const a = onTfjs(f, inputs);
  const b = await onGraph(f, inputs);
  let grad = 0;
  let gradScale = 0;
  a.grads.forEach((ga, j) => {
    const scale = Math.max(1e-3, ...Array.from(ga, Math.abs));
    gradScale = Math.max(gradScale, scale);
    for (let i = 0; i < ga.length; i++) grad = Math.max(grad, Math.abs(ga[i] - b.grads[j][i]) / scale);
  });
  expect(a.grads).toHaveLength(b.grads.length);
  return { value: Math.abs(a.value - b.value) / Math.max(1e-3, Math.abs(a.value)), grad, tfjs: a.value, gradScale };
}

const f32 = (data: Float32Array, shape: number[], grad = false): In => ({ data, shape, grad });
const pairs = (seed = 1) => ({
  si: f32(unit(seed, B), [B, D], true),
  st: f32(unit(seed + 1, B), [B, D], true),
  ti: f32(unit(seed + 2, B), [B, D]),
  tt: f32(unit(seed + 3, B), [B, D]),
});
/** Only the student image is differentiated (single-tower losses). */
const images = () => ({ ...pairs(), st: f32(unit(2, B), [B, D]) });
const targets = (ids?: number[]) => f32(groupTargetArray(ids, B), [B, B]);
const IDS = [0, 0, 1, 2, 2, 2, 3, 4];

const cases: [string, LossFn, Record<string, In>][] = [
  ['feature distillation (L1)', (o, x) => featureDistillOps(o, x.si, x.ti), images()],
  ['similarity distillation', (o, x) => similarityDistillOps(o, x.si, x.ti), images()],
  [
    'contrastive distillation (queue)',
    (o, x) => contrastiveDistillOps(o, x.si, x.ti, x.q, 0.05),
    { ...images(), q: f32(unit(9, K), [K, D]) },
  ],
  ['hinge, official (sum, margin 0.2)', (o, x) => hingePairOps(o, x.si, x.tt, 0.2, 'sum'), images()],
  ['hinge, paper (max, margin 0)', (o, x) => hingePairOps(o, x.si, x.tt, 0, 'max'), images()],
  [
    'hard-negative distillation (4 pairs)',
    (o, x) => hardNegativeDistillOps(o, { image: x.si, text: x.st }, { image: x.ti, text: x.tt }, 0.2, 'sum').total,
    pairs(),
  ],
  ['InfoNCE with group targets', (o, x) => infoNceOps(o, x.si, x.st, 0.05, x.p), { ...pairs(), p: targets(IDS) }],
  ['contrastive (no teacher)', (o, x) => contrastiveLossOps(o, x.si, x.st, 0.05, x.p), { ...pairs(), p: targets(IDS) }],
  ['kd, tau 0.5', (o, x) => kdLossOps(o, { image: x.si, text: x.st }, { image: x.ti, text: x.tt }, 0.5), pairs()],
  [
    'kd, tau 4 (a tiny KL)',
    (o, x) => kdLossOps(o, { image: x.si, text: x.st }, { image: x.ti, text: x.tt }, 4),
    pairs(),
  ],
  ['fitnet', (o, x) => fitnetLossOps(o, { image: x.si, text: x.st }, { image: x.ti, text: x.tt }), pairs()],
  ['rkd distance', (o, x) => rkdDistanceOps(o, x.si, x.ti), images()],
  ['rkd angle', (o, x) => rkdAngleOps(o, x.si, x.ti), images()],
  ['rkd', (o, x) => rkdLossOps(o, { image: x.si, text: x.st }, { image: x.ti, text: x.tt }), pairs()],
  [
    'clip-kd',
    (o, x) => clipKdLossOps(o, { image: x.si, text: x.st }, { image: x.ti, text: x.tt }, 0.05, x.p),
    { ...pairs(), p: targets(IDS) },
  ],
  // Raw (unnormalised) features through l2n, as the towers' projections end.
  [
    'l2n then contrastive',
    (o, x) => contrastiveLossOps(o, l2nOps(o, x.si), l2nOps(o, x.st), 0.5, x.p),
    { si: f32(normal(3, B * D), [B, D], true), st: f32(normal(4, B * D), [B, D], true), p: targets() },
  ],
];

/** A DCD plan's tensors as inputs (the teacher's part, constants and int indices). */
const planInputs = (p: DcdPlan, prefix: string): Record<string, In> => ({
  [`${prefix}idx`]: { data: p.studentIndex, shape: [p.studentIndex.length], int: true },
  [`${prefix}t`]: f32(p.teacherSelected, [p.batch, p.topK]),
  [`${prefix}e`]: f32(p.entropyShare, [p.batch]),
  [`${prefix}r`]: f32(Float32Array.of(p.rSum), []),
});
const planOf = <T>(x: Record<string, T>, prefix: string) => ({
  studentIndex: x[`${prefix}idx`],
  teacherSelected: x[`${prefix}t`],
  entropyShare: x[`${prefix}e`],
  rSum: x[`${prefix}r`],
});

describe('every loss: tfOps and graphOps give the same value and gradients', () => {
  beforeAll(async () => {
    await initRuntime('cpu', { quiet: true });
  });

  for (const [name, f, inputs] of cases) {
    it(name, async () => {
      const gap = await engineGap(f, inputs);
      expect(Number.isFinite(gap.tfjs)).toBe(true);
      expect(gap.gradScale, 'a gradient reaches the student').toBeGreaterThan(1e-3);
      expect(gap.value, `${name} value`).toBeLessThan(2e-5);
      expect(gap.grad, `${name} gradients`).toBeLessThan(2e-5);
    });
  }

  it('contrastive distillation stays exact when the positive dominates (loss ~ 1e-3 and below)', async () => {
    const x = images();
    const gap = await engineGap((o, v) => contrastiveDistillOps(o, v.si, v.ti, v.q, 0.05), {
      ...x,
      si: f32(x.ti.data as Float32Array, [B, D], true),
      q: f32(unit(9, K), [K, D]),
    });
    expect(gap.tfjs).toBeLessThan(1e-2);
    expect(gap.value).toBeLessThan(1e-4);
    expect(gap.grad).toBeLessThan(1e-4);
  });

  it('DCD on a score matrix: the teacher plan enters as int indices and constants, the student part is differentiated', async () => {
    const C = 12;
    const teacher = Array.from({ length: B }, (_, i) => Array.from(normal(20 + i, C)));
    const p = dcdPlan(teacher, 8);
    const inputs = { s: f32(normal(7, B * C), [B, C], true), ...planInputs(p, 'p') };
    for (const opts of [DCD_DEFAULTS, { topK: 8, temperature: 2, alpha: 0.7 }]) {
      const gap = await engineGap((o, x) => dcdLossOps(o, x.s, planOf(x, 'p'), opts).total, inputs);
      expect(gap.value).toBeLessThan(2e-5);
      expect(gap.grad).toBeLessThan(2e-5);
    }
  });

  it('DCD for dual encoders, with and without queue candidates', async () => {
    const opts = { ...DCD_DEFAULTS, scoreTemperature: 0.05 };
    const x = pairs();
    for (const Kq of [0, 5]) {
      const q = Kq ? { image: unit(31, Kq), text: unit(32, Kq) } : undefined;
      const plans = dcdDualPlans({ image: x.ti.data, text: x.tt.data }, B, D, opts, q);
      const inputs: Record<string, In> = {
        si: x.si,
        st: x.st,
        ...planInputs(plans.i2t, 'a'),
        ...planInputs(plans.t2i, 'b'),
      };
      if (q) Object.assign(inputs, { qi: f32(q.image, [Kq, D]), qt: f32(q.text, [Kq, D]) });
      const gap = await engineGap(
        (o, v) =>
          dcdDualEncoderOps(
            o,
            { image: v.si, text: v.st },
            { i2t: planOf(v, 'a'), t2i: planOf(v, 'b') },
            opts,
            q && { image: v.qi, text: v.qt },
          ),
        inputs,
      );
      expect(gap.gradScale).toBeGreaterThan(1e-3);
      expect(gap.value).toBeLessThan(2e-5);
      expect(gap.grad).toBeLessThan(2e-5);
    }
  });

  it('log softmax over rows of a non-square matrix (its log-sum-exp is per row)', async () => {
    const gap = await engineGap((o, x) => o.reduceSum(o.mul(logSoftmaxRows(o, x.a), x.w), [0, 1]), {
      a: f32(normal(5, 3 * 5), [3, 5], true),
      w: f32(normal(6, 3 * 5), [3, 5]),
    });
    expect(gap.value).toBeLessThan(2e-5);
    expect(gap.grad).toBeLessThan(2e-5);
    const want = tf.tidy(() => Array.from(tf.logSoftmax(tf.tensor2d(normal(5, 15), [3, 5])).dataSync()));
    const got = tf.tidy(() => Array.from(logSoftmaxRows(tfOps(), tf.tensor2d(normal(5, 15), [3, 5])).dataSync()));
    got.forEach((v, i) => expect(v).toBeCloseTo(want[i], 5));
  });

  it('the plan tensors of one engine are what the plan holds', () => {
    const p = dcdPlan(
      [
        [3, 1, 2],
        [0, 5, 4],
      ],
      2,
    );
    tf.tidy(() => {
      const t = dcdPlanTensors(tfOps(), tf.scalar(0), p);
      expect(Array.from(t.studentIndex.dataSync())).toEqual([0, 2, 3, 4]); // row 0: candidates [0, 2]; row 1: [0, 1], at 3 + c
      expect(t.studentIndex.dtype).toBe('int32');
      expect(Array.from(t.teacherSelected.dataSync())).toEqual([3, 2, 5, 4]);
      expect(t.rSum.shape).toEqual([]);
      expect(t.rSum.dataSync()[0]).toBeCloseTo(1, 6);
    });
  });
});
