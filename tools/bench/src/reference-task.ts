import * as tf from '@tensorflow/tfjs';
import {
  ADAMW_DEFAULTS,
  type AdamWConfig,
  type ReferenceConfig,
  adamwUpdate,
  createReferenceModel,
  referenceGrads,
} from './reference-model.js';
import type { DataParallelTask } from './data-parallel.js';

/** Data-parallel task for the benchmark's reference model: each worker trains on its rows of the batch. */
export interface ReferenceTaskInit {
  config: ReferenceConfig;
  seed: number;
  opt?: AdamWConfig;
}

/** Rows [start, end) of a batch of `batch` split into `count` near-equal shards. */
export function shardRange(batch: number, index: number, count: number): [number, number] {
  const base = Math.floor(batch / count);
  const extra = batch % count;
  const start = index * base + Math.min(index, extra);
  return [start, start + base + (index < extra ? 1 : 0)];
}

export function createTask(init: unknown, shard: { index: number; count: number }): DataParallelTask {
  const { config, seed, opt = ADAMW_DEFAULTS } = init as ReferenceTaskInit;
  if (config.batch < shard.count)
    throw new Error(`batch ${config.batch} is smaller than the worker count ${shard.count}`);
  const model = createReferenceModel(config, seed);
  const [start, end] = shardRange(config.batch, shard.index, shard.count);
  const x = model.x.slice([start, 0, 0], [end - start, -1, -1]);
  const target = model.target.slice([start, 0], [end - start, -1]);
  tf.dispose([model.x, model.target]);
  model.x = x;
  model.target = target;
  model.config = { ...config, batch: end - start };
  const weight = (end - start) / config.batch;
  return {
    sizes: () => model.params.map((p) => p.size),
    lossAndGrads() {
      const { loss, grads } = referenceGrads(model);
      const out = { loss: loss.dataSync()[0], weight, grads: grads.map((g) => g.dataSync() as Float32Array) };
      tf.dispose([loss, ...grads]);
      return out;
    },
    applyGrads(grads) {
      const ts = grads.map((g, j) => tf.tensor(g, model.params[j].shape));
      adamwUpdate(model, ts, opt);
      tf.dispose(ts);
    },
    params: () => model.params.map((p) => p.dataSync() as Float32Array),
  };
}
