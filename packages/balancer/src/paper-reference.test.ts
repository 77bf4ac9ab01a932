import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createBalancer } from './balancers.js';

/**
 * The dsmd-paper balancer against an outside float64 reference (fixtures/paper-balancer.json, from
 * tools/parity/loss_gradients.py, written from spec dsmd-dcd.md eqs 15-17, not from this package):
 * the effective weights w_m a_m of every call over loss sequences, at temperatures 1 and 0.5.
 */
const fx = JSON.parse(readFileSync(new URL('./fixtures/paper-balancer.json', import.meta.url), 'utf8')) as {
  sequences: Record<string, { temperature: number; losses: number[][]; weights: number[][] }>;
};

describe('dsmd-paper balancer = float64 PyTorch reference', () => {
  it('covers at least six calls and two temperatures', () => {
    const s = Object.values(fx.sequences);
    expect(Math.max(...s.map((x) => x.losses.length))).toBeGreaterThanOrEqual(6);
    expect(new Set(s.map((x) => x.temperature)).size).toBeGreaterThanOrEqual(2);
  });

  for (const [name, seq] of Object.entries(fx.sequences)) {
    it(`${name} (T = ${seq.temperature})`, () => {
      const b = createBalancer('dsmd-paper', { temperature: seq.temperature });
      seq.losses.forEach((L, t) => {
        const got = b.weights(L);
        expect(got).toHaveLength(L.length);
        got.forEach((w, m) =>
          expect(
            Math.abs(w - seq.weights[t][m]) / Math.abs(seq.weights[t][m]),
            `call ${t + 1}, loss ${m}`,
          ).toBeLessThan(1e-9),
        );
      });
    });
  }
});
