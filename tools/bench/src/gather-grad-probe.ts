/**
 * Formulations of the embedding gradient dTable[v] = sum_{n: ids[n] = v} dY[n] in onnxruntime, timed at
 * 1 and 2 intra-op threads, with the entries that lost an update (off the float64 sum by more than 1e-3):
 *   node --conditions=@distill/source --import tsx tools/bench/src/gather-grad-probe.ts [V D N runs]
 * (default: BERT-base, vocab 30522 x 768, ids [64, 32] = 2048 tokens, skewed like text). Options:
 *   scatternd-add  ScatterND(reduction='add'), the old gradient: races at 2+ threads;
 *   sorted-segment the gradient of `gather` now (sort, float64 running sum, non-reducing ScatterND);
 *   scatter-elements  ScatterElements(axis 0, reduction='add') with the ids expanded to [N, D];
 *   unique-onehot  Unique, OneHot [N, U], Gemm -> [U, D], non-reducing ScatterND;
 *   zeros          the [V, D] zero table and its copy out alone (the floor every option pays).
 * The dense OneHot(ids, V)^T dY Gemm is left out: V N D = 48 GFLOP multiply-adds at BERT-base size.
 * Wall times include copying the [V, D] result out (the same for all); kernel_ms sums onnxruntime's
 * per-node profile of one run (min over runs), and the top nodes say where it goes.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Graph, type Sym, onnxOps as op } from '@distill/autodiff';
import { OnnxRunner } from '@distill/core';

const [V, D, N, RUNS] = [30522, 768, 2048, 8].map((d, i) => Number(process.argv[2 + i] ?? d));
let seed = 11;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed / 2147483648);
const ids = BigInt64Array.from({ length: N }, () =>
  BigInt(Math.min(V - 1, Math.floor(Math.exp(rnd() * Math.log(V))) - 1)),
);
const dy = Float32Array.from({ length: N * D }, () => rnd() - 0.5);
const ref = new Float64Array(V * D);
ids.forEach((id, n) => {
  for (let j = 0; j < D; j++) ref[Number(id) * D + j] += dy[n * D + j];
});

/** The model, and the names of its dY input and its gradient output. */
function build(option: string): [Uint8Array, string, string] {
  const g = new Graph();
  const dY = g.input('dy', [N, D]);
  const id = g.input('ids', [N], { dtype: 'int64' });
  const zeros = () => g.emit('ConstantOfShape', [g.ints([V, D])], [[V, D]], { dtype: 'float32' })[0];
  const col = () => g.emit('Reshape', [id, g.ints([N, 1])], [[N, 1]])[0];
  let out: Sym;
  if (option === 'scatternd-add')
    out = g.emit('ScatterND', [zeros(), col(), dY], [[V, D]], { attrs: { reduction: 'add' } })[0];
  else if (option === 'sorted-segment') {
    const h = new Graph();
    const table = h.input('table', [V, D], { requiresGrad: true });
    const { backward } = h.compileTraining([op.gather(table, h.input('ids', [N], { dtype: 'int64' }))], [table]);
    return [backward.model, 'seed_0', 'grad_0'];
  } else if (option === 'scatter-elements') {
    const idx = g.emit('Expand', [col(), g.ints([N, D])], [[N, D]])[0];
    out = g.emit('ScatterElements', [zeros(), idx, dY], [[V, D]], { attrs: { axis: 0, reduction: 'add' } })[0];
  } else if (option === 'unique-onehot') {
    const [u, , inverse] = g.emit('Unique', [id], [[N], [N], [N], [N]], { attrs: { sorted: 0 } });
    const oneHot = g.emit('OneHot', [inverse, g.emit('Shape', [u], [[1]])[0], g.constant([0, 1], [2])], [[N, N]], {
      attrs: { axis: -1 },
      dtype: 'float32',
    })[0];
    const sums = g.emit('Gemm', [oneHot, dY], [[N, D]], { attrs: { transA: 1 } })[0];
    out = g.emit('ScatterND', [zeros(), g.emit('Unsqueeze', [u, g.ints([1])], [[N, 1]])[0], sums], [[V, D]])[0];
  } else if (option === 'zeros')
    out = g.emit('Add', [zeros(), g.emit('ReduceSum', [dY], [[]], { attrs: { keepdims: 0 } })[0]], [[V, D]])[0];
  else throw new Error(`unknown option ${option}`);
  return [g.encode([out], ['out']), 'dy', 'out'];
}

console.log(`V=${V} D=${D} N=${N} distinct ids=${new Set(ids).size} runs=${RUNS}`);
for (const option of ['zeros', 'scatternd-add', 'sorted-segment', 'scatter-elements', 'unique-onehot']) {
  for (const threads of [1, 2]) {
    const [model, dyName, outName] = build(option);
    const profileDir = mkdtempSync(join(tmpdir(), 'distill-gather-probe-'));
    const r = await OnnxRunner.create(model, { threads, profileDir });
    const times: number[] = [];
    let lost = 0;
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      const [o] = await r.run({ [dyName]: { data: dy, dims: [N, D] }, ids: { data: ids, dims: [N] } }, [outName]);
      times.push(performance.now() - t0);
      if (option !== 'zeros') for (let k = 0; k < o.length; k++) if (Math.abs(o[k] - ref[k]) > 1e-3) lost++;
    }
    await r.release();
    times.sort((a, b) => a - b);
    // per-node kernel times (us) of each run, from the profile written at release
    const runs: Map<string, number>[] = [];
    for (const f of readdirSync(profileDir)) {
      for (const e of JSON.parse(readFileSync(join(profileDir, f), 'utf8')) as {
        cat: string;
        name: string;
        dur: number;
        args?: { op_name?: string };
      }[]) {
        if (e.cat === 'Session' && e.name === 'model_run') runs.push(new Map());
        else if (e.cat === 'Node' && e.name.endsWith('_kernel_time') && runs.length) {
          const m = runs[runs.length - 1];
          m.set(e.args!.op_name!, (m.get(e.args!.op_name!) ?? 0) + e.dur);
        }
      }
    }
    rmSync(profileDir, { recursive: true, force: true });
    const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    const best = runs.filter((m) => m.size).sort((a, b) => total(a) - total(b))[0] ?? new Map<string, number>();
    const top = [...best]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 4)
      .map(([k, us]) => `${k} ${(us / 1000).toFixed(1)}`)
      .join(', ');
    console.log(
      `${option.padEnd(17)} threads=${threads} wall_min_ms=${times[0].toFixed(1)} wall_median_ms=${times[RUNS >> 1].toFixed(1)} kernel_ms=${(total(best) / 1000).toFixed(1)} (${top}) lost_entries=${option === 'zeros' ? '-' : lost}`,
    );
  }
}
