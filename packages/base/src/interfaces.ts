/**
 * The contracts between distill's packages that need no tensor library. Data flows one way:
 * data -> teacher features -> student -> losses -> balancer -> optimizer -> eval.
 * Packages implement these and register them by name (see container.ts); the CLI wires them.
 * The contracts over tfjs tensors (Student, LossInputs) are @distill/core's.
 */

// ---------------------------------------------------------------- data
/** One image of a split. `path` is absolute, or relative to the dataset's image root. */
export interface ImageItem {
  id: string;
  path: string;
  /** The file's expected sha256, where the dataset's manifest records it (the built glyphs benchmark): checked when the images are hashed. */
  sha256?: string;
}
/** One caption; `image` indexes `SplitData.images`. An image may have any number of captions. */
export interface CaptionItem {
  text: string;
  image: number;
}
export interface SplitData {
  images: ImageItem[];
  captions: CaptionItem[];
}
export interface Dataset {
  name: string;
  /** Folder that relative image paths are resolved against. */
  imageRoot: string;
  /** Hash of the dataset's manifest (files, splits, captions): part of every cache key. */
  manifestHash: string;
  splits: Record<string, SplitData>;
}

/** Image preprocessing: resize shorter side, centre crop, normalise. Output is NCHW float32. */
export interface ImagePreprocess {
  resize: number;
  crop: number;
  mean: [number, number, number];
  std: [number, number, number];
}

// ---------------------------------------------------------------- teacher
/** A frozen teacher. Outputs are L2-normalised [n, dim] row-major float32. */
export interface Teacher {
  readonly name: string;
  readonly dim: number;
  readonly preprocess: ImagePreprocess;
  readonly maxTextLength: number;
  /** Stable hash of the teacher's files and settings (part of the feature-cache key). */
  fingerprint(): string;
  /** pixels: NCHW float32 for n images, already preprocessed with `preprocess`. */
  encodeImages(pixels: Float32Array, n: number): Promise<Float32Array>;
  encodeTexts(texts: string[]): Promise<Float32Array>;
  dispose?(): Promise<void> | void;
}

// ---------------------------------------------------------------- student
/** The parameter groups of a student (each may have its own learning rate). */
export type ParamGroup = 'image' | 'text' | 'head';

// ---------------------------------------------------------------- balancer
export interface Balancer {
  readonly name: string;
  /** Weights for the detached loss values, in the order given. */
  weights(losses: number[]): number[];
  state(): unknown;
  load(state: unknown): void;
}

// ---------------------------------------------------------------- eval
export interface RetrievalMetrics {
  i2t_r1: number;
  i2t_r5: number;
  i2t_r10: number;
  t2i_r1: number;
  t2i_r5: number;
  t2i_r10: number;
  rsum: number;
  i2t_medr?: number;
  i2t_meanr?: number;
  t2i_medr?: number;
  t2i_meanr?: number;
}
export interface Evaluator {
  /** images: [nImages, dim], texts: [nTexts, dim] row-major; textToImage[t] = image index of text t. */
  evaluate(images: Float32Array, texts: Float32Array, dim: number, textToImage: Int32Array): RetrievalMetrics;
}
