/**
 * The teacher-feature cache's files: the cache file (one verified checkpoint of every split's image and
 * text features) and the extraction chunks, read back verified. Used by the extraction (feature-cache.ts)
 * and the shard merge (shards.ts), which both build on these and not on each other's module.
 */
import { DistillError, readCheckpoint, writeCheckpoint, type Checkpoint, type Dataset } from '@distill/core';

/** Teacher features of every split, rows aligned with split.images / split.captions. */
export interface TeacherFeatures {
  name: string;
  dim: number;
  fingerprint: string;
  train: { images: Float32Array; texts: Float32Array };
  splits: Record<string, { images: Float32Array; texts: Float32Array }>;
  /** Parameters of the teacher, when known (for the report). */
  parameters?: number;
  /** The cache file the features live in (absent for a features teacher). */
  file?: string;
}

/** The cache file: one tensor per split and kind, in the dataset's split order, and the state (key, name, dim, splits). */
export function writeFeatureCache(
  file: string,
  f: { key: string; name: string; dim: number; splits: TeacherFeatures['splits'] },
): void {
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [s, x] of Object.entries(f.splits)) {
    tensors[`${s}/images`] = { shape: [x.images.length / f.dim, f.dim], data: x.images };
    tensors[`${s}/texts`] = { shape: [x.texts.length / f.dim, f.dim], data: x.texts };
  }
  writeCheckpoint(file, { tensors, state: { key: f.key, name: f.name, dim: f.dim, splits: Object.keys(f.splits) } });
}

/** The file name of one extraction chunk in <cache file>.parts/. */
export function chunkName(split: string, kind: 'images' | 'texts', start: number, end: number): string {
  return `${split}.${kind}.${start}-${end}.safetensors`;
}

/** Every chunk of an extraction, in the order they are computed (chunk i is shard i mod count's). */
export function chunkPlan(
  dataset: Dataset,
  batchSize: number,
): { split: string; kind: 'images' | 'texts'; start: number; end: number; name: string }[] {
  const chunk = batchSize * 8;
  const out: ReturnType<typeof chunkPlan> = [];
  for (const [split, s] of Object.entries(dataset.splits)) {
    for (const [kind, n] of [
      ['images', s.images.length],
      ['texts', s.captions.length],
    ] as const) {
      for (let start = 0; start < n; start += chunk) {
        const end = Math.min(n, start + chunk);
        out.push({ split, kind, start, end, name: chunkName(split, kind, start, end) });
      }
    }
  }
  return out;
}

type Problem = { ok: false; problem: string };

function problemOf(e: unknown): Problem {
  if (e instanceof DistillError) return { ok: false, problem: e.message.replace(/\.$/, '') };
  throw e;
}

/** A feature cache file, verified and checked against the key and the dataset's row counts. */
export function readFeatureCache(
  file: string,
  key: string,
  dataset: Dataset,
): { ok: true; dim: number; splits: TeacherFeatures['splits'] } | Problem {
  let ck: Checkpoint<{ key: string; name: string; dim: number; splits: string[] }>;
  try {
    ck = readCheckpoint(file);
  } catch (e) {
    return problemOf(e);
  }
  if (ck.state.key !== key) return { ok: false, problem: 'it was made for another teacher or dataset' };
  const dim = ck.state.dim;
  const splits: TeacherFeatures['splits'] = {};
  for (const [s, split] of Object.entries(dataset.splits)) {
    const images = ck.tensors[`${s}/images`];
    const texts = ck.tensors[`${s}/texts`];
    if (!images || !texts) return { ok: false, problem: `no features for split '${s}'` };
    const want = (t: { shape: number[] }, rows: number) =>
      t.shape.length === 2 && t.shape[0] === rows && t.shape[1] === dim;
    if (!want(images, split.images.length) || !want(texts, split.captions.length)) {
      return {
        ok: false,
        problem: `split '${s}' has [${images.shape}] image and [${texts.shape}] text features for ${split.images.length} images and ${split.captions.length} captions of dim ${dim}`,
      };
    }
    splits[s] = { images: images.data, texts: texts.data };
  }
  return { ok: true, dim, splits };
}

/** One extraction chunk: verified, with exactly `rows` rows (of `dim` columns when given). */
export function readFeatureChunk(file: string, rows: number, dim?: number): { ok: true; data: Float32Array } | Problem {
  let ck: Checkpoint;
  try {
    ck = readCheckpoint(file);
  } catch (e) {
    return problemOf(e);
  }
  const t = ck.tensors.features;
  if (
    !t ||
    t.shape.length !== 2 ||
    t.shape[0] !== rows ||
    t.shape[1] <= 0 ||
    (dim !== undefined && t.shape[1] !== dim)
  ) {
    return {
      ok: false,
      problem: `it holds [${t?.shape ?? ''}] features, expected ${rows} rows${dim !== undefined ? ` of ${dim}` : ''}`,
    };
  }
  return { ok: true, data: t.data };
}
