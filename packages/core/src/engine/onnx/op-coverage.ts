/**
 * Small graphs covering every op family the onnx engine emits, forward and backward (the two models
 * of `Graph.compileTraining`), with seeded feeds: run on two execution providers, their outputs can
 * be compared and the node placements read from onnxruntime's verbose log (which nodes fall back
 * from WebGPU to the CPU). Used by webgpu.test.ts and `op-coverage-run.ts` (the child process).
 */
import { l2NormalizeOps, Rng } from '@distill/base';
import { buildingFor, Graph, type GraphDevice, type Sym, onnxOps as op } from '@distill/autodiff';
import { graphOps } from '../../tensor-ops/graph-ops.js';

/** L2 normalisation as the engine emits it (core's one definition on the graph builder). */
const l2Normalize = (x: Sym): Sym => l2NormalizeOps(graphOps(), x);

export interface CoverageModel {
  /** `<case>/forward` or `<case>/backward`. */
  label: string;
  model: Uint8Array;
  feeds: Record<string, { dtype: 'float32' | 'int64'; data: number[]; dims: number[] }>;
  outputs: string[];
  /** ONNX op types in the model as built (before onnxruntime's graph optimisations). */
  ops: string[];
}

interface CaseSpec {
  name: string;
  build: (g: Graph) => { outputs: Sym[]; wrt: Sym[] };
}

const spec = (name: string, build: CaseSpec['build']): CaseSpec => ({ name, build });

/** The cases: each one a forward graph from the engine's ops, differentiated w.r.t. its parameters. */
export const COVERAGE_CASES: CaseSpec[] = [
  spec('linear+geluTanh', (g) => {
    const x = g.input('x', [6, 8]);
    const w = g.input('w', [8, 5], { requiresGrad: true });
    const b = g.input('b', [5], { requiresGrad: true });
    return { outputs: [op.geluTanh(op.linear(x, w, b))], wrt: [w, b] };
  }),
  spec('linear3d+geluErf', (g) => {
    const x = g.input('x', [2, 3, 8], { requiresGrad: true });
    const w = g.input('w', [8, 4], { requiresGrad: true });
    return { outputs: [op.geluErf(op.linear(x, w))], wrt: [x, w] };
  }),
  spec('layerNorm', (g) => {
    const x = g.input('x', [5, 16], { requiresGrad: true });
    const gamma = g.input('gamma', [16], { requiresGrad: true });
    const beta = g.input('beta', [16], { requiresGrad: true });
    return { outputs: [op.layerNorm(x, gamma, beta)], wrt: [x, gamma, beta] };
  }),
  spec('attention', (g) => {
    const [B, H, L, D] = [2, 2, 5, 4];
    const q = g.input('q', [B, H, L, D], { requiresGrad: true });
    const k = g.input('k', [B, H, L, D], { requiresGrad: true });
    const v = g.input('v', [B, H, L, D], { requiresGrad: true });
    const scores = op.scale(op.matmul(q, op.transpose(k, [0, 1, 3, 2])), 1 / Math.sqrt(D));
    const ctx = op.matmul(op.softmax(scores), v);
    const merged = op.reshape(op.transpose(ctx, [0, 2, 1, 3]), [B * L, H * D]);
    const [a, b2] = op.split(merged, 1, [3, 5]);
    return { outputs: [op.concat([b2, a], 1)], wrt: [q, k, v] };
  }),
  spec('gather (embedding)', (g) => {
    const table = g.input('table', [7, 6], { requiresGrad: true });
    const ids = g.input('ids', [3, 4], { dtype: 'int64' });
    return { outputs: [op.gather(table, ids)], wrt: [table] };
  }),
  spec('conv2d', (g) => {
    const x = g.input('x', [2, 3, 9, 9], { requiresGrad: true });
    const w = g.input('w', [4, 3, 3, 3], { requiresGrad: true });
    const b = g.input('b', [4], { requiresGrad: true });
    const [pt, pb] = op.samePads(9, 3, 2);
    return { outputs: [op.relu(op.conv2d(x, w, b, 2, [pt, pt, pb, pb]))], wrt: [x, w, b] };
  }),
  spec('elementwise', (g) => {
    const x = g.input('x', [4, 6], { requiresGrad: true });
    const y = g.input('y', [4, 6], { requiresGrad: true });
    const pos = op.add(op.mul(x, x), g.scalar(0.5));
    const t = op.add(op.tanh(x), op.sigmoid(y));
    const u = op.div(op.sqrt(pos), op.add(op.exp(op.neg(op.abs(y))), g.scalar(1)));
    const v = op.sub(op.relu(x), op.scale(op.log(pos), 0.3));
    return { outputs: [op.add(op.mul(t, u), v)], wrt: [x, y] };
  }),
  spec('reductions+shape', (g) => {
    const x = g.input('x', [3, 4, 5], { requiresGrad: true });
    const bias = g.input('bias', [1, 5], { requiresGrad: true });
    const s = op.reduceSum(x, [1]);
    const m = op.reduceMean(x, [2], true);
    const mx = op.reduceMax(x, [1]);
    const e = op.expand(bias, [3, 5]);
    const n = l2Normalize(op.add(op.add(s, mx), e));
    const sl = op.sliceAxis(op.reshape(m, [3, 4]), 1, 1, 3);
    return { outputs: [op.concat([n, sl], 1)], wrt: [x, bias] };
  }),
  spec('contrastive loss', (g) => {
    // InfoNCE-like: normalised embeddings, similarity logits, log-sum-exp with a constant max shift, log1p and a hinge
    const a = g.input('a', [4, 6], { requiresGrad: true });
    const b = g.input('b', [4, 6], { requiresGrad: true });
    const na = l2Normalize(a);
    const nb = l2Normalize(b);
    const logits = op.scale(op.gemm(na, nb, undefined, { transB: true }), 10);
    const shift = op.reduceMaxConst(logits, [1]);
    const lse = op.add(op.log(op.reduceSum(op.exp(op.sub(logits, shift)), [1], true)), shift);
    const eye = g.constant(
      Array.from({ length: 16 }, (_, i) => (i % 5 === 0 ? 1 : 0)),
      [4, 4],
    );
    const pos = op.reduceSum(op.mul(logits, eye), [1], true);
    const nce = op.reduceMean(op.sub(lse, pos), [0, 1]);
    const soft = op.reduceMean(op.log1p(op.exp(op.neg(pos))), [0, 1]);
    const hinge = op.reduceMean(op.maximumConst(op.sub(logits, pos), 0), [0, 1]);
    return { outputs: [op.add(op.add(nce, soft), op.scale(hinge, 0.1))], wrt: [a, b] };
  }),
];

