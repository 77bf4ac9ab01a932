import type * as tf from '@tensorflow/tfjs';
import type { ImagePreprocess, ParamGroup } from '@distill/base';

/**
 * The contracts over tfjs tensors (the tfjs engine's student and loss inputs). The others (datasets,
 * teachers, balancers, evaluators) need no tensor library: they are @distill/base's.
 */

// ---------------------------------------------------------------- student
export interface NamedVariable {
  name: string;
  variable: tf.Variable;
  group: ParamGroup;
}
export interface TokenizedBatch {
  /** [B, L] int32 token ids, padded. */
  ids: tf.Tensor2D;
  /** [B, L] 1 for real tokens, 0 for padding. */
  mask: tf.Tensor2D;
}
/** A trainable dual encoder. Both encode* return L2-normalised [B, embedDim] features. */
export interface Student {
  readonly name: string;
  readonly embedDim: number;
  readonly preprocess: ImagePreprocess;
  /** pixels: [B, 3, H, W] (NCHW, as the data pipeline and PyTorch produce). */
  encodeImage(pixels: tf.Tensor4D, training: boolean): tf.Tensor2D;
  encodeText(batch: TokenizedBatch, training: boolean): tf.Tensor2D;
  tokenize(texts: string[]): TokenizedBatch;
  variables(): NamedVariable[];
  parameterCount(): { image: number; text: number; head: number; total: number };
  dispose(): void;
}

// ---------------------------------------------------------------- losses
/** Everything a distillation loss may read, all L2-normalised [B, D] unless noted. */
export interface LossInputs {
  studentImage: tf.Tensor2D;
  studentText: tf.Tensor2D;
  teacherImage?: tf.Tensor2D;
  teacherText?: tf.Tensor2D;
  /** [K, D] queues of past teacher features (rows are keys). */
  imageQueue?: tf.Tensor2D;
  textQueue?: tf.Tensor2D;
  /** Image id of every row, so losses can tell positives that share an image. */
  imageIds?: Int32Array;
}
/** A loss returns its named scalar components; the balancer weighs them. */
export type LossFn = (inputs: LossInputs) => Record<string, tf.Scalar>;
