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

describe('latency helpers: defaults and edge cases', () => {
  it('defaults to batches 1 and 64, 3 warm-ups and 10 timed calls; at least one timed call', async () => {
    const seen: number[] = [];
    let t = 0;
    const res = await measureLatency((b) => void seen.push(b), { now: () => (t += 2) });
    expect(seen).toEqual([...Array(13).fill(1), ...Array(13).fill(64)]);
    // each timed call reads the clock twice, 2 ms apart
    expect(res.map((r) => [r.batch, r.medianMs, r.samplesMs.length])).toEqual([
      [1, 2, 10],
      [64, 2, 10],
    ]);
    expect(res[1].perItemMs).toBe(2 / 64);
    expect(res[1].itemsPerSec).toBe(32_000);
    const one = await measureLatency(() => undefined, { batchSizes: [4], warmup: 0, iters: 0, now: () => 0 });
    expect(one).toEqual([{ batch: 4, medianMs: 0, perItemMs: 0, itemsPerSec: Infinity, samplesMs: [0] }]);
  });

  it('awaits each call before timing the next', async () => {
    let t = 0;
    const res = await measureLatency(
      async () => {
        await new Promise((r) => setTimeout(r, 1));
        t += 5;
      },
      { batchSizes: [2], warmup: 1, iters: 3, now: () => t },
    );
    expect(res[0].samplesMs).toEqual([5, 5, 5]);
  });

  it('formats counts at each unit boundary; the median leaves its input unsorted', () => {
    expect([999, 1000, 12_345, 999_999, 1e6, 1_250_000, 1e9, 2.5e9].map(formatCount)).toEqual([
      '999',
      '1.0K',
      '12.3K',
      '1000.0K',
      '1.0M',
      '1.3M',
      '1.00B',
      '2.50B',
    ]);
    const xs = [5, 1, 3];
    expect(medianOf(xs)).toBe(3);
    expect(xs).toEqual([5, 1, 3]);
    expect(medianOf([10, 2])).toBe(6);
    expect(countParameters([])).toBe(0);
    expect(countParameters([{ shape: [] }])).toBe(1);
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
    const entry = reg.get('recall');
    expect(entry.defaults).toEqual({ engine: 'auto', blockRows: 256 });
    expect(entry.description).toMatch(/^Grouped Recall@1\/5\/10 both ways, RSUM, median\/mean rank \(pessimistic ties/);
    expect(() => reg.get('map')).toThrow(/^Unknown evaluator 'map'. Available: recall.$/);
    // The configured options reach the evaluator, over the defaults.
    const js = (await reg.create('recall', { engine: 'js' }, { container: c })) as unknown as { options: unknown };
    expect(js.options).toEqual({ engine: 'js', blockRows: 256 });
    // idempotent: a second register keeps the one entry (no "already registered" error)
    expect(() => register(c)).not.toThrow();
    expect(reg.get('recall')).toBe(entry);
  });
});