/**
 * Forward and backward models of every case, with seeded feeds (the backward run's saved activations
 * come from the forward run), built for `device` (the gather gradient has a WebGPU form).
 */
export function coverageModels(
  seed = 17,
  device: GraphDevice = 'cpu',
): {
  name: string;
  forward: CoverageModel;
  backward: Omit<CoverageModel, 'feeds'> & { feeds: CoverageModel['feeds']; fromForward: string[] };
}[] {
  return COVERAGE_CASES.map((c, ci) => {
    const rng = new Rng(seed + ci);
    const g = new Graph();
    const { outputs, wrt } = c.build(g);
    const nForward = g.nodes.length;
    const tg = buildingFor(device, () => g.compileTraining(outputs, wrt));
    const fwdOps = [...new Set(g.nodes.slice(0, nForward).map((n) => n.op))];
    const bwdOps = [...new Set(g.nodes.slice(nForward).map((n) => n.op))];
    const feeds: CoverageModel['feeds'] = {};
    for (const s of g.inputs) {
      if (s.dtype === 'int64') {
        const rows = g.values.get('table')?.shape[0] ?? 2;
        // repeated ids (row 2 three times), one row never used
        feeds[s.name] = {
          dtype: 'int64',
          dims: [...s.shape],
          data: Array.from({ length: s.size }, (_, i) => (i % 4 === 0 ? 2 : rng.int(rows - 1))),
        };
      } else
        feeds[s.name] = {
          dtype: 'float32',
          dims: [...s.shape],
          data: Array.from({ length: s.size }, () => rng.normal()),
        };
    }
    const pick = (names: string[]) => Object.fromEntries(names.filter((n) => feeds[n]).map((n) => [n, feeds[n]]));
    return {
      name: c.name,
      forward: {
        label: `${c.name}/forward`,
        model: tg.forward.model,
        feeds: pick(tg.forward.inputs),
        outputs: tg.forward.outputs,
        ops: fwdOps,
      },
      backward: {
        label: `${c.name}/backward`,
        model: tg.backward.model,
        feeds: pick(tg.backward.inputs),
        fromForward: tg.saved,
        outputs: tg.backward.outputs,
        ops: bwdOps,
      },
    };
  });
}
