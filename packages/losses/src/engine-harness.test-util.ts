import { graphOps, OnnxRunner, tf, tfOps, type Ops } from '@distill/core';
import { Graph, type Sym } from '@distill/autodiff';

/** The losses' test harness: one loss definition over Ops<T> run on the tfjs engine and as an onnx graph, value and gradients. */
export interface In {
  data: Float32Array | Int32Array;
  shape: number[];
  /** Differentiate w.r.t. this input. */
  grad?: boolean;
  int?: boolean;
}
export type LossFn = <T>(o: Ops<T>, x: Record<string, T>) => T;

export async function onGraph(
  f: LossFn,
  inputs: Record<string, In>,
): Promise<{ value: number; grads: Float32Array[] }> {
  const g = new Graph();
  const x: Record<string, Sym> = Object.fromEntries(
    Object.entries(inputs).map(([k, v]) => [
      k,
      g.input(k, v.shape, { dtype: v.int ? 'int64' : 'float32', requiresGrad: !!v.grad }),
    ]),
  );
  const y = f(graphOps(), x);
  const wrt = Object.keys(inputs).filter((k) => inputs[k].grad);
  const grads = g.gradients(
    [y],
    [g.scalar(1)],
    wrt.map((k) => x[k]),
  );
  const names = ['y', ...wrt.map((k) => `d_${k}`)];
  const runner = await OnnxRunner.create(g.encode([y, ...grads], names), { threads: 2 });
  const used = new Set(g.inputs.map((s) => s.name));
  const feeds = Object.fromEntries(
    Object.entries(inputs)
      .filter(([k]) => used.has(k))
      .map(([k, v]) => [
        k,
        { data: v.int ? BigInt64Array.from(v.data, (n) => BigInt(n)) : (v.data as Float32Array), dims: v.shape },
      ]),
  );
  const out = await runner.run(feeds, names);
  await runner.release();
  return { value: out[0][0], grads: out.slice(1) };
}

export function onTfjs(f: LossFn, inputs: Record<string, In>): { value: number; grads: Float32Array[] } {
  return tf.tidy(() => {
    const o = tfOps();
    const c = Object.fromEntries(
      Object.entries(inputs).map(([k, v]) => [
        k,
        v.int ? tf.tensor(v.data, v.shape, 'int32') : tf.tensor(v.data, v.shape),
      ]),
    );
    const wrt = Object.keys(inputs).filter((k) => inputs[k].grad);
    const { value, grads } = tf.valueAndGrads(
      (...xs: tf.Tensor[]) => f(o, { ...c, ...Object.fromEntries(wrt.map((k, i) => [k, xs[i]])) }) as tf.Scalar,
    )(wrt.map((k) => c[k]));
    return { value: value.dataSync()[0], grads: grads.map((gr) => Float32Array.from(gr.dataSync())) };
  });
}
