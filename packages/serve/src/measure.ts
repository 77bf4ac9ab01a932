/** Measurements of an exported model: encoder latency, and the embeddings of a split (for recall). */
import { Rng, type ImageItem } from '@distill/core';
import { ImageLoader } from '@distill/data';
import type { OnnxModel } from './model.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Median ms of `reps` calls (after 2 warm-up calls) to encode `batch` images and `batch` captions. */
export async function encoderLatency(
  model: OnnxModel,
  batch: number,
  reps: number,
): Promise<{ image: number; text: number }> {
  const S = model.spec.imageSize;
  const px = new Rng(1).normalArray(batch * 3 * S * S);
  const texts = Array.from({ length: batch }, (_, i) => `a red heart number ${i} with a smiling face`);
  const time = async (f: () => Promise<unknown>) => (await spreadOf(f, reps)).median;
  return { image: await time(() => model.encodeImages(px, batch)), text: await time(() => model.encodeTexts(texts)) };
}

/** ms of `reps` calls (after 2 warm-up calls): the median and the 10th-90th percentile. */
async function spreadOf(
  f: () => Promise<unknown>,
  reps: number,
): Promise<{ median: number; lo: number; hi: number; runs: number }> {
  await f();
  await f();
  const ts: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await f();
    ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  const at = (q: number) => ts[Math.min(ts.length - 1, Math.max(0, Math.round(q * (ts.length - 1))))];
  return { median: median(ts), lo: at(0.1), hi: at(0.9), runs: reps };
}

/**
 * Encoder latency of a saved student as `distill export` measures it: exported to ONNX (a temporary folder),
 * then batch-1 image and text calls on onnxruntime-node (the model's default threads), `reps` timed runs each.
 */
export async function exportedLatency(
  studentDir: string,
  reps = 30,
): Promise<{
  image: { median: number; lo: number; hi: number; runs: number };
  text: { median: number; lo: number; hi: number; runs: number };
  how: string;
}> {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { exportStudent } = await import('./export.js');
  const { OnnxModel } = await import('./model.js');
  const tmp = mkdtempSync(join(tmpdir(), 'distill-latency-'));
  try {
    await exportStudent(studentDir, tmp);
    const model = await OnnxModel.load(tmp);
    try {
      const S = model.spec.imageSize;
      const px = new Rng(1).normalArray(3 * S * S);
      const image = await spreadOf(() => model.encodeImages(px, 1), reps);
      const text = await spreadOf(() => model.encodeTexts(['a red heart with a smiling face']), reps);
      return {
        image,
        text,
        how: `onnxruntime-node on the exported graphs, as distill export measures it, ${reps} runs`,
      };
    } finally {
      await model.dispose();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Unit embeddings of a split's images and captions ([n, dim] row-major), in batches of 64. */
export async function embedSplit(
  model: OnnxModel,
  images: ImageItem[],
  captions: string[],
): Promise<{ images: Float32Array; texts: Float32Array }> {
  const loader = new ImageLoader({ imageRoot: '/', splits: {} }, model.preprocess, { memoryCache: false });
  const dim = model.dim;
  const img = new Float32Array(images.length * dim);
  for (let s = 0; s < images.length; s += 64) {
    const part = images.slice(s, s + 64);
    img.set(await model.encodeImages(await loader.load(part), part.length), s * dim);
  }
  const txt = new Float32Array(captions.length * dim);
  for (let s = 0; s < captions.length; s += 256) txt.set(await model.encodeTexts(captions.slice(s, s + 256)), s * dim);
  return { images: img, texts: txt };
}
