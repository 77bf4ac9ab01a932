import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, PRESETS, resolveConfig } from './config.js';

describe('experiment config', () => {
  it('layers defaults <- preset <- file <- flags', () => {
    const c = resolveConfig({ preset: 'smoke', file: { batchSize: 16, lossOptions: { queueSize: 64 } }, overrides: { seed: 7, student: { pair: 'deit-albert' } } });
    expect(c.batchSize).toBe(16);
    expect(c.lossOptions).toEqual({ ...DEFAULT_CONFIG.lossOptions, ...PRESETS.smoke.lossOptions, queueSize: 64 });
    expect(c.seed).toBe(7);
    expect(c.student.pair).toBe('deit-albert');
    expect(c.student.preset).toBe('tiny');
    expect(c.schedule.epochs).toBe(2);
  });

  it('the paper preset carries the paper defaults', () => {
    const c = resolveConfig({ preset: 'paper' });
    expect([c.optimizer.lr, c.optimizer.weightDecay, c.batchSize, c.schedule.epochs, c.schedule.decayEpoch, c.schedule.decayFactor]).toEqual([1e-4, 1e-4, 64, 20, 10, 0.1]);
    expect([c.lossOptions.queueSize, c.lossOptions.temperature, c.student.preset, c.teacher.name]).toEqual([8192, 0.05, 'base', 'beit3']);
  });

  it('rejects bad values and unknown keys with the reason', () => {
    expect(() => resolveConfig({ overrides: { batchSize: 0 } })).toThrow(/batchSize must be a positive integer, got 0/);
    expect(() => resolveConfig({ overrides: { batchSize: 128, lossOptions: { queueSize: 64 } } })).toThrow(/queueSize \(64\) must be >= batchSize \(128\)/);
    expect(() => resolveConfig({ overrides: { lr: 1 } as never })).toThrow(/Unknown config key 'lr'/);
    expect(() => resolveConfig({ preset: 'huge' })).toThrow(/Unknown preset 'huge'/);
  });
});
