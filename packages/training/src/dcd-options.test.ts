import { describe, expect, it } from 'vitest';
import { Rng } from '@distill/core';
import { resolveConfig } from './config.js';
import { methodFor } from './method-registry.js';
import { createTrainingContainer as builtinsContainer } from './registries.js';

/** This test's own registries (the built-ins; there is no global container). */
const builtins = builtinsContainer();

// lossOptions.dcd reaches the DCD loss (docs/results.md: topK = batch size is what makes dcd learn on emoji).
const B = 16,
  D = 8;
const teacher = () => ({
  batch: B,
  teacherImage: new Rng(1).normalArray(B * D),
  teacherText: new Rng(2).normalArray(B * D),
});
const errorOf = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  return 'no error';
};

describe('lossOptions.dcd (topK, temperature, alpha of DCD)', () => {
  it('a config file sets them; the DCD method then scores topK candidates per row (default 8)', async () => {
    const dcdCfg = (dcd?: { topK?: number; alpha?: number }) =>
      resolveConfig({
        container: builtins,
        preset: 'smoke',
        overrides: { losses: 'dcd', batchSize: B, lossOptions: dcd ? { dcd } : {} },
      });
    const wide = dcdCfg({ topK: B, alpha: 0 });
    expect(wide.lossOptions.dcd).toEqual({ topK: B, alpha: 0 });
    for (const [cfg, K] of [
      [wide, B],
      [dcdCfg(), 8],
    ] as const) {
      for (const m of [await methodFor(cfg, builtins)]) {
        const feeds = m.createState(D, cfg).graph.feeds(teacher());
        expect(feeds.dcd_i2t_index.dims).toEqual([B * K]);
        expect(feeds.dcd_t2i_teacher.dims).toEqual([B, K]);
      }
    }
  });

  it('checks them: one line naming the key', () => {
    const err = (dcd: Record<string, unknown>) =>
      errorOf(() =>
        resolveConfig({ container: builtins, overrides: { losses: 'dcd', lossOptions: { dcd } as never } }),
      );
    expect(err({ topK: 1 })).toMatch(/lossOptions\.dcd\.topK: expected an integer >= 2/);
    expect(err({ alpha: 1.5 })).toMatch(/lossOptions\.dcd\.alpha: expected a number in \[0, 1\]/);
    expect(err({ temperature: 0 })).toMatch(/lossOptions\.dcd\.temperature: expected a number > 0/);
    expect(err({ k: 8 })).toMatch(/lossOptions\.dcd.*k/);
  });
});
