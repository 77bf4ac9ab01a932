import { describe, it, expect } from 'vitest';
import { countParameters, formatCount, measureLatency, medianOf } from './latency.js';

describe('latency helpers', () => {
  it('warms up, then reports the median per batch size', async () => {
    // A fake clock: call k of a batch takes k ms, so the median of 5 timed calls (after 2 warm-ups) is 5 ms.
    let t = 0;
    let calls = 0;
    const seen: number[] = [];
    const res = await measureLatency(
      (b) => {
        seen.push(b);
        calls++;
        t += calls;
      },
      { batchSizes: [1, 8], warmup: 2, iters: 5, now: () => t },
    );
    expect(seen).toEqual([1, 1, 1, 1, 1, 1, 1, 8, 8, 8, 8, 8, 8, 8]);
    expect(res[0]).toMatchObject({ batch: 1, medianMs: 5, perItemMs: 5, itemsPerSec: 200, samplesMs: [3, 4, 5, 6, 7] });
    expect(res[1]).toMatchObject({ batch: 8, medianMs: 12, perItemMs: 1.5 });
  });

  it('counts parameters and formats them', () => {
    expect(countParameters([{ shape: [768, 256] }, { shape: [256] }, { size: 10 }])).toBe(768 * 256 + 256 + 10);
    expect(formatCount(196_500_000)).toBe('196.5M');
    expect(medianOf([3, 1, 2, 10])).toBe(2.5);
  });
});

describe('registry', () => {
  it('binds the recall evaluator under TOKENS.EvaluatorRegistry', async () => {
    const { createContainer, registryOf, TOKENS } = await import('@distill/core');
    const { register } = await import('./index.js');
    const c = createContainer();
    register(c);
    const reg = registryOf<object, { evaluate: (...a: never[]) => unknown }>(c, TOKENS.EvaluatorRegistry, 'evaluator');
    const ev = (await reg.create('recall', {}, { container: c })) as unknown as import('@distill/core').Evaluator;
    const m = ev.evaluate(Float32Array.from([1, 0, 0, 1]), Float32Array.from([0, 1, 1, 0]), 2, Int32Array.from([0, 1]));
    // Each caption equals the other image's vector: every R@1 misses, and with 2 candidates every R@5/R@10 hits.
    expect([m.i2t_r1, m.t2i_r1, m.i2t_r5, m.rsum]).toEqual([0, 0, 100, 400]);
  });
});
