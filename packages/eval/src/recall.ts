import { DistillError, tf, type Evaluator, type RetrievalMetrics } from '@distill/core';
import { createOnnxGemm } from './onnx-gemm.js';

/**
 * Grouped Recall@K for image-text retrieval (spec section C).
 *
 * - S = images · textsᵀ in float32 (features are expected L2-normalised, so S is cosine similarity).
 * - i2t: an image's rank is the number of *wrong* captions scoring >= its best ground-truth caption
 *   (0-based). hit@K iff rank < K, i.e. any of its captions is in the top K.
 * - t2i: a caption's rank is the number of *other* images scoring >= its own image (0-based).
 * - Ties are ranked pessimistically: a wrong item with exactly the same score counts as ahead.
 * - Recalls are in percent; rsum is the sum of the six. medr = floor(median rank) + 1 and
 *   meanr = mean rank + 1 (1-based, as the VSE-style evaluation of the official code).
 * - Images with no caption are left out of i2t (they have nothing to retrieve) but still act as
 *   wrong candidates for t2i.
 *
 * Ranks are counted, never sorted. S is computed in row blocks of images: computeRecall (sync) uses tfjs
 * matMul when a fast tfjs backend (wasm, tensorflow, webgpu) is active, else blocked Float32Array loops;
 * computeRecallAsync uses onnxruntime-node's multi-threaded GEMM when it imports. Every score a rank
 * compares comes from the same product (blocks are kept, or recomputed identically), so exact ties stay exact.
 */
export interface RecallOptions {
  /** 'tf' = tfjs matMul on the active backend; 'js' = plain loops; 'auto' picks tf on a fast backend. */
  engine?: 'auto' | 'tf' | 'js';
  /** Images per block (default 256). */
  blockRows?: number;
  /** Keep the similarity blocks in memory up to this many bytes (default 1 GiB); above it they are recomputed. */
  storeLimitBytes?: number;
}

export interface RecallDetail extends RetrievalMetrics {
  i2t_medr: number;
  i2t_meanr: number;
  t2i_medr: number;
  t2i_meanr: number;
  /** 0-based i2t rank per image (-1 for images without captions). */
  i2tRanks: Int32Array;
  /** 0-based t2i rank per caption. */
  t2iRanks: Int32Array;
  engine: 'tf' | 'js' | 'onnx';
}

const FAST_BACKENDS = new Set(['wasm', 'tensorflow', 'webgpu', 'webgl']);

function activeBackend(): string | undefined {
  // Read the engine's field directly: tf.getBackend() would initialise a default backend as a side effect.
  return (tf.engine() as unknown as { backendName?: string | null }).backendName ?? undefined;
}

function validate(images: Float32Array, texts: Float32Array, dim: number, textToImage: Int32Array | number[]) {
  if (!Number.isInteger(dim) || dim <= 0)
    throw new DistillError(`Embedding dim must be a positive integer, got ${dim}.`);
  if (images.length % dim !== 0)
    throw new DistillError(`Image embeddings hold ${images.length} values, not a multiple of dim ${dim}.`);
  if (texts.length % dim !== 0)
    throw new DistillError(`Text embeddings hold ${texts.length} values, not a multiple of dim ${dim}.`);
  const nI = images.length / dim;
  const nT = texts.length / dim;
  if (nI === 0 || nT === 0)
    throw new DistillError(`Need at least one image and one text (got ${nI} images, ${nT} texts).`);
  if (textToImage.length !== nT) {
    throw new DistillError(
      `text-to-image has ${textToImage.length} entries but there are ${nT} text rows: give one image index per text row.`,
    );
  }
  for (let j = 0; j < nT; j++) {
    const g = textToImage[j];
    if (!Number.isInteger(g) || g < 0 || g >= nI) {
      throw new DistillError(`text-to-image[${j}] = ${g} is not an image index in [0, ${nI}).`);
    }
  }
  for (const [name, a] of [
    ['image', images],
    ['text', texts],
  ] as const) {
    for (let k = 0; k < a.length; k++) {
      if (!Number.isFinite(a[k]))
        throw new DistillError(
          `${name} embeddings contain a non-finite value (${a[k]}) at row ${Math.floor(k / dim)}.`,
        );
    }
  }
  return { nI, nT };
}

