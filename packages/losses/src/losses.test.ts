import { beforeAll, describe, expect, it } from 'vitest';
import { initRuntime, Rng, tf } from '@distill/core';
import { clipKdLoss, contrastiveLoss, fitnetLoss, kdLoss, rkdLoss } from './baselines.js';
import { dcdDualEncoder, DCD_DEFAULTS } from './dcd.js';
import {
  checkPair,
  contrastiveDistill,
  contrastiveDistillPerSample,
  cosinePerSample,
  DSMD_COMPONENTS,
  DSMD_MODES,
  dsmdLosses,
  featureDistill,
  hardNegativeDistill,
  HND_PAIRS,
  hingePair,
  l2n,
  similarityDistill,
} from './dsmd.js';
import { resolveLossMethod } from './methods.js';
import { FeatureQueue } from './queue.js';

const B = 5,
  D = 6,
  K = 10;
const rand = (seed: number, n = B, d = D) => l2n(tf.tensor2d(new Rng(seed).normalArray(n * d), [n, d]));

/** Max relative difference between tfjs gradients and central finite differences of f at x. */
function gradCheck(f: (x: tf.Tensor2D) => tf.Scalar, x0: tf.Tensor2D, h = 1e-2): number {
  const g = tf
    .grad((x: tf.Tensor) => f(x as tf.Tensor2D))(x0)
    .dataSync();
  const base = x0.dataSync();
  let worst = 0;
  for (let i = 0; i < base.length; i += 3) {
    const plus = Float32Array.from(base);
    plus[i] += h;
    const minus = Float32Array.from(base);
    minus[i] -= h;
    const fp = tf.tidy(() => f(tf.tensor2d(plus, x0.shape as [number, number])).dataSync()[0]);
    const fm = tf.tidy(() => f(tf.tensor2d(minus, x0.shape as [number, number])).dataSync()[0]);
    const num = (fp - fm) / (2 * h);
    worst = Math.max(worst, Math.abs(num - g[i]) / Math.max(1e-2, Math.abs(num), Math.abs(g[i])));
  }
  return worst;
}

