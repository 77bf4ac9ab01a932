import * as tf from '@tensorflow/tfjs';

/**
 * Per-kernel wall-clock profile of a synchronous backend (wasm, cpu): every registered kernel of
 * the backend is wrapped with a timer, keyed by kernel name (BatchMatMul is split into
 * `BatchMatMul[2d]` and `BatchMatMul[batched]`, the latter being attention, which misses
 * XNNPACK's fast path). Only meaningful for backends whose kernels finish before they return.
 */
export interface KernelStat {
  kernel: string;
  calls: number;
  ms: number;
}

export interface KernelProfiler {
  reset(): void;
  stats(): KernelStat[];
  /** Restores the original kernels. */
  uninstall(): void;
}

type KernelArgs = { inputs: Record<string, tf.TensorInfo>; backend: unknown; attrs?: Record<string, unknown> };

export function installKernelProfiler(backendName: string): KernelProfiler {
  const table = new Map<string, KernelStat>();
  const originals = tf.getKernelsForBackend(backendName);
  let depth = 0;
  for (const k of originals) {
    const orig = k.kernelFunc as unknown as (a: KernelArgs) => unknown;
    tf.unregisterKernel(k.kernelName, backendName);
    tf.registerKernel({
      ...k,
      kernelFunc: ((a: KernelArgs) => {
        // Kernels that dispatch other kernels through the engine are counted once, at the outside.
        if (depth > 0) return orig(a);
        let key = k.kernelName;
        if (key === 'BatchMatMul' || key === '_FusedMatMul') {
          const s = a.inputs.a.shape;
          const batch = s.slice(0, -2).reduce((x, y) => x * y, 1);
          key += batch > 1 ? '[batched]' : '[2d]';
        }
        depth++;
        const t0 = performance.now();
        try {
          return orig(a);
        } finally {
          const dt = performance.now() - t0;
          depth--;
          const e = table.get(key) ?? { kernel: key, calls: 0, ms: 0 };
          e.calls++;
          e.ms += dt;
          table.set(key, e);
        }
      }) as unknown as tf.KernelFunc,
    });
  }
  return {
    reset: () => table.clear(),
    stats: () => [...table.values()].sort((a, b) => b.ms - a.ms),
    uninstall() {
      for (const k of originals) {
        tf.unregisterKernel(k.kernelName, backendName);
        tf.registerKernel(k);
      }
    },
  };
}

/** Markdown table: kernel, calls, ms, share of the total. */
export function formatKernelTable(stats: KernelStat[], steps = 1, limit = 20): string {
  const total = stats.reduce((s, x) => s + x.ms, 0);
  const lines = ['| kernel | calls/step | ms/step | share |', '|---|---:|---:|---:|'];
  for (const s of stats.slice(0, limit)) {
    lines.push(
      `| ${s.kernel} | ${(s.calls / steps).toFixed(0)} | ${(s.ms / steps).toFixed(1)} | ${((100 * s.ms) / total).toFixed(1)}% |`,
    );
  }
  const rest = stats.slice(limit);
  if (rest.length) {
    const ms = rest.reduce((a, x) => a + x.ms, 0);
    lines.push(
      `| (${rest.length} others) | ${(rest.reduce((a, x) => a + x.calls, 0) / steps).toFixed(0)} | ${(ms / steps).toFixed(1)} | ${((100 * ms) / total).toFixed(1)}% |`,
    );
  }
  lines.push(
    `| **total in kernels** | ${(stats.reduce((a, x) => a + x.calls, 0) / steps).toFixed(0)} | ${(total / steps).toFixed(1)} | 100% |`,
  );
  return lines.join('\n');
}
