import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRuntime, Rng, tf, tfOps } from '@distill/core';
import { dcdDualEncoder, dcdDualEncoderOps, dcdPlan, dcdSelect, DCD_DEFAULTS, type DcdOptions } from './dcd.js';
import { l2n } from './dsmd.js';

const rand = (seed: number, n: number, d: number) => l2n(tf.tensor2d(new Rng(seed).normalArray(n * d), [n, d]));
const opts = { ...DCD_DEFAULTS, topK: 4, scoreTemperature: 0.5 };

/** Value and gradient (w.r.t. the raw student image features) of the dual-encoder DCD loss on the current backend. */
function dcdValueAndGrad(withQueue: boolean): { value: number; grad: Float32Array } {
  return tf.tidy(() => {
    const x = tf.tensor2d(new Rng(3).normalArray(6 * 8), [6, 8]);
    const queues = withQueue ? { image: rand(21, 5, 8), text: rand(22, 5, 8) } : undefined;
    const f = (v: tf.Tensor) =>
      dcdDualEncoder(
        { image: l2n(v as tf.Tensor2D), text: rand(14, 6, 8) },
        { image: rand(11, 6, 8), text: rand(12, 6, 8) },
        opts,
        queues,
      );
    const { value, grad } = tf.valueAndGrad(f)(x);
    return { value: value.dataSync()[0], grad: Float32Array.from(grad.dataSync()) };
  });
}