describe('DSMD losses', () => {
  beforeAll(async () => {
    await initRuntime('cpu', { quiet: true });
  });

  // Gradients flow from each loss to the (raw, pre-normalisation) student features.
  const teacher = () => ({ image: rand(11), text: rand(12) });
  const cases: [string, (x: tf.Tensor2D) => tf.Scalar, number?][] = [
    ['contrastive distillation', (x) => contrastiveDistill(l2n(x), teacher().image, rand(13, K), 0.5)],
    ['feature distillation (L1)', (x) => featureDistill(l2n(x), teacher().image)],
    ['similarity distillation', (x) => similarityDistill(l2n(x), teacher().image)],
    ['hinge sum m=0.2', (x) => hingePair(l2n(x), teacher().text, 0.2, 'sum')],
    // max is piecewise linear: a small step keeps the finite differences on one piece
    ['hinge max m=0.2', (x) => hingePair(l2n(x), teacher().text, 0.2, 'max'), 1e-3],
    ['contrastive (no teacher)', (x) => contrastiveLoss(l2n(x), rand(14), 0.5)],
    ['kd', (x) => kdLoss({ image: l2n(x), text: rand(14) }, teacher(), 0.5)],
    ['fitnet', (x) => fitnetLoss({ image: l2n(x), text: rand(14) }, teacher())],
    ['rkd', (x) => rkdLoss({ image: l2n(x), text: rand(14) }, teacher())],
    ['clip-kd', (x) => clipKdLoss({ image: l2n(x), text: rand(14) }, teacher(), 0.5)],
    [
      'dcd (dual encoder)',
      (x) =>
        dcdDualEncoder({ image: l2n(x), text: rand(14) }, teacher(), {
          ...DCD_DEFAULTS,
          topK: 4,
          scoreTemperature: 0.5,
        }),
    ],
  ];
  for (const [name, f, h] of cases) {
    it(`${name}: tfjs gradient = finite differences`, () => {
      const x = tf.tensor2d(new Rng(3).normalArray(B * D), [B, D]);
      expect(gradCheck(f, x, h)).toBeLessThan(0.03);
    });
  }

  it('paper and official modes differ exactly in the hinge (max / margin 0 vs sum / margin 0.2)', () => {
    const s = { image: rand(1), text: rand(2) };
    const t = { image: rand(3), text: rand(4) };
    const q = { image: rand(5, K), text: rand(6, K) };
    const paper = resolveLossMethod('dsmd', { temperature: 0.05 });
    const official = resolveLossMethod('dsmd-official', { temperature: 0.05 });
    const x = {
      studentImage: s.image,
      studentText: s.text,
      teacherImage: t.image,
      teacherText: t.text,
      imageQueue: q.image,
      textQueue: q.text,
    };
    const a = Object.fromEntries(Object.entries(paper.loss(x)).map(([k, v]) => [k, v.dataSync()[0]]));
    const b = Object.fromEntries(Object.entries(official.loss(x)).map(([k, v]) => [k, v.dataSync()[0]]));
    expect(Object.keys(a)).toEqual(['l1_loss', 'cos_loss', 'con_loss', 'hnd_loss']);
    for (const k of ['l1_loss', 'cos_loss', 'con_loss']) expect(a[k]).toBe(b[k]);
    expect(a.hnd_loss).not.toBeCloseTo(b.hnd_loss, 3);
    expect(paper.defaultBalancer).toBe('dsmd-paper');
    expect(official.defaultBalancer).toBe('dsmd-official');
    const direct = dsmdLosses(s, t, q, { temperature: 0.05, margin: 0.2, reduction: 'sum', enabled: ['hnd'] });
    expect(direct.hnd_loss.dataSync()[0]).toBeCloseTo(b.hnd_loss, 5);
  });

  it('ablations leave switched-off components out', () => {
    const m = resolveLossMethod('cd,hnd', { temperature: 0.05 });
    expect(m.components).toEqual(['con_loss', 'hnd_loss']);
    expect(m.needsQueue).toBe(true);
    expect(resolveLossMethod('fd,sd', { temperature: 0.05 }).needsQueue).toBe(false);
    expect(() => resolveLossMethod('cd,xx', { temperature: 0.05 })).toThrow(/Unknown loss method 'cd,xx'/);
  });

  it('wrong shapes name both sizes', () => {
    expect(() => featureDistill(rand(1, B, 6), rand(2, B, 8))).toThrow(/student dim 6 != teacher dim 8/);
    expect(() => new FeatureQueue(4, D).enqueue(new Float32Array(B * D), B)).toThrow(
      /Queue size 4 is smaller than the batch 5/,
    );
  });
});

