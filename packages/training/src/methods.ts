import { DistillError, tf, type Balancer, type LossInputs } from '@distill/core';
import type { TrainConfig } from './config.js';

/** Per-run mutable state of a method: its balancer and feature queues. */
export interface MethodState {
  balancer: Balancer;
  afterStep(teacherImage: Float32Array, teacherText: Float32Array, batch: number): void;
  save(): { balancer: unknown; queuePtr?: number; tensors: Record<string, { shape: number[]; data: Float32Array }> };
  load(balancer: unknown, tensors: Record<string, { shape: number[]; data: Float32Array }>, queuePtr?: number): void;
  dispose(): void;
}

export interface Method {
  name: string;
  needsTeacher: boolean;
  createState(dim: number, cfg: TrainConfig): MethodState;
  loss(inputs: LossInputs, state: MethodState): Record<string, tf.Scalar>;
}

const unitBalancer = (): Balancer => ({ name: 'static', weights: (l) => l.map(() => 1), state: () => null, load: () => undefined });

// L = (CE(S/τ, P) + CE(Sᵀ/τ, Pᵀ)) / 2 with S = s^I (s^T)ᵀ and P the rows' same-image targets (uniform over positives)
function contrastive(si: tf.Tensor2D, st: tf.Tensor2D, imageIds: Int32Array | undefined, temperature: number): tf.Scalar {
  const B = si.shape[0];
  const ids = imageIds ?? Int32Array.from({ length: B }, (_, i) => i);
  const target = new Float32Array(B * B);
  for (let i = 0; i < B; i++) {
    let n = 0;
    for (let j = 0; j < B; j++) if (ids[i] === ids[j]) n++;
    for (let j = 0; j < B; j++) if (ids[i] === ids[j]) target[i * B + j] = 1 / n;
  }
  const P = tf.tensor2d(target, [B, B]);
  const logits = tf.matMul(si, st, false, true).div(temperature);
  const i2t = tf.neg(tf.sum(tf.mul(P, tf.logSoftmax(logits, 1)), 1)).mean();
  const t2i = tf.neg(tf.sum(tf.mul(P, tf.logSoftmax(logits.transpose(), 1)), 1)).mean();
  return i2t.add(t2i).div(2) as tf.Scalar;
}

export function resolveMethod(cfg: TrainConfig): Method {
  if (cfg.losses === 'none') {
    return {
      name: 'none',
      needsTeacher: false,
      createState: () => ({ balancer: unitBalancer(), afterStep: () => undefined, save: () => ({ balancer: null, tensors: {} }), load: () => undefined, dispose: () => undefined }),
      loss: (x) => ({ contrastive: contrastive(x.studentImage, x.studentText, x.imageIds, cfg.lossOptions.temperature) }),
    };
  }
  throw new DistillError(`Unknown method '${cfg.losses}'.`, 2);
}
