import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initRuntime, type Ops } from '@distill/core';
import {
  clipKdLossOps,
  contrastiveLossOps,
  fitnetLossOps,
  groupTargetArray,
  kdLossOps,
  rkdLossOps,
} from './baselines.js';
import { dcdDualEncoderOps, dcdDualPlans, type DcdPlan } from './dcd.js';
import {
  contrastiveDistillOps,
  featureDistillOps,
  hardNegativeDistillOps,
  hingePairOps,
  similarityDistillOps,
  type HingeReduction,
} from './dsmd.js';
import { onGraph, onTfjs, type In } from './engine-harness.test-util.js';

/**
 * Every loss's value and gradients against float64 PyTorch autograd (fixtures/parity/loss_gradients.json,
 * written by tools/parity/loss_gradients.py from the spec formulas, not from this package), on both
 * engines: tfjs autodiff (tfOps) and distill's own autodiff as an onnx graph (graphOps). Tolerance 1e-5
 * relative (gradients: relative to the largest entry of the reference gradient). A gradient scaled by
 * 1.02 (or any rule 1% off) fails here even where the forward value is exact.
 */
interface Case {
  inputs: 'dsmd' | 'baselines';
  loss: string;
  args: {
    temperature?: number;
    margin?: number;
    reduction?: HingeReduction;
    scoreTemperature?: number;
    topK?: number;
    alpha?: number;
    queue?: number;
  };
  value: number;
  grads: Record<string, number[][]>;
}
const fx = JSON.parse(readFileSync(new URL('./fixtures/parity/loss_gradients.json', import.meta.url), 'utf8')) as {
  inputs: Record<string, Record<string, number[][] | number[]>>;
  cases: Record<string, Case>;
};

const TOL = 1e-5;
const mat = (rows: number[][]) => ({ data: Float32Array.from(rows.flat()), shape: [rows.length, rows[0].length] });

type F = <T>(o: Ops<T>, x: Record<string, T>) => T;
/** The package's definition for a fixture case. */
function lossOf(c: Case): F {
  const a = c.args;
  const p = <T>(x: Record<string, T>) => ({ s: { image: x.si, text: x.st }, t: { image: x.ti, text: x.tt } });
  switch (c.loss) {
    case 'contrastiveDistill':
      // the image side: student image, teacher image, image queue; the text side: the same on text
      return (o, x) =>
        x.si
          ? contrastiveDistillOps(o, x.si, x.ti, x.qi, a.temperature!)
          : contrastiveDistillOps(o, x.st, x.tt, x.qt, a.temperature!);
    case 'featureDistill':
      return (o, x) => featureDistillOps(o, x.si, x.ti);
    case 'similarityDistill':
      return (o, x) => similarityDistillOps(o, x.si, x.ti);
    case 'hingePair':
      return (o, x) => hingePairOps(o, x.si, x.tt, a.margin!, a.reduction!);
    case 'hardNegativeDistill':
      return (o, x) => hardNegativeDistillOps(o, p(x).s, p(x).t, a.margin!, a.reduction!).total;
    case 'contrastive':
      return (o, x) => contrastiveLossOps(o, x.si, x.st, a.temperature!, x.p);
    case 'kd':
      return (o, x) => kdLossOps(o, p(x).s, p(x).t, a.temperature!);
    case 'fitnet':
      return (o, x) => fitnetLossOps(o, p(x).s, p(x).t);
    case 'rkd':
      return (o, x) => rkdLossOps(o, p(x).s, p(x).t);
    case 'clipKd':
      return (o, x) => clipKdLossOps(o, p(x).s, p(x).t, a.temperature!, x.p);
    case 'dcdDual': {
      const opts = {
        topK: a.topK!,
        temperature: a.temperature!,
        alpha: a.alpha!,
        scoreTemperature: a.scoreTemperature!,
      };
      const planOf = <T>(x: Record<string, T>, k: string) => ({
        studentIndex: x[`${k}idx`],
        teacherSelected: x[`${k}t`],
        entropyShare: x[`${k}e`],
        rSum: x[`${k}r`],
      });
      return (o, x) =>
        dcdDualEncoderOps(
          o,
          p(x).s,
          { i2t: planOf(x, 'a'), t2i: planOf(x, 'b') },
          opts,
          a.queue ? { image: x.qi, text: x.qt } : undefined,
        );
    }
    default:
      throw new Error(`no definition for fixture loss '${c.loss}'`);
  }
}

