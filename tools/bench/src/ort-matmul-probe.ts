/**
 * What would onnxruntime-node buy? Times every matmul of one reference training step (forward,
 * input gradients, weight gradients, attention) in onnxruntime-node (1 and 2 intra-op threads)
 * and in tfjs-wasm (plain, and with installWasmFastKernels), in the same run.
 *   node --conditions=@distill/source --import tsx tools/bench/src/ort-matmul-probe.ts
 * The ONNX models (one MatMul node each) are written with @distill/autodiff's encodeModel.
 */
import * as tf from '@tensorflow/tfjs';
import { encodeModel } from '@distill/autodiff';
import { initRuntime, installWasmFastKernels } from '@distill/core';
import { REFERENCE_CONFIG } from './reference-model.js';

/** One MatMul node, A [aShape] @ B [bShape] -> Y, as ONNX model bytes. */
export function matmulModel(aShape: number[], bShape: number[]): Uint8Array {
  const outShape = [...aShape.slice(0, -1), bShape[bShape.length - 1]];
  return encodeModel({
    nodes: [{ op: 'MatMul', name: 'mm', inputs: ['A', 'B'], outputs: ['Y'] }],
    initializers: [],
    inputs: [
      { name: 'A', dtype: 'float32', shape: aShape },
      { name: 'B', dtype: 'float32', shape: bShape },
    ],
    outputs: [{ name: 'Y', dtype: 'float32', shape: outShape }],
    opset: 17,
  });
}

/** [a shape, b shape, count per step] of every matmul in one step of the reference model. */
export function stepMatmuls(c = REFERENCE_CONFIG): [number[], number[], number][] {
  const T = c.batch * c.seq;
  const D = c.dim;
  const F = c.mlp;
  const L = c.layers;
  const bh = [c.batch * c.heads, c.seq, D / c.heads];
  const S = c.seq;
  const dh = D / c.heads;
  return [
    // forward
    [[T, D], [D, 3 * D], L],
    [[T, D], [D, D], L],
    [[T, D], [D, F], L],
    [[T, F], [F, D], L],
    // input gradients (none for the first layer's QKV)
    [[T, 3 * D], [3 * D, D], L - 1],
    [[T, D], [D, D], L],
    [[T, F], [F, D], L],
    [[T, D], [D, F], L],
    // weight gradients
    [[D, T], [T, 3 * D], L],
    [[D, T], [T, D], L],
    [[D, T], [T, F], L],
    [[F, T], [T, D], L],
    // attention: scores, context (forward); 2 each in backward
    [[bh[0], S, dh], [bh[0], dh, S], 2 * L],
    [[bh[0], S, S], [bh[0], S, dh], 4 * L],
  ];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function main() {
  const ort = await import('onnxruntime-node');
  await initRuntime('wasm', { quiet: true });
  const reps = 5;
  const rows: { shape: string; count: number; flop: number; ms: Record<string, number> }[] = [];
  for (const [as, bs, count] of stepMatmuls()) {
    const key = `${as.join('x')} @ ${bs.join('x')}`;
    const a = new Float32Array(as.reduce((x, y) => x * y)).map(() => Math.random() - 0.5);
    const b = new Float32Array(bs.reduce((x, y) => x * y)).map(() => Math.random() - 0.5);
    const ms: Record<string, number> = {};
    for (const threads of [1, 2]) {
      const model = matmulModel(as, bs);
      const s = await ort.InferenceSession.create(model, {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionProviders: ['cpu'],
      });
      const feeds = { A: new ort.Tensor('float32', a, as), B: new ort.Tensor('float32', b, bs) };
      const t: number[] = [];
      for (let i = 0; i < reps + 1; i++) {
        const t0 = performance.now();
        await s.run(feeds);
        if (i) t.push(performance.now() - t0);
      }
      ms[`ort-${threads}t`] = median(t);
      await s.release();
    }
    for (const variant of ['wasm', 'wasm-fast']) {
      const fast = variant === 'wasm-fast' ? installWasmFastKernels() : undefined;
      const ta = tf.tensor(a, as);
      const tb = tf.tensor(b, bs);
      const t: number[] = [];
      for (let i = 0; i < reps + 1; i++) {
        const t0 = performance.now();
        const y = tf.matMul(ta, tb);
        y.dataSync();
        if (i) t.push(performance.now() - t0);
        y.dispose();
      }
      ms[variant] = median(t);
      tf.dispose([ta, tb]);
      fast?.uninstall();
    }
    const flop = 2 * as.reduce((x, y) => x * y) * bs[bs.length - 1];
    rows.push({ shape: key, count, flop, ms });
    process.stderr.write(
      `${key} x${count}: ${JSON.stringify(Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, +v.toFixed(2)])))}\n`,
    );
  }
  const engines = Object.keys(rows[0].ms);
  const lines = [
    `| matmul | per step | ${engines.join(' ms | ')} ms |`,
    `|---|---:|${engines.map(() => '---:').join('|')}|`,
  ];
  for (const r of rows)
    lines.push(`| ${r.shape} | ${r.count} | ${engines.map((e) => r.ms[e].toFixed(2)).join(' | ')} |`);
  const totals = engines.map((e) => rows.reduce((s, r) => s + r.count * r.ms[e], 0));
  const flops = rows.reduce((s, r) => s + r.count * r.flop, 0);
  lines.push(
    `| **all matmuls of one step** (${(flops / 1e9).toFixed(1)} GFLOP) | | ${totals.map((t) => `**${t.toFixed(0)}**`).join(' | ')} |`,
  );
  lines.push(`| GFLOP/s | | ${totals.map((t) => (flops / t / 1e6).toFixed(1)).join(' | ')} |`);
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((e) => {
  process.stderr.write(String((e as Error).stack ?? e) + '\n');
  process.exit(1);
});