/** out[r * nT + j] = images[i0 + r] · texts[j], plain loops, 4 image rows at a time. */
function blockJs(
  images: Float32Array,
  texts: Float32Array,
  dim: number,
  i0: number,
  i1: number,
  nT: number,
  out: Float32Array,
): void {
  let r = 0;
  const rows = i1 - i0;
  for (; r + 4 <= rows; r += 4) {
    const a0 = (i0 + r) * dim,
      a1 = a0 + dim,
      a2 = a1 + dim,
      a3 = a2 + dim;
    for (let j = 0; j < nT; j++) {
      const b = j * dim;
      let s0 = 0,
        s1 = 0,
        s2 = 0,
        s3 = 0;
      for (let d = 0; d < dim; d++) {
        const t = texts[b + d];
        s0 += images[a0 + d] * t;
        s1 += images[a1 + d] * t;
        s2 += images[a2 + d] * t;
        s3 += images[a3 + d] * t;
      }
      out[r * nT + j] = s0;
      out[(r + 1) * nT + j] = s1;
      out[(r + 2) * nT + j] = s2;
      out[(r + 3) * nT + j] = s3;
    }
  }
  for (; r < rows; r++) {
    const a = (i0 + r) * dim;
    for (let j = 0; j < nT; j++) {
      const b = j * dim;
      let s = 0;
      for (let d = 0; d < dim; d++) s += images[a + d] * texts[b + d];
      out[r * nT + j] = s;
    }
  }
}