describe('DSMD losses, hand-computed', () => {
  beforeAll(async () => {
    await initRuntime('cpu', { quiet: true });
  });
  const m = (rows: number[][]) => tf.tensor2d(rows);
  const val = (t: tf.Scalar) => t.dataSync()[0];

  // a = I3, so S = a c^T = c^T: c's columns are S's rows. Diagonal S_ii = 0.5, 0.4, 0.7.
  const S = [
    [0.5, 0.6, 0.1],
    [0.25, 0.4, 0.45],
    [0.2, 0.1, 0.7],
  ];
  const a = () =>
    m([
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ]);
  const c = () => m([0, 1, 2].map((j) => S.map((row) => row[j])));

  it('hinge: sum and max over [m + S_ij - S_ii]_+ and [m + S_ij - S_jj]_+, at margins 0.2 and 0', () => {
    // margin 0.2, query rows (vs S_ii): row 0: 0.2+0.6-0.5 = 0.3 (and 0.2+0.1-0.5 < 0); row 1: 0.2+0.25-0.4 = 0.05,
    // 0.2+0.45-0.4 = 0.25; row 2: all < 0.  Sum 0.6, hardest per row 0.3 + 0.25 + 0 = 0.55.
    // query columns (vs S_jj): column 1: 0.2+0.6-0.4 = 0.4; every other entry < 0.  Sum 0.4, hardest 0.4.
    expect(val(hingePair(a(), c(), 0.2, 'sum'))).toBeCloseTo(0.6 + 0.4, 6);
    expect(val(hingePair(a(), c(), 0.2, 'max'))).toBeCloseTo(0.55 + 0.4, 6);
    // margin 0: rows 0.6-0.5 = 0.1 and 0.45-0.4 = 0.05; column 1: 0.6-0.4 = 0.2.  Sum = max = 0.35.
    expect(val(hingePair(a(), c(), 0, 'sum'))).toBeCloseTo(0.35, 6);
    expect(val(hingePair(a(), c(), 0, 'max'))).toBeCloseTo(0.35, 6);
    // A margin below every gap: nothing is violated.
    expect(val(hingePair(a(), c(), -0.5, 'sum'))).toBe(0);
  });

  it("paper mode's margin-0 hinge has a free minimum: a student orthogonal to the teacher's features (why `dsmd` sits at chance on emoji, docs/results.md)", () => {
    // Teacher features in dims 0-2, student in dims 3-5 (the emoji teacher's features span ~16 of 256 dims, so a student
    // can get there): S = 0, every hinge term is [m + 0 - 0]_+ = m. At m = 0 the loss is 0 with a zero gradient.
    const t = () =>
      m([
        [1, 0, 0, 0, 0, 0],
        [0.6, 0.8, 0, 0, 0, 0],
        [0, 0.6, 0.8, 0, 0, 0],
      ]);
    const s = () =>
      m([
        [0, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0.6, 0.8],
        [0, 0, 0, 0.8, 0, 0.6],
      ]);
    const pair = { image: s(), text: s() },
      teach = { image: t(), text: t() };
    expect(val(hardNegativeDistill(pair, teach, 0, 'max').total)).toBe(0);
    expect(val(hardNegativeDistill(pair, teach, 0, 'sum').total)).toBe(0);
    const g = tf
      .grad((x: tf.Tensor) => hardNegativeDistill({ image: x as tf.Tensor2D, text: s() }, teach, 0, 'max').total)(s())
      .dataSync();
    expect(Math.max(...Array.from(g, Math.abs))).toBe(0);
    // margin 0.2 charges it: each of the 4 pairs pays m per query row and column (max) -> 4 * 2 * B * m = 4.8.
    expect(val(hardNegativeDistill(pair, teach, 0.2, 'max').total)).toBeCloseTo(4.8, 5);
    // The other signature of that state: cos(s, t) = 0 -> cos_loss = 2 * 1/2 = 1; every contrastive logit is 0 -> con_loss = 2 log(K + 1)
    // (16.6 for the emoji preset's K = 4096, what the chance runs log).
    const queue = m(
      Array.from({ length: 4 }, (_, k) => [k % 3 === 0 ? 1 : 0, k % 3 === 1 ? 1 : 0, k % 3 === 2 ? 1 : 0, 0, 0, 0]),
    );
    const l = dsmdLosses(
      pair,
      teach,
      { image: queue, text: queue },
      { temperature: 0.05, ...DSMD_MODES.paper, enabled: DSMD_COMPONENTS },
    );
    expect(val(l.hnd_loss)).toBe(0);
    expect(val(l.cos_loss)).toBeCloseTo(1, 6);
    expect(val(l.con_loss)).toBeCloseTo(2 * Math.log(5), 5);
  });

  it('hard-negative distillation adds the four hinge pairs', () => {
    // student image a, text c; teacher image a, text c: pairs (a, a), (c, c), (a, c), (c, a).
    const I = a();
    const C = c();
    const expected = [
      hingePair(I, I, 0.2, 'sum'),
      hingePair(C, C, 0.2, 'sum'),
      hingePair(I, C, 0.2, 'sum'),
      hingePair(C, I, 0.2, 'sum'),
    ].map(val);
    // (a, a): S = I: every off-diagonal 0.2 + 0 - 1 < 0 -> 0; (a, c) from the test above: 1.0.
    expect(expected[0]).toBe(0);
    expect(expected[2]).toBeCloseTo(1.0, 6);
    const h = hardNegativeDistill({ image: I, text: C }, { image: I, text: C }, 0.2, 'sum');
    expect(val(h.pairs.img_img)).toBe(0);
    expect(val(h.pairs.img_txt)).toBeCloseTo(1.0, 6);
    expect(val(h.pairs.txt_txt)).toBeCloseTo(expected[1], 6);
    expect(val(h.pairs.txt_img)).toBeCloseTo(expected[3], 6);
    expect(val(h.total)).toBeCloseTo(
      expected.reduce((x, y) => x + y, 0),
      6,
    );
  });

  it('feature, similarity and contrastive distillation', () => {
    const s = m([
      [1, 0],
      [0, 1],
    ]);
    const t = m([
      [0.6, 0.8],
      [0, 1],
    ]);
    // L1: |1-0.6| + |0-0.8| over 4 entries = 1.2 / 4.
    expect(val(featureDistill(s, t))).toBeCloseTo(0.3, 6);
    // cos = [0.6, 1], mean 0.8: 1 - (0.8 + 1) / 2 = 0.1.
    expect(val(similarityDistill(s, t))).toBeCloseTo(0.1, 6);
    expect(Array.from(cosinePerSample(m([[3, 4]]), m([[4, 3]])).dataSync())[0]).toBeCloseTo(24 / 25, 6);
    // Contrastive with a one-key queue q = (0, 1), tau 1: row 0: logits [s.t, s.q] = [0.6, 0] -> log(1 + e^-0.6);
    // row 1: [1, 1] -> log 2.
    const q = m([[0, 1]]);
    expect(Array.from(contrastiveDistillPerSample(s, t, q, 1).dataSync())).toEqual([
      expect.closeTo(Math.log(1 + Math.exp(-0.6)), 6),
      expect.closeTo(Math.log(2), 6),
    ]);
    expect(val(contrastiveDistill(s, t, q, 0.5))).toBeCloseTo((Math.log(1 + Math.exp(-1.2)) + Math.log(2)) / 2, 6);
    // A positive far above the queue (logit gap 7 at tau 2/7): log(1 + e^-7) = 9.1e-4.
    expect(val(contrastiveDistill(m([[1, 0]]), m([[1, 0]]), m([[-1, 0]]), 2 / 7))).toBeCloseTo(
      Math.log1p(Math.exp(-7)),
      6,
    );
    // A queue key far above the positive (gap 40): log(1 + e^40) = 40 + log1p(e^-40), no overflow.
    expect(val(contrastiveDistill(m([[1, 0]]), m([[-1, 0]]), m([[1, 0]]), 0.05))).toBeCloseTo(40, 4);
    expect(() => contrastiveDistill(s, t, m([[0, 1, 0]]), 1)).toThrow(/queue dim 3 != feature dim 2/);
  });

  it('dsmdLosses sums each component over the modalities / pairs', () => {
    const s = {
      image: m([
        [1, 0],
        [0, 1],
      ]),
      text: m([
        [0.6, 0.8],
        [0, 1],
      ]),
    };
    const t = {
      image: m([
        [0.6, 0.8],
        [0, 1],
      ]),
      text: m([
        [0.6, 0.8],
        [0, 1],
      ]),
    };
    const q = { image: m([[0, 1]]), text: m([[0, 1]]) };
    const all = dsmdLosses(s, t, q, {
      temperature: 1,
      margin: 0.2,
      reduction: 'sum',
      enabled: ['fd', 'sd', 'cd', 'hnd'],
    });
    expect(Object.keys(all)).toEqual(['l1_loss', 'cos_loss', 'con_loss', 'hnd_loss']);
    expect(val(all.l1_loss)).toBeCloseTo(0.3 + 0, 6);
    expect(val(all.cos_loss)).toBeCloseTo(0.1 + 0, 6);
    const conText = Math.log(1 + Math.exp(0.8 - 1)) + Math.log(2); // text row 0: [s.t, s.q] = [1, 0.8]
    expect(val(all.con_loss)).toBeCloseTo((Math.log(1 + Math.exp(-0.6)) + Math.log(2)) / 2 + conText / 2, 6);
    expect(val(all.hnd_loss)).toBeCloseTo(val(hardNegativeDistill(s, t, 0.2, 'sum').total), 6);
    expect(
      Object.keys(dsmdLosses(s, t, undefined, { temperature: 1, margin: 0, reduction: 'max', enabled: ['sd'] })),
    ).toEqual(['cos_loss']);
    expect(() => dsmdLosses(s, t, undefined, { temperature: 1, margin: 0, reduction: 'max', enabled: ['cd'] })).toThrow(
      /needs the feature queues/,
    );
  });

  it('contrastive distillation does not overflow when a queue key is far above the positive', () => {
    // d = (s.q - s.t) / tau = [200, 0]: log(1 + e^200 + e^0) = 200 (+ e^-200); exp(200) alone would be Infinity in float32.
    expect(
      val(
        contrastiveDistill(
          m([[1, 0]]),
          m([[-1, 0]]),
          m([
            [1, 0],
            [-1, 0],
          ]),
          0.01,
        ),
      ),
    ).toBeCloseTo(200, 3);
  });

  it('shape checks: two matrices, same dim, same batch', () => {
    const a = m([
      [1, 0],
      [0, 1],
    ]);
    expect(() => checkPair(tf.tensor1d([1, 0]) as unknown as tf.Tensor2D, a, 'x')).toThrow(
      /^x: expected two \[B, D\] matrices, got \[2\] and \[2,2\].$/,
    );
    expect(() => checkPair(a, tf.tensor3d([[[1]]]) as unknown as tf.Tensor2D, 'x')).toThrow(
      /got \[2,2\] and \[1,1,1\]/,
    );
    expect(() => featureDistill(a, m([[1, 0]]))).toThrow(/^feature distillation: student batch 2 != teacher batch 1.$/);
    expect(() =>
      similarityDistill(
        a,
        m([
          [1, 0, 0],
          [0, 1, 0],
        ]),
      ),
    ).toThrow(
      /^similarity distillation: student dim 2 != teacher dim 3. The student's projection must map to the teacher's dimension \(embedDim\).$/,
    );
    expect(() =>
      hingePair(
        a,
        m([
          [1, 0, 0],
          [0, 1, 0],
        ]),
        0,
        'sum',
      ),
    ).toThrow(/^hard-negative distillation: student dim 2/);
    expect(() =>
      contrastiveDistill(
        a,
        m([
          [1, 0, 0],
          [0, 1, 0],
        ]),
        a,
        1,
      ),
    ).toThrow(/^contrastive distillation: student dim 2/);
    expect(() => checkPair(a, a, 'x')).not.toThrow();
  });

  it('the paper and official modes', () => {
    expect(DSMD_MODES).toEqual({ paper: { margin: 0, reduction: 'max' }, official: { margin: 0.2, reduction: 'sum' } });
    expect(DSMD_COMPONENTS).toEqual(['fd', 'sd', 'cd', 'hnd']);
    expect(HND_PAIRS).toEqual(['img_img', 'txt_txt', 'img_txt', 'txt_img']);
  });

  it('l2n divides each row by its norm (and leaves a zero row at zero)', () => {
    expect(
      Array.from(
        l2n(
          m([
            [3, 4],
            [0, 0],
          ]),
        ).dataSync(),
      ),
    ).toEqual([0.6, 0.8, 0, 0].map((v) => expect.closeTo(v, 6)));
  });
});

