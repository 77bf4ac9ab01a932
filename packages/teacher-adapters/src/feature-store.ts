import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DistillError,
  l2NormalizeRows,
  readSafetensorsHeader,
  tensorChecksum,
  type Dataset,
  type TensorMap,
  readNpyMatrixF32,
  readSafetensors,
} from '@distill/core';

/** Teacher features of one split, rows aligned with split.images / split.captions (L2-normalised). */
export interface SplitFeatures {
  images: Float32Array;
  texts: Float32Array;
}

/**
 * The `features` teacher: precomputed features instead of a model. A folder with, per split,
 *   <split>.image.npy  [nImages, D]  or  [nCaptions, D] (one row per caption, image rows repeated, as
 *                      the official DSMD pickles: de-duplicated by the caption's image)
 *   <split>.text.npy   [nCaptions, D]
 * or one .safetensors file with tensors `<split>/images` and `<split>/texts` (distill's own feature cache).
 * Rows follow the dataset's order. Counts and dims are checked against the dataset. A .safetensors
 * file that carries a checksum (distill's caches do) is verified; a truncated or corrupt one is an
 * error naming the file.
 */
export function loadFeatureStore(
  path: string,
  dataset: Dataset,
): { dim: number; splits: Record<string, SplitFeatures> } {
  if (!existsSync(path))
    throw new DistillError(
      `Feature store not found: ${path} (a folder of <split>.image.npy + <split>.text.npy, or a .safetensors file).`,
      2,
    );
  const raw: Record<
    string,
    {
      images?: { rows: number; dim: number; data: Float32Array };
      texts?: { rows: number; dim: number; data: Float32Array };
    }
  > = {};
  if (path.endsWith('.safetensors')) {
    const bytes = readFileSync(path);
    const { metadata } = readSafetensorsHeader(bytes, `Feature store ${path}`);
    const tensors = readSafetensors(bytes);
    if (typeof metadata.checksum === 'string') {
      const all: TensorMap = {};
      for (const [name, t] of tensors) all[name] = { shape: t.shape, data: t.data };
      if (tensorChecksum(all, metadata.state ?? '') !== metadata.checksum) {
        throw new DistillError(
          `Feature store ${path} is corrupt: its data does not match its checksum. Re-create it (or delete it to let distill rebuild its cache).`,
          2,
        );
      }
    }
    for (const [name, t] of tensors) {
      const [split, kind] = name.split('/');
      if (kind !== 'images' && kind !== 'texts') continue;
      (raw[split] ??= {})[kind] = { rows: t.shape[0], dim: t.shape[1], data: t.data };
    }
  } else {
    for (const f of readdirSync(path)) {
      const m = /^(.+)\.(image|text)\.npy$/.exec(f);
      if (!m) continue;
      const x = readNpyMatrixF32(join(path, f));
      (raw[m[1]] ??= {})[m[2] === 'image' ? 'images' : 'texts'] = { rows: x.rows, dim: x.cols, data: x.data };
    }
  }
  const splits: Record<string, SplitFeatures> = {};
  let dim = 0;
  for (const [name, split] of Object.entries(dataset.splits)) {
    const r = raw[name];
    if (!r?.images || !r?.texts)
      throw new DistillError(`Feature store ${path} has no image and text features for split '${name}'.`, 2);
    if (r.images.dim !== r.texts.dim)
      throw new DistillError(
        `Feature store ${path}, split '${name}': image dim ${r.images.dim} != text dim ${r.texts.dim}.`,
        2,
      );
    dim = r.images.dim;
    const nI = split.images.length;
    const nT = split.captions.length;
    if (r.texts.rows !== nT)
      throw new DistillError(
        `Feature store ${path}, split '${name}': ${r.texts.rows} text rows, but the dataset has ${nT} captions.`,
        2,
      );
    let images: Float32Array;
    if (r.images.rows === nI) images = Float32Array.from(r.images.data);
    else if (r.images.rows === nT) {
      images = new Float32Array(nI * dim);
      const seen = new Uint8Array(nI);
      split.captions.forEach((c, row) => {
        if (seen[c.image]) return;
        seen[c.image] = 1;
        images.set(r.images!.data.subarray(row * dim, (row + 1) * dim), c.image * dim);
      });
    } else {
      throw new DistillError(
        `Feature store ${path}, split '${name}': ${r.images.rows} image rows, but the dataset has ${nI} images (or ${nT} captions, one row per caption).`,
        2,
      );
    }
    splits[name] = { images: l2NormalizeRows(images, dim), texts: l2NormalizeRows(r.texts.data, dim) };
  }
  return { dim, splits };
}