function median(xs: Int32Array): number {
  const v = Array.from(xs).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

type Engine = 'tf' | 'js' | 'onnx';

/** Per-call state shared by the sync and async drivers: caption lists, ranks, own scores. */
class RankCounter {
  readonly capStart: Int32Array;
  readonly capList: Int32Array;
  readonly i2tRanks: Int32Array;
  readonly pos: Float32Array;
  readonly ge: Int32Array;

  constructor(
    readonly nI: number,
    readonly nT: number,
    textToImage: Int32Array | number[],
  ) {
    this.capStart = new Int32Array(nI + 1);
    for (let j = 0; j < nT; j++) this.capStart[textToImage[j] + 1]++;
    for (let i = 0; i < nI; i++) this.capStart[i + 1] += this.capStart[i];
    this.capList = new Int32Array(nT);
    const fill = this.capStart.slice(0, nI);
    for (let j = 0; j < nT; j++) this.capList[fill[textToImage[j]]++] = j;
    this.i2tRanks = new Int32Array(nI).fill(-1);
    this.pos = new Float32Array(nT);
    this.ge = new Int32Array(nT);
  }

  /** Pass 1 on a block of complete image rows: i2t ranks and every caption's own score. */
  pass1(S: Float32Array, i0: number, i1: number): void {
    const { nT, capStart, capList, pos } = this;
    for (let i = i0; i < i1; i++) {
      const row = (i - i0) * nT;
      const c0 = capStart[i],
        c1 = capStart[i + 1];
      if (c1 === c0) continue;
      let best = -Infinity;
      for (let c = c0; c < c1; c++) {
        const v = S[row + capList[c]];
        pos[capList[c]] = v;
        if (v > best) best = v;
      }
      let ge = 0;
      for (let j = 0; j < nT; j++) if (S[row + j] >= best) ge++;
      let geOwn = 0;
      for (let c = c0; c < c1; c++) if (S[row + capList[c]] >= best) geOwn++;
      this.i2tRanks[i] = ge - geOwn;
    }
  }

  /** Pass 2 (after pass 1 saw every block): images scoring >= each caption's own image. */
  pass2(S: Float32Array, i0: number, i1: number): void {
    const { nT, pos, ge } = this;
    for (let r = 0; r < i1 - i0; r++) {
      const row = r * nT;
      for (let j = 0; j < nT; j++) if (S[row + j] >= pos[j]) ge[j]++;
    }
  }

  result(engine: Engine): RecallDetail {
    const t2iRanks = new Int32Array(this.nT);
    for (let j = 0; j < this.nT; j++) t2iRanks[j] = this.ge[j] - 1; // minus the caption's own image
    const withCaps = this.i2tRanks.filter((r) => r >= 0);
    const pct = (ranks: Int32Array, k: number) => {
      let h = 0;
      for (const r of ranks) if (r < k) h++;
      return (100 * h) / ranks.length;
    };
    const mean = (ranks: Int32Array) => ranks.reduce((a, b) => a + b, 0) / ranks.length;
    const m = {
      i2t_r1: pct(withCaps, 1),
      i2t_r5: pct(withCaps, 5),
      i2t_r10: pct(withCaps, 10),
      t2i_r1: pct(t2iRanks, 1),
      t2i_r5: pct(t2iRanks, 5),
      t2i_r10: pct(t2iRanks, 10),
    };
    return {
      ...m,
      rsum: m.i2t_r1 + m.i2t_r5 + m.i2t_r10 + m.t2i_r1 + m.t2i_r5 + m.t2i_r10,
      i2t_medr: Math.floor(median(withCaps)) + 1,
      i2t_meanr: mean(withCaps) + 1,
      t2i_medr: Math.floor(median(t2iRanks)) + 1,
      t2i_meanr: mean(t2iRanks) + 1,
      i2tRanks: this.i2tRanks,
      t2iRanks,
      engine,
    };
  }
}

/** Grouped Recall@1/5/10 both ways, RSUM, median and mean ranks (synchronous: tfjs or plain loops). */
export function computeRecall(
  images: Float32Array,
  texts: Float32Array,
  dim: number,
  textToImage: Int32Array | number[],
  opts: RecallOptions = {},
): RecallDetail {
  const { nI, nT } = validate(images, texts, dim, textToImage);
  const backend = activeBackend();
  const engine: 'tf' | 'js' =
    opts.engine === 'tf' || opts.engine === 'js'
      ? opts.engine
      : backend && FAST_BACKENDS.has(backend) && nI * nT * dim > 1e7
        ? 'tf'
        : 'js';
  const blockRows = Math.max(1, opts.blockRows ?? 256);
  const store = nI * nT * 4 <= (opts.storeLimitBytes ?? 2 ** 30);
  const counter = new RankCounter(nI, nT, textToImage);

  let textsT: tf.Tensor2D | undefined;
  if (engine === 'tf') {
    // Materialise the transpose once so each block is a plain [b, D] x [D, nT] product.
    textsT = tf.tidy(() => tf.transpose(tf.tensor2d(texts, [nT, dim])).clone() as tf.Tensor2D);
  }
  const computeBlock = (i0: number, i1: number): Float32Array => {
    if (engine === 'tf') {
      const res = tf.tidy(() => tf.matMul(tf.tensor2d(images.subarray(i0 * dim, i1 * dim), [i1 - i0, dim]), textsT!));
      const out = res.dataSync() as Float32Array;
      res.dispose();
      return out;
    }
    const out = new Float32Array((i1 - i0) * nT);
    blockJs(images, texts, dim, i0, i1, nT, out);
    return out;
  };
  try {
    const blocks: Float32Array[] = [];
    for (let i0 = 0; i0 < nI; i0 += blockRows) {
      const S = computeBlock(i0, Math.min(nI, i0 + blockRows));
      if (store) blocks.push(S);
      counter.pass1(S, i0, Math.min(nI, i0 + blockRows));
    }
    for (let b = 0, i0 = 0; i0 < nI; b++, i0 += blockRows) {
      const i1 = Math.min(nI, i0 + blockRows);
      counter.pass2(store ? blocks[b] : computeBlock(i0, i1), i0, i1);
    }
    return counter.result(engine);
  } finally {
    textsT?.dispose();
  }
}

export interface RecallAsyncOptions extends Omit<RecallOptions, 'engine'> {
  /** 'onnx' = onnxruntime-node GEMM (multi-threaded); 'auto' tries onnx, then falls back to computeRecall's choice. */
  engine?: 'auto' | 'onnx' | 'tf' | 'js';
  /** onnxruntime intra-op threads (0 = all cores). */
  threads?: number;
}

/**
 * The same numbers as computeRecall, using onnxruntime-node's GEMM when it can be imported (the fast
 * path at COCO size); otherwise it runs computeRecall.
 */
export async function computeRecallAsync(
  images: Float32Array,
  texts: Float32Array,
  dim: number,
  textToImage: Int32Array | number[],
  opts: RecallAsyncOptions = {},
): Promise<RecallDetail> {
  const engine = opts.engine ?? 'auto';
  if (engine === 'tf' || engine === 'js') return computeRecall(images, texts, dim, textToImage, { ...opts, engine });
  const { nI, nT } = validate(images, texts, dim, textToImage);
  const gemm = nI * nT * dim > 1e6 || engine === 'onnx' ? await createOnnxGemm(opts.threads ?? 0) : undefined;
  if (!gemm) {
    if (engine === 'onnx')
      throw new DistillError('engine onnx needs onnxruntime-node, which cannot be imported here; use engine tf or js.');
    return computeRecall(images, texts, dim, textToImage, { ...opts, engine: 'auto' });
  }
  const blockRows = Math.max(1, opts.blockRows ?? 1024);
  const store = nI * nT * 4 <= (opts.storeLimitBytes ?? 2 ** 30);
  const counter = new RankCounter(nI, nT, textToImage);
  const block = (i0: number, i1: number) => gemm.run(images.subarray(i0 * dim, i1 * dim), i1 - i0, texts, nT, dim);
  try {
    const blocks: Float32Array[] = [];
    for (let i0 = 0; i0 < nI; i0 += blockRows) {
      const i1 = Math.min(nI, i0 + blockRows);
      const S = await block(i0, i1);
      if (store) blocks.push(S);
      counter.pass1(S, i0, i1);
    }
    for (let b = 0, i0 = 0; i0 < nI; b++, i0 += blockRows) {
      const i1 = Math.min(nI, i0 + blockRows);
      counter.pass2(store ? blocks[b] : await block(i0, i1), i0, i1);
    }
    return counter.result('onnx');
  } finally {
    await gemm.release();
  }
}

/** The seven headline numbers (percent), as `distill eval embeddings` prints them. */
export function headline(
  m: RetrievalMetrics,
): Pick<RetrievalMetrics, 'i2t_r1' | 'i2t_r5' | 'i2t_r10' | 't2i_r1' | 't2i_r5' | 't2i_r10' | 'rsum'> {
  const { i2t_r1, i2t_r5, i2t_r10, t2i_r1, t2i_r5, t2i_r10, rsum } = m;
  return { i2t_r1, i2t_r5, i2t_r10, t2i_r1, t2i_r5, t2i_r10, rsum };
}

/** The `recall` evaluator (registered under TOKENS.EvaluatorRegistry). */
export class RecallEvaluator implements Evaluator {
  constructor(readonly options: RecallOptions = {}) {}

  evaluate(images: Float32Array, texts: Float32Array, dim: number, textToImage: Int32Array): RetrievalMetrics {
    const {
      i2tRanks: _i,
      t2iRanks: _t,
      engine: _e,
      ...metrics
    } = computeRecall(images, texts, dim, textToImage, this.options);
    return metrics;
  }
}
