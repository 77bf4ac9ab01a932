import { tf, type SplitData, type Student, type TokenizedBatch } from '@distill/core';
import type { ImageLoader } from '@distill/data';

/** Embeddings of a whole split: images [nImages*dim] and texts [nCaptions*dim], both L2-normalised. */
export interface SplitEmbeddings {
  images: Float32Array;
  texts: Float32Array;
  dim: number;
  textToImage: Int32Array;
}

/** Run a student (inference mode) over every image and caption of a split, in batches. */
export async function encodeSplit(
  student: Student,
  split: SplitData,
  loader: ImageLoader,
  splitName: string,
  batchSize = 128,
): Promise<SplitEmbeddings> {
  const dim = student.embedDim;
  const images = new Float32Array(split.images.length * dim);
  const { crop } = student.preprocess;
  for (let s = 0; s < split.images.length; s += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, split.images.length - s) }, (_, i) => s + i);
    const px = await loader.load(idx, splitName);
    const out = tf.tidy(() => student.encodeImage(tf.tensor4d(px, [idx.length, 3, crop, crop]), false));
    images.set(await out.data(), s * dim);
    out.dispose();
  }
  const texts = new Float32Array(split.captions.length * dim);
  for (let s = 0; s < split.captions.length; s += batchSize) {
    const chunk = split.captions.slice(s, s + batchSize).map((c) => c.text);
    const tok: TokenizedBatch = student.tokenize(chunk);
    const out = tf.tidy(() => student.encodeText(tok, false));
    texts.set(await out.data(), s * dim);
    out.dispose();
    tok.ids.dispose();
    tok.mask.dispose();
  }
  return { images, texts, dim, textToImage: Int32Array.from(split.captions, (c) => c.image) };
}

/** Keep the first n images of a split and their captions (smoke runs, quick evaluations). */
export function subsetSplit(split: SplitData, nImages?: number): SplitData {
  if (!nImages || nImages >= split.images.length) return split;
  return { images: split.images.slice(0, nImages), captions: split.captions.filter((c) => c.image < nImages) };
}
