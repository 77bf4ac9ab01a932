/**
 * Table 3 helpers: parameter counts and encoder latency (warm-up, then the median of timed runs).
 */
export interface LatencyOptions {
  /** Batch sizes to time, e.g. [1, 64]: batch 1 gives per-item latency, a larger batch gives throughput. */
  batchSizes?: number[];
  /** Untimed calls per batch size before timing (default 3). */
  warmup?: number;
  /** Timed calls per batch size (default 10). */
  iters?: number;
  /** Clock in milliseconds (tests inject a fake one). */
  now?: () => number;
}

export interface LatencyResult {
  batch: number;
  /** Median milliseconds per call. */
  medianMs: number;
  /** Median milliseconds per item (medianMs / batch). */
  perItemMs: number;
  /** Items per second at the median (batch / medianMs * 1000). */
  itemsPerSec: number;
  /** Every timed call, in milliseconds. */
  samplesMs: number[];
}

export function medianOf(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** Time `fn(batch)` for each batch size. `fn` should run the encoder on a batch of that size and wait for the result. */
export async function measureLatency(
  fn: (batch: number) => Promise<void> | void,
  opts: LatencyOptions = {},
): Promise<LatencyResult[]> {
  const batchSizes = opts.batchSizes ?? [1, 64];
  const warmup = opts.warmup ?? 3;
  const iters = Math.max(1, opts.iters ?? 10);
  const now = opts.now ?? (() => performance.now());
  const out: LatencyResult[] = [];
  for (const batch of batchSizes) {
    for (let i = 0; i < warmup; i++) await fn(batch);
    const samplesMs: number[] = [];
    for (let i = 0; i < iters; i++) {
      const t0 = now();
      await fn(batch);
      samplesMs.push(now() - t0);
    }
    const medianMs = medianOf(samplesMs);
    out.push({
      batch,
      medianMs,
      perItemMs: medianMs / batch,
      itemsPerSec: medianMs > 0 ? (1000 * batch) / medianMs : Infinity,
      samplesMs,
    });
  }
  return out;
}

/** Number of parameters in a list of tensors/variables (anything with a shape or a size). */
export function countParameters(tensors: Iterable<{ shape: readonly number[] } | { size: number }>): number {
  let n = 0;
  for (const t of tensors) n += 'size' in t ? t.size : t.shape.reduce((a, b) => a * b, 1);
  return n;
}

/** "196.5M", "12.3K" */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}
