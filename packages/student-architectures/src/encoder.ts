import type { tf, TokenizedBatch } from '@distill/core';
import type { ParamSpec, Params } from './params.js';

export interface EncoderOutput {
  /** The encoder's feature before the projection head: [B, featureDim]. */
  features: tf.Tensor2D;
  lastHiddenState?: tf.Tensor3D;
  poolerOutput?: tf.Tensor2D;
}

/** An encoder: parameter specs plus a pure forward function over named tensors. */
export interface Encoder<I = tf.Tensor4D | TokenizedBatch> {
  /** 'vit' | 'deit' | 'resnet' | 'bert' | 'albert' | 'textcnn' */
  readonly type: string;
  readonly modality: 'image' | 'text';
  readonly featureDim: number;
  readonly config: object;
  specs(): ParamSpec[];
  forward(p: Params, input: I, training: boolean): EncoderOutput;
  /** Checkpoint weights this encoder accepts but does not use (e.g. an unused pooler). */
  ignorable?(name: string): boolean;
}
export type ImageEncoder = Encoder<tf.Tensor4D>;
export type TextEncoder = Encoder<TokenizedBatch>;
