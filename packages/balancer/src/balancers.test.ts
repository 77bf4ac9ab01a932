import { describe, expect, it } from 'vitest';
import { createBalancer, DsmdOfficialBalancer, DsmdPaperBalancer } from './balancers.js';

describe('balancers', () => {
  it('dsmd-official: first call is unweighted, then each loss is scaled to ~ k/M x the largest', () => {
    const b = new DsmdOfficialBalancer();
    expect(b.weights([0.01, 0.2, 5, 20])).toEqual([1, 1, 1, 1]);
    const w = b.weights([0.01, 0.2, 5, 20]);
    // all adjusted losses equal max(L), so the softmax is uniform: w_m = 2.5 max(L) / L_m
    expect(w[0]).toBeCloseTo(2.5 * 20 / 0.01, 0);
    expect(w[3]).toBeCloseTo(2.5, 5);
  });

  it('dsmd-paper: weights 1 x magnitude for two steps, then DWA rates L(t-1)/L(t-2) through a softmax', () => {
    const b = new DsmdPaperBalancer();
    expect(b.weights([1, 2])).toEqual([2, 1]);
    expect(b.weights([1, 1])).toEqual([1, 1]);
    const w = b.weights([2, 2]); // rates: L(t-1)/L(t-2) = [1/1, 1/2]
    const e = [Math.exp(1), Math.exp(0.5)];
    expect(w[0]).toBeCloseTo((2 * e[0]) / (e[0] + e[1]), 6);
    expect(w[1]).toBeCloseTo((2 * e[1]) / (e[0] + e[1]), 6);
  });

  for (const name of ['dsmd-official', 'dsmd-paper']) {
    it(`${name} keeps and restores its state (checkpoints)`, () => {
      const a = createBalancer(name);
      const seq = [[3, 1, 2, 0.5], [2.5, 1.1, 1.9, 0.4], [2, 1, 1.7, 0.45], [1.5, 0.9, 1.6, 0.3]];
      a.weights(seq[0]);
      a.weights(seq[1]);
      const saved = JSON.parse(JSON.stringify(a.state()));
      const expected = [a.weights(seq[2]), a.weights(seq[3])];
      const b = createBalancer(name);
      b.load(saved);
      expect([b.weights(seq[2]), b.weights(seq[3])]).toEqual(expected);
    });
  }

  it('static uses its configured weights; errors name the problem', () => {
    expect(createBalancer('static', { weights: [1, 0.5] }).weights([3, 4])).toEqual([1, 0.5]);
    expect(() => createBalancer('static', { weights: [1] }).weights([3, 4])).toThrow(/1 weights configured for 2 losses/);
    expect(() => createBalancer('dwa')).toThrow(/Unknown balancer 'dwa'/);
    expect(() => new DsmdOfficialBalancer().weights([1, Number.NaN])).toThrow(/loss #1 is NaN/);
  });
});