/** The case's inputs: the differentiated students first (in the fixture's order), then every constant the loss may read. */
function inputsOf(c: Case): Record<string, In> {
  const set = fx.inputs[c.inputs];
  const out: Record<string, In> = {};
  for (const k of Object.keys(c.grads)) out[k] = { ...mat(set[k] as number[][]), grad: true };
  for (const k of ['si', 'st', 'ti', 'tt', 'qi', 'qt'])
    if (!out[k] && set[k] && !(c.loss === 'contrastiveDistill' && k.startsWith('s')))
      out[k] = mat(set[k] as number[][]);
  if (c.loss === 'dcdDual') {
    // the teacher's plans (host, no gradient) from the float32 teacher features; queue: its first `queue` keys
    const Q = c.args.queue ?? 0;
    const B = out.ti.shape[0];
    const D = out.ti.shape[1];
    for (const k of ['qi', 'qt']) {
      if (Q) out[k] = { data: (out[k].data as Float32Array).slice(0, Q * D), shape: [Q, D] };
      else delete out[k];
    }
    const plans = dcdDualPlans(
      { image: out.ti.data, text: out.tt.data },
      B,
      D,
      {
        topK: c.args.topK!,
        temperature: c.args.temperature!,
        alpha: c.args.alpha!,
        scoreTemperature: c.args.scoreTemperature!,
      },
      Q ? { image: out.qi.data, text: out.qt.data } : undefined,
    );
    const plan = (pl: DcdPlan, k: string): Record<string, In> => ({
      [`${k}idx`]: { data: pl.studentIndex, shape: [pl.studentIndex.length], int: true },
      [`${k}t`]: { data: pl.teacherSelected, shape: [pl.batch, pl.topK] },
      [`${k}e`]: { data: pl.entropyShare, shape: [pl.batch] },
      [`${k}r`]: { data: Float32Array.of(pl.rSum), shape: [] },
    });
    Object.assign(out, plan(plans.i2t, 'a'), plan(plans.t2i, 'b'));
  }
  if (set.ids) {
    const ids = set.ids as number[];
    out.p = { data: groupTargetArray(ids, ids.length), shape: [ids.length, ids.length] };
  }
  return out;
}

function worstGap(got: { value: number; grads: Float32Array[] }, c: Case): { value: number; grad: number } {
  const names = Object.keys(c.grads);
  expect(got.grads).toHaveLength(names.length);
  let grad = 0;
  names.forEach((n, j) => {
    const want = c.grads[n].flat();
    expect(got.grads[j], `${n}: length`).toHaveLength(want.length);
    const scale = Math.max(...want.map(Math.abs));
    expect(scale, `${n}: a gradient reaches the student`).toBeGreaterThan(1e-4);
    for (let i = 0; i < want.length; i++) grad = Math.max(grad, Math.abs(got.grads[j][i] - want[i]) / scale);
  });
  return { value: Math.abs(got.value - c.value) / Math.abs(c.value), grad };
}

describe('loss gradients equal float64 PyTorch autograd on both engines (1e-5 relative)', () => {
  beforeAll(async () => {
    await initRuntime('cpu', { quiet: true });
  });

  it('the fixture covers every loss, both hinge modes and both DSMD sides', () => {
    expect(new Set(Object.values(fx.cases).map((c) => c.loss))).toEqual(
      new Set([
        'contrastiveDistill',
        'featureDistill',
        'similarityDistill',
        'hingePair',
        'hardNegativeDistill',
        'dcdDual',
        'contrastive',
        'kd',
        'fitnet',
        'rkd',
        'clipKd',
      ]),
    );
    expect(Object.keys(fx.cases)).toEqual(
      expect.arrayContaining([
        'cd_img',
        'cd_txt',
        'hnd_max_m0.0',
        'hnd_sum_m0.2',
        'kd_tau4.0',
        'kd_tau0.5',
        'dcd_dual',
        'dcd_dual_queue4',
      ]),
    );
  });

  for (const [name, c] of Object.entries(fx.cases)) {
    it(`${name} (${c.loss})`, async () => {
      const f = lossOf(c);
      const inputs = inputsOf(c);
      for (const [engine, got] of [
        ['tfjs', onTfjs(f, inputs)],
        ['onnx graph', await onGraph(f, inputs)],
      ] as const) {
        const gap = worstGap(got, c);
        expect(gap.value, `${name} value on ${engine}`).toBeLessThan(TOL);
        expect(gap.grad, `${name} gradients on ${engine}`).toBeLessThan(TOL);
      }
    });
  }
});
