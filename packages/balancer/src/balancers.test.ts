import { describe, expect, it } from 'vitest';
import { createContainer, registryOf, TOKENS, type Balancer } from '@distill/base';
import {
  BALANCERS,
  createBalancer,
  DsmdOfficialBalancer,
  DsmdPaperBalancer,
  type BalancerConfig,
} from './balancers.js';
import { register } from './index.js';

describe('balancers', () => {
  it('dsmd-official: first call is unweighted, then each loss is scaled to ~ k/M x the largest', () => {
    const b = new DsmdOfficialBalancer();
    expect(b.weights([0.01, 0.2, 5, 20])).toEqual([1, 1, 1, 1]);
    const w = b.weights([0.01, 0.2, 5, 20]);
    // all adjusted losses equal max(L), so the softmax is uniform: w_m = 2.5 max(L) / L_m
    expect(w[0]).toBeCloseTo((2.5 * 20) / 0.01, 0);
    expect(w[3]).toBeCloseTo(2.5, 5);
  });

  it('dsmd-official: rates are adjusted(t) / adjusted(t-1) on changing losses (hand-computed)', () => {
    // With eps 1e-8 every adjusted loss L_m max/(L_m + eps) is ~ max(L): all rates equal max(t)/max(t-1).
    const b = new DsmdOfficialBalancer();
    b.weights([1, 2, 4, 8]); // max 8
    const w = b.weights([0.5, 1, 2, 4]); // max 4: rates 4/8 = 0.5 each, softmax uniform 1/4
    expect(b.lastTrace!.lossRates).toEqual([0.5, 0.5, 0.5, 0.5].map((r) => expect.closeTo(r, 7)));
    expect(b.lastTrace!.magnitudeAdjustment).toEqual([8, 4, 2, 1].map((a) => expect.closeTo(a, 6)));
    expect(w).toEqual([20, 10, 5, 2.5].map((x) => expect.closeTo(x, 5))); // 10 x 1/4 x a_m
    b.weights([1, 1, 1, 3]); // max 3: rates 3/4
    expect(b.lastTrace!.lossRates).toEqual([0.75, 0.75, 0.75, 0.75].map((r) => expect.closeTo(r, 7)));
    expect(b.lastTrace!.adjustedLosses).toEqual([3, 3, 3, 3].map((r) => expect.closeTo(r, 6)));
  });

  it('dsmd-official: unequal rates (eps 1, temperature 0.5) weigh the faster-rising loss more', () => {
    const b = new DsmdOfficialBalancer({ k: 10, temperature: 0.5, eps: 1 });
    // call 1: L = [1, 3]: a = 3/(L+1) = [1.5, 0.75], adjusted = L a = [1.5, 2.25]; weights 1.
    expect(b.weights([1, 3])).toEqual([1, 1]);
    expect(b.lastTrace!.lossRates).toBeUndefined();
    // call 2: L = [3, 1]: a = [0.75, 1.5], adjusted = [2.25, 1.5];
    // r = adjusted / (previous + eps) = [2.25/2.5, 1.5/3.25] = [0.9, 6/13].
    const w = b.weights([3, 1]);
    const r = [0.9, 6 / 13];
    expect(b.lastTrace!.magnitudeAdjustment).toEqual([0.75, 1.5]);
    expect(b.lastTrace!.adjustedLosses).toEqual([2.25, 1.5]);
    expect(b.lastTrace!.lossRates!.map((x, i) => x - r[i])).toEqual([expect.closeTo(0, 12), expect.closeTo(0, 12)]);
    // w_m = k softmax(r / T)_m a_m with T = 0.5: p_0 = 1 / (1 + exp((r_1 - r_0) / 0.5)).
    const p0 = 1 / (1 + Math.exp((r[1] - r[0]) / 0.5));
    expect(w[0]).toBeCloseTo(10 * p0 * 0.75, 10);
    expect(w[1]).toBeCloseTo(10 * (1 - p0) * 1.5, 10);
    expect(b.lastTrace!.weights).toBe(w);
    // Numerically: p0 = 1 / (1 + e^-0.8769) = 0.7062, w = [5.296, 4.407].
    expect(w[0]).toBeCloseTo(5.296, 3);
    expect(w[1]).toBeCloseTo(4.407, 3);
  });

  it('dsmd-official: a different number of losses restarts (weights 1), and state restores the previous losses', () => {
    const b = new DsmdOfficialBalancer({ k: 10, temperature: 1, eps: 1 });
    b.weights([1, 3]);
    expect(b.state()).toEqual({ prev: [1.5, 2.25] });
    expect(b.weights([1, 3, 2])).toEqual([1, 1, 1]);
    const c = new DsmdOfficialBalancer({ k: 10, temperature: 1, eps: 1 });
    c.load({ prev: [2.25, 1.5] });
    c.weights([1, 3]); // adjusted [1.5, 2.25] -> rates [1.5/3.25, 2.25/2.5]
    expect(c.lastTrace!.lossRates![0]).toBeCloseTo(1.5 / 3.25, 12);
    expect(c.lastTrace!.lossRates![1]).toBeCloseTo(2.25 / 2.5, 12);
    c.load(null);
    expect(c.weights([1, 3])).toEqual([1, 1]);
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

  it('dsmd-paper: rates L(t-1)/L(t-2) per loss at temperature 2, magnitude max/L_m (hand-computed)', () => {
    const b = new DsmdPaperBalancer({ temperature: 2 });
    b.weights([2, 4, 1]); // t-2
    b.weights([1, 4, 2]); // t-1: magnitude [4, 1, 2]
    expect(b.lastTrace!.lossRates).toBeUndefined();
    const w = b.weights([8, 2, 4]); // magnitude [1, 4, 2]; rates [1/2, 1, 2]
    expect(b.lastTrace!.lossRates).toEqual([0.5, 1, 2]);
    expect(b.lastTrace!.magnitudeAdjustment).toEqual([1, 4, 2]);
    expect(b.lastTrace!.adjustedLosses).toEqual([8, 8, 8]);
    const e = [0.25, 0.5, 1].map(Math.exp); // exp(r / 2)
    const z = e[0] + e[1] + e[2];
    expect(w).toEqual([1, 4, 2].map((a, m) => expect.closeTo((3 * e[m] * a) / z, 12)));
    // The next call's rates use the two latest steps only: [8/1, 2/4, 4/2].
    b.weights([1, 1, 1]);
    expect(b.lastTrace!.lossRates).toEqual([8, 0.5, 2]);
    expect(b.state()).toEqual({
      history: [
        [8, 2, 4],
        [1, 1, 1],
      ],
    });
    b.load(undefined);
    expect(b.weights([1, 2])).toEqual([2, 1]);
  });

  it('createBalancer passes its config and uses the official defaults', () => {
    const o = createBalancer('dsmd-official', { k: 4, temperature: 3, eps: 0.5 }) as DsmdOfficialBalancer;
    expect(o.cfg).toEqual({ k: 4, temperature: 3, eps: 0.5 });
    expect((createBalancer('dsmd-official') as DsmdOfficialBalancer).cfg).toEqual({ k: 10, temperature: 1, eps: 1e-8 });
    expect(new DsmdOfficialBalancer().cfg).toEqual({ k: 10, temperature: 1, eps: 1e-8 });
    expect((createBalancer('dsmd-paper', { temperature: 3 }) as DsmdPaperBalancer).cfg).toEqual({ temperature: 3 });
    expect((createBalancer('dsmd-paper') as DsmdPaperBalancer).cfg).toEqual({ temperature: 1 });
    expect(new DsmdPaperBalancer().cfg).toEqual({ temperature: 1 });
    expect(createBalancer('static').weights([3, 4, 5])).toEqual([1, 1, 1]);
    expect(createBalancer('static').state()).toBeNull();
    expect(BALANCERS.map((x) => x.name)).toEqual(['dsmd-paper', 'dsmd-official', 'static', 'static-normalised']);
    for (const { name } of BALANCERS) expect(createBalancer(name).name).toBe(name);
  });

  it('register binds every balancer under TOKENS.BalancerRegistry', async () => {
    const c = createContainer();
    register(c);
    register(c); // twice is harmless
    const reg = registryOf<BalancerConfig, Balancer>(c, TOKENS.BalancerRegistry, 'balancer');
    for (const { name } of BALANCERS) expect(reg.has(name)).toBe(true);
    const b = await reg.create('static', { weights: [2, 3] }, { container: c });
    expect(b.weights([1, 1])).toEqual([2, 3]);
    await expect(reg.create('dwa', {}, { container: c })).rejects.toThrow(
      /^Unknown balancer 'dwa'. Available: dsmd-official, dsmd-paper, static, static-normalised.$/,
    );
    // The descriptions `distill train --help` lists.
    expect(BALANCERS.map((x) => x.description)).toEqual([
      expect.stringMatching(/DWA rates/),
      expect.stringMatching(/softmax\(adjusted/),
      expect.stringMatching(/^fixed weights/),
      expect.stringMatching(/normalise the loss sizes/),
    ]);
  });

  it('dsmd-paper: a softmax over rates in the millions stays finite (max-shifted), at any temperature', () => {
    const b = new DsmdPaperBalancer({ temperature: 2 });
    b.weights([1e-3, 1]);
    b.weights([1000, 1]);
    // rates [1e6, 1], r / T = [5e5, 0.5]: the softmax is [1, 0], so w = M x [1, 0] x magnitude [1, 1].
    expect(b.weights([1, 1])).toEqual([2, 0]);
  });

  it('dsmd-paper: history starts empty and restarts when the number of losses changes', () => {
    const b = new DsmdPaperBalancer();
    b.weights([1, 2]);
    expect(b.state()).toEqual({ history: [[1, 2]] });
    b.weights([1, 2]);
    // Two earlier steps of 2 losses, now 3 losses: no rates, magnitude only (max/L = [4, 2, 1]).
    expect(b.weights([1, 2, 4])).toEqual([4, 2, 1]);
    expect(b.lastTrace!.lossRates).toBeUndefined();
    b.load(null);
    expect(b.state()).toEqual({ history: [] });
  });

  for (const name of ['dsmd-official', 'dsmd-paper']) {
    it(`${name} keeps and restores its state (checkpoints)`, () => {
      const a = createBalancer(name);
      const seq = [
        [3, 1, 2, 0.5],
        [2.5, 1.1, 1.9, 0.4],
        [2, 1, 1.7, 0.45],
        [1.5, 0.9, 1.6, 0.3],
      ];
      a.weights(seq[0]);
      a.weights(seq[1]);
      const saved = JSON.parse(JSON.stringify(a.state()));
      const expected = [a.weights(seq[2]), a.weights(seq[3])];
      const b = createBalancer(name);
      b.load(saved);
      expect([b.weights(seq[2]), b.weights(seq[3])]).toEqual(expected);
    });
  }

  it('static-normalised: (10/M) max(L)/L_m from the first step, frozen after it, and kept across a resume', () => {
    const b = createBalancer('static-normalised');
    // a summed hinge of ~1,400 beside losses near 1: the hinge no longer swamps them
    expect(b.weights([8, 0.5, 0.25, 1400])).toEqual([2.5 * 175, 2.5 * 2800, 2.5 * 5600, 2.5]);
    expect(b.weights([1, 1, 1, 1])).toEqual([2.5 * 175, 2.5 * 2800, 2.5 * 5600, 2.5]);
    const resumed = createBalancer('static-normalised');
    resumed.load(JSON.parse(JSON.stringify(b.state())));
    expect(resumed.weights([3, 3, 3, 3])).toEqual([2.5 * 175, 2.5 * 2800, 2.5 * 5600, 2.5]);
    expect(() => createBalancer('static-normalised').weights([0, 0])).toThrow(/first step's losses are all 0/);
  });

  it('static-normalised: its scale k from the config, re-fixed when the number of losses changes, a missing state loads as none', () => {
    // k = 4, M = 2: w = (4/2) max(L)/L_m
    expect(createBalancer('static-normalised', { k: 4 }).weights([2, 1])).toEqual([2, 4]);
    const b = createBalancer('static-normalised');
    expect(b.weights([2, 1])).toEqual([5, 10]);
    // three losses now (another method's): fixed again from this step, (10/3) max(L)/L_m
    expect(b.weights([3, 1, 3])).toEqual([10 / 3, 10, 10 / 3]);
    // a checkpoint without balancer state (null): nothing fixed, the next step fixes the weights
    b.load(null);
    expect(b.state()).toEqual({ fixed: null });
    expect(b.weights([1, 4])).toEqual([20, 5]);
  });

  it('static uses its configured weights; errors name the problem', () => {
    expect(createBalancer('static', { weights: [1, 0.5] }).weights([3, 4])).toEqual([1, 0.5]);
    expect(() => createBalancer('static', { weights: [1] }).weights([3, 4])).toThrow(
      /1 weights configured for 2 losses/,
    );
    expect(() => createBalancer('dwa')).toThrow(/Unknown balancer 'dwa'/);
    expect(() => new DsmdOfficialBalancer().weights([1, Number.NaN])).toThrow(
      /dsmd-official: loss #1 is NaN; the balancer needs finite loss values/,
    );
    expect(() => new DsmdPaperBalancer().weights([Infinity])).toThrow(/dsmd-paper: loss #0 is Infinity/);
    expect(() => createBalancer('static').weights([])).toThrow(/static: no losses to weigh/);
    expect(() => createBalancer('dwa')).toThrow(
      /^Unknown balancer 'dwa'. Available: dsmd-paper, dsmd-official, static, static-normalised.$/,
    );
  });
});