describe('FeatureQueue', () => {
  it('starts with unit keys, wraps around for any K >= batch, and restores its state', () => {
    const q = new FeatureQueue(7, 3, 1);
    const keys = q.tensor.arraySync() as number[][];
    keys.forEach((k) => expect(Math.hypot(...k)).toBeCloseTo(1, 5));
    const rows = (v: number) => new Float32Array(5 * 3).fill(v);
    q.enqueue(rows(1), 5);
    expect(q.ptr).toBe(5);
    q.enqueue(rows(2), 5); // rows 5, 6, 0, 1, 2
    expect(q.ptr).toBe(3);
    const after = q.tensor.arraySync() as number[][];
    expect(after.map((r) => r[0])).toEqual([2, 2, 2, 1, 1, 2, 2]);
    const saved = q.state();
    const r = new FeatureQueue(7, 3, 99);
    r.load(saved);
    expect(r.ptr).toBe(3);
    expect(r.tensor.arraySync()).toEqual(after);
  });
});

describe('FeatureQueue errors and views', () => {
  beforeAll(async () => {
    await initRuntime('cpu', { quiet: true });
  });

  it('rejects bad sizes, batches and states in one line', () => {
    expect(() => new FeatureQueue(0, 3)).toThrow(/^Queue size must be a positive integer, got 0.$/);
    expect(() => new FeatureQueue(2.5, 3)).toThrow(/got 2.5/);
    const q = new FeatureQueue(4, 2);
    expect(() => q.enqueue(new Float32Array(5), 2)).toThrow(/^Queue enqueue: got 5 values for a batch of 2 x dim 2.$/);
    expect(() => q.enqueue(new Float32Array(10), 5)).toThrow(
      /^Queue size 4 is smaller than the batch 5: use a queue of at least the batch size.$/,
    );
    expect(() => q.load({ ptr: 0, data: new Float32Array(6) })).toThrow(/^Queue state has 6 values, expected 4 x 2.$/);
    // A batch equal to the queue size fills it.
    q.enqueue(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 4);
    expect(q.ptr).toBe(0);
    expect(Array.from(q.rows)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('the tensor view follows enqueue and load; the state is a copy; fromKeys starts at 0', () => {
    const q = FeatureQueue.fromKeys(Float32Array.from([1, 0, 0, 1, 1, 1]), 3, 2);
    expect(q.ptr).toBe(0);
    expect(q.tensor.arraySync()).toEqual([
      [1, 0],
      [0, 1],
      [1, 1],
    ]);
    expect(q.tensor).toBe(q.tensor); // cached until the next change
    q.enqueue(Float32Array.from([5, 5]), 1);
    expect(q.tensor.arraySync()).toEqual([
      [5, 5],
      [0, 1],
      [1, 1],
    ]);
    const st = q.state();
    expect(st.ptr).toBe(1);
    st.data[0] = 99;
    expect(q.rows[0]).toBe(5);
    q.load({ ptr: 2, data: Float32Array.from([0, 0, 0, 0, 7, 7]) });
    expect(q.tensor.arraySync()).toEqual([
      [0, 0],
      [0, 0],
      [7, 7],
    ]);
    q.enqueue(Float32Array.from([8, 8, 9, 9]), 2); // rows 2 and 0
    expect(q.tensor.arraySync()).toEqual([
      [9, 9],
      [0, 0],
      [8, 8],
    ]);
    expect(q.ptr).toBe(1);
    const n = tf.memory().numTensors;
    q.dispose();
    expect(tf.memory().numTensors).toBe(n - 1);
    // Seeded: two queues with one seed agree, another seed differs.
    expect(new FeatureQueue(3, 4, 5).rows).toEqual(new FeatureQueue(3, 4, 5).rows);
    expect(new FeatureQueue(3, 4, 5).rows).not.toEqual(new FeatureQueue(3, 4, 6).rows);
  });
});
