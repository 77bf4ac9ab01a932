import { describe, expect, it } from 'vitest';
import { lrScaleAt } from './schedule.js';

const cfg = (warmupSteps: number, decayEpoch = 2, decayFactor = 0.1) => ({
  schedule: { epochs: 4, decayEpoch, decayFactor, warmupSteps },
});

describe('learning-rate schedule', () => {
  it('linear warm-up: (step + 1) / warmupSteps, then 1', () => {
    const c = cfg(4);
    expect([0, 1, 2, 3, 4, 100].map((s) => lrScaleAt(c, 0, s))).toEqual([0.25, 0.5, 0.75, 1, 1, 1]);
    expect(lrScaleAt(cfg(0), 0, 0)).toBe(1); // no warm-up
  });

  it('step decay by decayFactor from decayEpoch on (epochs from 0), times the warm-up', () => {
    const c = cfg(0, 2, 0.1);
    expect([0, 1, 2, 3].map((e) => lrScaleAt(c, e, 1000))).toEqual([1, 1, 0.1, 0.1]);
    expect(lrScaleAt(cfg(10, 1, 0.5), 1, 4)).toBeCloseTo(0.25, 12);
  });
});
