import { tf, tfOps, type Ops, type TensorParams, type TokenizedBatch } from '@distill/core';
import type { ParamSpec, Params } from './params.js';

export interface EncoderOutput {
  /** The encoder's feature before the projection head: [B, featureDim]. */
  features: tf.Tensor2D;
  lastHiddenState?: tf.Tensor3D;
  poolerOutput?: tf.Tensor2D;
}

/** What a tower returns on any engine: features [B, featureDim]; transformers also their last hidden state and pooler. */
export interface TowerOutput<T> {
  features: T;
  lastHiddenState?: T;
  pooler?: T;
}

export interface TowerOptions {
  /** Compute the pooler even when the feature does not use it (Hugging Face parity); default: only when used. */
  pooler?: boolean;
}

/** A tower's data inputs: NCHW pixels for an image tower; ids (the engine's ints) and a float 1/0 mask [B, L] for a text tower. */
export type TowerInput<I, T> = I extends TokenizedBatch ? { ids: T; mask: T } : T;

/** An encoder: parameter specs plus a pure forward function over named tensors. */
export interface Encoder<I = tf.Tensor4D | TokenizedBatch> {
  /** 'vit' | 'deit' | 'resnet' | 'bert' | 'albert' | 'textcnn' */
  readonly type: string;
  readonly modality: 'image' | 'text';
  readonly featureDim: number;
  readonly config: object;
  specs(): ParamSpec[];
  /** The tower, written once over `Ops<T>`: tfjs (`tfOps`) and the onnx graph builder (`graphOps`) run this definition. */
  tower<T>(o: Ops<T>, p: TensorParams<T>, input: TowerInput<I, T>, opts?: TowerOptions): TowerOutput<T>;
  /** The tower on tfjs (`tower` with `tfOps`), with the pooler when the weights have one. */
  forward(p: Params, input: I, training: boolean): EncoderOutput;
  /** Checkpoint weights this encoder accepts but does not use (e.g. an unused pooler). */
  ignorable?(name: string): boolean;
  /**
   * An image tower whose first part is frozen (constants, no parameters): `tower` = `head(trunk(x))`. The
   * trunk's output [B, dim] depends on the pixels alone, so a trainer can compute it once per image and train
   * the head on it (`OnnxStudentEngineOptions.imageFeatures`).
   */
  frozen?: FrozenPart;
}

/** The frozen first part of a tower and the trained rest (see `Encoder.frozen`). */
export interface FrozenPart {
  /** Width of the trunk's output. */
  dim: number;
  /** A hash of what the trunk computes (its weights' bytes and its config): part of any cache key of its outputs. */
  fingerprint(): string;
  /** Pixels -> [B, dim], constants only. */
  trunk<T>(o: Ops<T>, pixels: T): T;
  /** [B, dim] -> the tower's output, over the tower's parameters. */
  head<T>(o: Ops<T>, p: TensorParams<T>, features: T): TowerOutput<T>;
}
export type ImageEncoder = Encoder<tf.Tensor4D>;
export type TextEncoder = Encoder<TokenizedBatch>;

/** An encoder from its tower: `forward` runs the tower on tfjs (`tfOps`, text masks as float), with the pooler when it has one. */
export function defineEncoder<I extends tf.Tensor4D | TokenizedBatch>(e: Omit<Encoder<I>, 'forward'>): Encoder<I> {
  return {
    ...e,
    forward: (p, input, training) => {
      const x =
        e.modality === 'text'
          ? { ids: (input as TokenizedBatch).ids, mask: tf.cast((input as TokenizedBatch).mask, 'float32') }
          : input;
      const out = e.tower(tfOps({ training }), p, x as TowerInput<I, tf.Tensor>, { pooler: true });
      return {
        features: out.features as tf.Tensor2D,
        lastHiddenState: out.lastHiddenState as tf.Tensor3D | undefined,
        poolerOutput: out.pooler as tf.Tensor2D | undefined,
      };
    },
  };
}