describe('DCD on every backend (no UnsortedSegmentSum)', () => {
  let cpu: { value: number; grad: Float32Array }[] = [];
  beforeAll(async () => {
    await initRuntime('cpu', { quiet: true });
    cpu = [dcdValueAndGrad(false), dcdValueAndGrad(true)];
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it("the take DCD selects with (Ops.take on tfjs) has tf.gather's gradient bit for bit (each entry gets one dy or none)", () => {
    const gatherDistinct = (v: tf.Tensor1D, i: number[]) => tfOps().take(v, tf.tensor1d(i, 'int32'));
    const x = tf.tensor1d(new Rng(7).normalArray(12));
    const idx = [5, 0, 11, 3, 7];
    const w = tf.tensor1d(new Rng(8).normalArray(idx.length));
    const mine = tf
      .grad((v: tf.Tensor) =>
        gatherDistinct(v as tf.Tensor1D, idx)
          .mul(w)
          .sum(),
      )(x)
      .dataSync();
    const ref = tf
      .grad((v: tf.Tensor) => tf.gather(v, tf.tensor1d(idx, 'int32')).mul(w).sum())(x)
      .dataSync();
    expect(Array.from(mine)).toEqual(Array.from(ref));
    expect(Array.from(gatherDistinct(x, idx).dataSync())).toEqual(idx.map((i) => x.dataSync()[i]));
    expect(() => gatherDistinct(x, [1, 1])).toThrow(/given twice/);
    expect(() => gatherDistinct(x, [12])).toThrow(/out of range/);
  });

  it('trains on wasm (the default engine) with the same loss and gradient as on cpu', async () => {
    await initRuntime('wasm', { quiet: true });
    expect(tf.getBackend()).toBe('wasm');
    for (const [k, withQueue] of [false, true].entries()) {
      const wasm = dcdValueAndGrad(withQueue);
      expect(Number.isFinite(wasm.value)).toBe(true);
      expect(Math.abs(wasm.value - cpu[k].value)).toBeLessThan(1e-5 * Math.abs(cpu[k].value) + 1e-7);
      const worst = Math.max(...Array.from(wasm.grad, (g, i) => Math.abs(g - cpu[k].grad[i])));
      expect(worst).toBeLessThan(1e-5);
      expect(Math.max(...Array.from(cpu[k].grad, Math.abs))).toBeGreaterThan(1e-4); // a gradient reaches the features
    }
  });
});

/**
 * Dual-encoder DCD written out plainly in float64 from the spec (official raojay7/DCD semantics), for
 * each direction: row i's candidates are its own pair (first), the other in-batch rows in order, then
 * the queue keys; scores = similarity / tau; the teacher keeps its top K; the student scores [0] + the
 * teacher's picks other than 0; L = alpha T^2 sum(r) mean((t/T - s/T)^2) + (1 - alpha) sum_i e_i mean_j BCE.
 */
function dcdReference(
  s: { image: number[][]; text: number[][] },
  t: { image: number[][]; text: number[][] },
  o: DcdOptions & { scoreTemperature: number },
  q?: { image: number[][]; text: number[][] },
): number {
  const dot = (a: number[], b: number[]) => a.reduce((acc, v, d) => acc + v * b[d], 0);
  const direction = (
    sq: number[][],
    sk: number[][],
    tq: number[][],
    tk: number[][],
    sExtra: number[][],
    tExtra: number[][],
  ) => {
    const B = sq.length;
    const T = o.temperature;
    const rows = sq.map((_, i) => {
      const cand = [i, ...sq.map((__, j) => j).filter((j) => j !== i)];
      const sRow = [...cand.map((j) => dot(sq[i], sk[j])), ...sExtra.map((e) => dot(sq[i], e))].map(
        (v) => v / o.scoreTemperature,
      );
      const tRow = [...cand.map((j) => dot(tq[i], tk[j])), ...tExtra.map((e) => dot(tq[i], e))].map(
        (v) => v / o.scoreTemperature,
      );
      const top = tRow
        .map((v, j) => [v, j])
        .sort((a, b) => b[0] - a[0] || a[1] - b[1])
        .slice(0, o.topK)
        .map(([, j]) => j);
      const studentIdx = [0, ...top.filter((j) => j !== 0)].slice(0, o.topK);
      const tSel = top.map((j) => Math.fround(tRow[j]));
      const sSel = studentIdx.map((j) => sRow[j]);
      const z = tSel.reduce((a, v) => a + Math.exp(v), 0);
      const ent = tSel.reduce((a, v) => a + (Math.exp(v) / z) * (v - Math.log(z)), 0);
      const bce =
        sSel.reduce((a, x, k) => a + Math.max(x, 0) - x * (k === 0 ? 1 : 0) + Math.log1p(Math.exp(-Math.abs(x))), 0) /
        o.topK;
      const sq2 = tSel.reduce((a, v, k) => a + (v / T - sSel[k] / T) ** 2, 0);
      return { ent, bce, sq2 };
    });
    const total = rows.reduce((a, r) => a + r.ent, 0);
    const share = rows.map((r) => r.ent / total);
    const w = share.map((e) => Math.exp((1 - e) ** 2));
    const rSum = w.reduce((a, v) => a + v, 0) / w.reduce((a, v) => a + v, 0);
    const dLoss = T * T * rSum * (rows.reduce((a, r) => a + r.sq2, 0) / (B * o.topK));
    const nll = rows.reduce((a, r, i) => a + share[i] * r.bce, 0);
    return o.alpha * dLoss + (1 - o.alpha) * nll;
  };
  const i2t = direction(s.image, s.text, t.image, t.text, q?.text ?? [], q?.text ?? []);
  const t2i = direction(s.text, s.image, t.text, t.image, q?.image ?? [], q?.image ?? []);
  return (i2t + t2i) / 2;
}

describe('DCD for dual encoders against a plain float64 reference', () => {
  beforeAll(async () => {
    await initRuntime('cpu', { quiet: true });
  });
  const rows = (seed: number, n: number, d = 6) => rand(seed, n, d).arraySync() as number[][];

  for (const [label, o, withQueue] of [
    ['official options, in-batch candidates', { ...DCD_DEFAULTS, topK: 5, scoreTemperature: 0.1 }, false],
    [
      'T 2, alpha 0.3, top 4 of batch + queue keys',
      { topK: 4, temperature: 2, alpha: 0.3, scoreTemperature: 0.5 },
      true,
    ],
  ] as const) {
    it(label, () => {
      const s = { image: rows(1, 7), text: rows(2, 7) };
      const t = { image: rows(3, 7), text: rows(4, 7) };
      const q = withQueue ? { image: rows(5, 3), text: rows(6, 3) } : undefined;
      const want = dcdReference(s, t, o, q);
      const m = (x: number[][]) => tf.tensor2d(x);
      const got = tf.tidy(
        () =>
          dcdDualEncoder(
            { image: m(s.image), text: m(s.text) },
            { image: m(t.image), text: m(t.text) },
            o,
            q && { image: m(q.image), text: m(q.text) },
          ).dataSync()[0],
      );
      expect(Math.abs(got - want) / Math.abs(want)).toBeLessThan(1e-5);
    });
  }

  it('the teacher selection: top K by score, ties to the lower index; the student keeps its positive first', () => {
    expect(
      dcdSelect(
        [
          [1, 3, 3, 0],
          [2, 1, 5, 5],
        ],
        3,
      ),
    ).toEqual({
      teacherTopIndices: [
        [1, 2, 0],
        [2, 3, 0],
      ],
      studentCandidateIndices: [
        [0, 1, 2],
        [0, 2, 3],
      ],
    });
    expect(() => dcdSelect([[1, 2]], 3)).toThrow(/^DCD: each row needs at least topK=3 candidates, got 2.$/);
    expect(() => dcdPlan([], 2)).toThrow(/^DCD: no rows to score \(an empty batch\).$/);
  });

  it('shape errors name DCD', () => {
    const a = tf.tensor2d(rows(1, 8));
    const b = tf.tensor2d(rows(2, 8, 5));
    expect(() =>
      dcdDualEncoder({ image: a, text: a }, { image: b, text: b }, { ...DCD_DEFAULTS, scoreTemperature: 0.1 }),
    ).toThrow(/^dcd: student dim 6 != teacher dim 5\./);
    expect(() =>
      dcdDualEncoder({ image: a, text: b }, { image: a, text: a }, { ...DCD_DEFAULTS, scoreTemperature: 0.1 }),
    ).toThrow(/^dcd: student dim 5 != teacher dim 6\./);
    expect(() =>
      dcdDualEncoder({ image: a, text: a }, { image: a, text: b }, { ...DCD_DEFAULTS, scoreTemperature: 0.1 }),
    ).toThrow(/^dcd: student dim 6 != teacher dim 5\./);
    // The Ops form checks the student's two towers agree (before it reads the teacher's plans).
    expect(() =>
      dcdDualEncoderOps(tfOps(), { image: a, text: b }, {} as never, { ...DCD_DEFAULTS, scoreTemperature: 0.1 }),
    ).toThrow(/^dcd: student dim 6 != teacher dim 5\./);
  });
});
