import { beforeAll, describe, expect, it } from 'vitest';
import { initRuntime, tf } from '@distill/core';
import {
  clipKdLoss,
  contrastiveLoss,
  fitnetLoss,
  groupTargets,
  infoNce,
  kdLoss,
  rkdAngle,
  rkdDistance,
  rkdLoss,
} from './baselines.js';

// Hand-computed values of the baseline losses (spec/baseline-losses.md) on features small enough to
// do on paper. The float64 PyTorch references on seeded features are in parity.test.ts.
const m = (rows: number[][]) => tf.tensor2d(rows);
const val = (t: tf.Scalar) => t.dataSync()[0];
const E = Math.E;

describe('baseline losses, hand-computed', () => {
  beforeAll(async () => {
    await initRuntime('cpu', { quiet: true });
  });

  it('kd is KL(teacher || student), times tau^2, averaged over both directions', () => {
    // Student S = I (row softmax [e, 1]/(1+e) at tau 1); teacher T = all ones (uniform rows).
    // KL(p_t || p_s) per row = sum_j 1/2 log((1/2) / p_s,j) = log((1+e)/2) - 1/2, in both directions.
    // (The reversed KL(p_s || p_t) = log 2 + e/(1+e) - log(1+e) = 0.1109 would be 0.1201 - 0.009 off.)
    const s = {
      image: m([
        [1, 0],
        [0, 1],
      ]),
      text: m([
        [1, 0],
        [0, 1],
      ]),
    };
    const t = {
      image: m([
        [1, 0],
        [1, 0],
      ]),
      text: m([
        [1, 0],
        [1, 0],
      ]),
    };
    expect(val(kdLoss(s, t, 1))).toBeCloseTo(Math.log((1 + E) / 2) - 0.5, 6);
    // tau 2: logits [1/2, 0], so KL = log((1 + e^0.5)/2) - 1/4, times tau^2 = 4.
    expect(val(kdLoss(s, t, 2))).toBeCloseTo(4 * (Math.log((1 + Math.sqrt(E)) / 2) - 0.25), 6);
    // The student as teacher: zero.
    expect(val(kdLoss(s, s, 1))).toBeCloseTo(0, 7);
  });

  it('kd averages the image-to-text and text-to-image directions (not one twice)', () => {
    // S = [[1, 0], [1, 0]]: i2t rows are [1, 0] (KL as above), t2i rows are [1, 1] and [0, 0] (uniform: KL 0).
    const s = {
      image: m([
        [1, 0],
        [1, 0],
      ]),
      text: m([
        [1, 0],
        [0, 1],
      ]),
    };
    const t = {
      image: m([
        [1, 0],
        [1, 0],
      ]),
      text: m([
        [1, 0],
        [1, 0],
      ]),
    };
    expect(val(kdLoss(s, t, 1))).toBeCloseTo((Math.log((1 + E) / 2) - 0.5) / 2, 6);
  });

  it('infoNce spreads the target over every row of the group', () => {
    // q = k = I3 at tau 1: logits I, log softmax of a row = [1, 0, 0] - log(e + 2).
    // ids [0, 0, 1]: rows 0 and 1 average their two log-probabilities; row 2 has only itself.
    const x = m([
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ]);
    const lse = Math.log(E + 2);
    const row01 = -0.5 * (1 - lse) - 0.5 * (0 - lse); // = lse - 1/2
    const row2 = -(1 - lse);
    expect(val(infoNce(x, x, 1, [0, 0, 1]))).toBeCloseTo((2 * row01 + row2) / 3, 6);
    expect(val(infoNce(x, x, 1))).toBeCloseTo(lse - 1, 6); // no ids: every row its own group
    // tau 0.5 doubles the logits.
    expect(val(infoNce(x, x, 0.5))).toBeCloseTo(Math.log(E * E + 2) - 2, 6);
    expect(groupTargets([3, 3, 5], 3).arraySync()).toEqual([
      [0.5, 0.5, 0],
      [0.5, 0.5, 0],
      [0, 0, 1],
    ]);
    expect(groupTargets(undefined, 2).arraySync()).toEqual([
      [1, 0],
      [0, 1],
    ]);
  });

  it('contrastive loss is the mean of InfoNCE both ways', () => {
    // image I2, text [[0, 1], [1, 0]]: i2t and t2i logits are both [[0, 1], [1, 0]] -> each row -(0 - log(1+e)).
    const si = m([
      [1, 0],
      [0, 1],
    ]);
    const st = m([
      [0, 1],
      [1, 0],
    ]);
    expect(val(contrastiveLoss(si, st, 1))).toBeCloseTo(Math.log(1 + E), 6);
    // Asymmetric: text [[1, 0], [1, 0]]: i2t rows [1, 1] and [0, 0] -> log 2 each; t2i rows [1, 0] twice,
    // the second row's target is column 1 -> (-(1 - log(1+e)) - (0 - log(1+e))) / 2 = log(1+e) - 1/2.
    const st2 = m([
      [1, 0],
      [1, 0],
    ]);
    expect(val(contrastiveLoss(si, st2, 1))).toBeCloseTo((Math.log(2) + Math.log(1 + E) - 0.5) / 2, 6);
    expect(() => contrastiveLoss(si, m([[1, 0, 0]]), 1)).toThrow(/student dim 2 != teacher dim 3/);
  });

  it('shape errors name the loss', () => {
    const a = m([
      [1, 0],
      [0, 1],
    ]);
    const b3 = m([
      [1, 0, 0],
      [0, 1, 0],
    ]);
    expect(() => kdLoss({ image: a, text: a }, { image: b3, text: b3 }, 1)).toThrow(
      /^kd: student dim 2 != teacher dim 3\./,
    );
    expect(() => rkdLoss({ image: a, text: a }, { image: b3, text: b3 })).toThrow(
      /^rkd: student dim 2 != teacher dim 3\./,
    );
    expect(() => fitnetLoss({ image: a, text: a }, { image: b3, text: b3 })).toThrow(
      /^fitnet: student dim 2 != teacher dim 3\./,
    );
    expect(() => contrastiveLoss(a, b3, 1)).toThrow(/^contrastive: student dim 2/);
    // Each check names its loss, for the text pair too.
    expect(() => rkdLoss({ image: a, text: a }, { image: a, text: b3 })).toThrow(
      /^rkd: student dim 2 != teacher dim 3\./,
    );
    expect(() => clipKdLoss({ image: a, text: a }, { image: b3, text: a }, 1)).toThrow(
      /^clip-kd: student dim 2 != teacher dim 3\./,
    );
    expect(() => clipKdLoss({ image: a, text: a }, { image: a, text: b3 }, 1)).toThrow(
      /^clip-kd: student dim 2 != teacher dim 3\./,
    );
  });

  it('fitnet is the mean squared error over both modalities', () => {
    const s = {
      image: m([
        [1, 0],
        [0, 1],
      ]),
      text: m([
        [1, 0],
        [0, 1],
      ]),
    };
    const t = {
      image: m([
        [0, 0],
        [0, 1],
      ]),
      text: m([
        [1, 2],
        [0, 1],
      ]),
    };
    // image: one entry off by 1 of 4 -> 1/4; text: one entry off by 2 of 4 -> 4/4.
    expect(val(fitnetLoss(s, t))).toBeCloseTo(0.25 + 1, 6);
    expect(() =>
      fitnetLoss(s, {
        image: t.image,
        text: m([
          [1, 2, 3],
          [0, 1, 0],
        ]),
      }),
    ).toThrow(/^fitnet: student dim 2 != teacher dim 3/);
  });

  it('rkd distance: pairwise distances over their mean, smooth L1 (0.5 d^2 below 1, d - 0.5 above)', () => {
    // s: three points on a line 0, 1, 3: distances 1, 3, 2 (mean 2) -> psi = [[0, .5, 1.5], [.5, 0, 1], [1.5, 1, 0]].
    // t: an equilateral triangle (all distances equal) -> psi = 1 off the diagonal.
    const s = m([
      [0, 0],
      [1, 0],
      [3, 0],
    ]);
    const t = m([
      [0, 0],
      [2, 0],
      [1, Math.sqrt(3)],
    ]);
    // differences off the diagonal: 0.5, 0.5, 0 (twice each) -> smooth L1 0.125, 0.125, 0; mean over 9 entries.
    expect(val(rkdDistance(s, t))).toBeCloseTo((4 * 0.125) / 9, 6);
    // Scaling either set does not change psi.
    expect(val(rkdDistance(s.mul(5) as tf.Tensor2D, t))).toBeCloseTo((4 * 0.125) / 9, 6);
    // A difference above 1 takes the linear branch: s = 0, 1, 10: mean distance (1 + 10 + 9) / 3 = 20/3.
    const far = m([
      [0, 0],
      [1, 0],
      [10, 0],
    ]);
    const psi = [1, 10, 9].map((d) => d / (20 / 3));
    const huber = (d: number) => (Math.abs(d) < 1 ? 0.5 * d * d : Math.abs(d) - 0.5);
    expect(val(rkdDistance(far, t))).toBeCloseTo((2 * psi.reduce((a, p) => a + huber(p - 1), 0)) / 9, 5);
  });

  it('rkd angle: cosines of the angle at each point between the two others', () => {
    // An equilateral triangle: every angle is 60 degrees (cos 1/2) and psi[i, j, j] = 1 for j != i.
    // Three points on a line 0, 1, 2: at the middle point the angle is 180 degrees (cos -1), at the ends 0 (cos 1).
    const tri = m([
      [0, 0],
      [1, 0],
      [0.5, Math.sqrt(3) / 2],
    ]);
    const line = m([
      [0, 0],
      [1, 0],
      [2, 0],
    ]);
    // Entries [i, j, k] with j, k != i: 6 entries j != k (3 points x 2 orders) plus 6 entries j = k (both 1).
    // The triangle's 6 are 1/2; the line's are 1 at the ends (4 entries) and -1 at the middle (2 entries).
    // Differences: 4 x 0.5 (smooth L1 0.125) and 2 x 1.5 (1.0); mean over 27 entries.
    expect(val(rkdAngle(line, tri))).toBeCloseTo((4 * 0.125 + 2 * 1.0) / 27, 6);
    expect(val(rkdAngle(tri, tri))).toBeCloseTo(0, 7);
  });

  it('rkd sums distance + 2 x angle over both modalities', () => {
    const tri = m([
      [0, 0],
      [1, 0],
      [0.5, Math.sqrt(3) / 2],
    ]);
    const line = m([
      [0, 0],
      [1, 0],
      [3, 0],
    ]);
    const d = val(rkdDistance(line, tri));
    const a = val(rkdAngle(line, tri));
    expect(val(rkdLoss({ image: line, text: tri }, { image: tri, text: tri }))).toBeCloseTo(d + 2 * a, 6);
    expect(val(rkdLoss({ image: tri, text: line }, { image: tri, text: tri }))).toBeCloseTo(d + 2 * a, 6);
    expect(d).toBeGreaterThan(0.01);
    expect(a).toBeGreaterThan(0.01);
  });

  it('clip-kd: squared distances summed over dims + interactive InfoNCE (student image vs teacher text)', () => {
    // s = t = I2: distances 0; InfoNCE(I, I) at tau 1 = log(1 + e) - 1 both ways.
    const I = m([
      [1, 0],
      [0, 1],
    ]);
    expect(val(clipKdLoss({ image: I, text: I }, { image: I, text: I }, 1))).toBeCloseTo(Math.log(1 + E) - 1, 6);
    // Student image rows moved by (0, 1) and (1, 0)... : s^I = [[1, 1], [0, 1]] -> ||s^I_i - t^I_i||^2 = [1, 0], mean 1/2.
    // InfoNCE(s^I, t^T = I): logits [[1, 1], [0, 1]] -> rows log 2 and log(1 + e) - 1; InfoNCE(s^T = I, t^I = I) = log(1+e) - 1.
    const si = m([
      [1, 1],
      [0, 1],
    ]);
    const expected = 0.5 + ((Math.log(2) + Math.log(1 + E) - 1) / 2 + Math.log(1 + E) - 1) / 2;
    expect(val(clipKdLoss({ image: si, text: I }, { image: I, text: I }, 1))).toBeCloseTo(expected, 6);
    // The text side: the same moves on the text features give the same value (the roles mirror).
    expect(val(clipKdLoss({ image: I, text: si }, { image: I, text: I }, 1))).toBeCloseTo(expected, 6);
    // Group ids: with both rows in one group every InfoNCE row is -mean(log softmax) = log(sum e^l) - mean(l).
    expect(val(clipKdLoss({ image: I, text: I }, { image: I, text: I }, 1, [0, 0]))).toBeCloseTo(
      Math.log(1 + E) - 0.5,
      6,
    );
  });
});
