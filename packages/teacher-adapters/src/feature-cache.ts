import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  createProgress,
  DistillError,
  sha256,
  writeCheckpoint,
  type Dataset,
  type Logger,
  type Teacher,
} from '@distill/core';
import { hashDatasetImages, ImageLoader, primeDatasetImages, type ImageHashes } from '@distill/data';
import {
  chunkName,
  chunkPlan,
  readFeatureCache,
  readFeatureChunk,
  writeFeatureCache,
  type TeacherFeatures,
} from './feature-files.js';
import { mergeShards, writeShardManifest, type ShardPending, type ShardSpec } from './shards.js';
import { isPrecomputed, type TeacherSource } from './teachers.js';

/** Where teacher features are cached: $DISTILL_CACHE_DIR, else .cache/distill under the current folder. */
export function cacheRoot(): string {
  return process.env.DISTILL_CACHE_DIR ?? join(process.cwd(), '.cache', 'distill');
}

/** The cache key of a teacher's features over a dataset, and the cache file it names. */
export interface TeacherFeatureKey {
  /** sha256 (hex) over everything below. */
  key: string;
  /** <cacheDir>/teacher-features/<teacher>-<key[:24]>.safetensors */
  file: string;
  /** The dataset's image hashes (per split, in split order) and the skipped files. */
  images: ImageHashes;
}

/**
 * The teacher-feature cache key, by content: the teacher's fingerprint (sha256 of its model files), its
 * preprocessing and text length, the sha256 of every image file's bytes (memoised by path + size + mtime
 * + ctime, see @distill/data's hashDatasetImages), every caption with the image it belongs to, the
 * images skipped as unreadable (with skipBadImages) and a non-cpu device (its floats round
 * differently). Replacing a picture under the same name gives a new key; the image root's name is not
 * in it (the same bytes elsewhere are the same features). An image that cannot be read is a
 * DistillError unless skipBadImages; an image that differs from the sha256 its dataset's manifest
 * recorded is a DistillError saying to rebuild.
 */
export function teacherFeatureKey(
  teacher: Pick<Teacher, 'name' | 'fingerprint' | 'preprocess' | 'maxTextLength'>,
  dataset: Dataset,
  opts: { device?: string; skipBadImages?: boolean; cacheDir?: string; log?: Logger } = {},
): TeacherFeatureKey {
  const device = opts.device ?? 'cpu';
  const cacheDir = opts.cacheDir ?? cacheRoot();
  const images = hashDatasetImages(dataset, { cacheDir, skipBadImages: opts.skipBadImages, log: opts.log });
  const rows = Object.keys(dataset.splits)
    .sort()
    .map((n) => [n, dataset.splits[n].images.length, dataset.splits[n].captions.map((c) => [c.image, c.text])]);
  const key = sha256(
    JSON.stringify({
      v: 2,
      teacher: teacher.fingerprint(),
      pre: teacher.preprocess,
      len: teacher.maxTextLength,
      images: images.digest,
      rows,
      ...(device !== 'cpu' ? { device } : {}),
    }),
  );
  return { key, file: join(cacheDir, 'teacher-features', `${teacher.name}-${key.slice(0, 24)}.safetensors`), images };
}

/**
 * Run the teacher over every split (images once each, captions once each), or read its features from
 * the cache (a `features` teacher's are read from its store). The cache key (teacherFeatureKey) hashes
 * the teacher's files, its preprocessing, every image's bytes and every caption, so a changed teacher,
 * picture or caption never reuses stale features. Work is written in verified chunks as it goes:
 * a killed extraction resumes where it stopped. The teacher is disposed when done.
 */
export async function extractTeacherFeatures(
  source: TeacherSource,
  dataset: Dataset,
  opts: ExtractOptions,
  log: Logger,
): Promise<TeacherFeatures> {
  return (await extractOrShard(source, dataset, opts, log)) as TeacherFeatures;
}

export interface ExtractOptions {
  batchSize: number;
  skipBadImages?: boolean;
  device?: string;
  parameters?: number;
  cacheDir?: string;
}

/**
 * extractTeacherFeatures, or with `shard` only the chunks of shard index/count (chunk i belongs to shard
 * i mod count), recorded in a shard manifest; the shards are merged into the cache file once all of
 * them exist and verify (shards.ts). `shard.merge`: compute nothing, merge what the shards wrote.
 */
export async function extractOrShard(
  source: TeacherSource,
  dataset: Dataset,
  opts: ExtractOptions & { shard?: ShardSpec },
  log: Logger,
): Promise<TeacherFeatures | ShardPending> {
  if (isPrecomputed(source)) {
    const store = source.features(dataset);
    log.info(`teacher ${source.name}: features read from its store (dim ${store.dim})`);
    return {
      name: source.name,
      dim: store.dim,
      fingerprint: source.fingerprint(),
      train: store.splits.train,
      splits: store.splits,
    };
  }
  const teacher = source;
  const parameters = opts.parameters;
  const { key, file } = teacherFeatureKey(teacher, dataset, { ...opts, log });
  if (existsSync(file)) {
    // Verified (checksum over every tensor and the state) and checked against the dataset's counts;
    // a cache that fails is reported with its path and rebuilt, never used.
    const cached = readFeatureCache(file, key, dataset);
    if (cached.ok) {
      log.info(`teacher ${teacher.name}: features from cache ${file}`);
      await teacher.dispose?.();
      return {
        name: teacher.name,
        dim: cached.dim,
        fingerprint: key,
        train: cached.splits.train,
        splits: cached.splits,
        parameters,
        file,
      };
    }
    log.warn(`teacher feature cache ${file} is unusable (${cached.problem}): rebuilding it`);
    rmSync(file, { force: true });
  }
  const shard = opts.shard;
  if (shard?.merge) {
    await teacher.dispose?.();
    return mergeShards(
      { file, key, name: teacher.name, dataset, batchSize: opts.batchSize, count: shard.count, parameters },
      log,
    );
  }
  const loader = new ImageLoader(dataset, teacher.preprocess, {
    memoryCache: true,
    skipBadImages: opts.skipBadImages,
    logger: log,
  });
  await primeDatasetImages(dataset, loader);
  // Work is written in chunks to <file>.parts/ as it goes, so a killed extraction resumes where it stopped.
  // Each chunk is a checksummed safetensors file; a chunk that does not verify or has the wrong row
  // count is reported with its path and recomputed.
  const parts = `${file}.parts`;
  mkdirSync(parts, { recursive: true });
  const splits: TeacherFeatures['splits'] = {};
  const bs = opts.batchSize;
  const chunk = bs * 8;
  const total = Object.values(dataset.splits).reduce((a, s) => a + s.images.length + s.captions.length, 0);
  const progress = createProgress({ label: `teacher ${teacher.name}`, total });
  let dim = teacher.dim;
  let dimSeen: number | undefined; // the dim of the chunks so far: every chunk must agree
  let chunkIndex = 0; // over every split and kind, in order: chunk i belongs to shard i mod count
  const mine: string[] = [];
  const run = async (
    split: string,
    kind: 'images' | 'texts',
    n: number,
    encode: (start: number, end: number) => Promise<Float32Array>,
  ) => {
    const pieces: Float32Array[] = [];
    for (let start = 0; start < n; start += chunk) {
      const end = Math.min(n, start + chunk);
      if (shard && chunkIndex++ % shard.count !== shard.index) continue;
      const partFile = join(parts, chunkName(split, kind, start, end));
      mine.push(partFile);
      let piece: Float32Array | undefined;
      if (existsSync(partFile)) {
        const c = readFeatureChunk(partFile, end - start, dimSeen);
        if (c.ok) piece = c.data;
        else {
          log.warn(`teacher feature chunk ${partFile} is unusable (${c.problem}): recomputing it`);
          rmSync(partFile, { force: true });
        }
      }
      if (!piece) {
        const outs: Float32Array[] = [];
        for (let s = start; s < end; s += bs) outs.push(await encode(s, Math.min(end, s + bs)));
        piece = concat(outs);
        const d = piece.length / (end - start);
        if (!Number.isInteger(d) || d <= 0 || (dimSeen !== undefined && d !== dimSeen)) {
          throw new DistillError(
            `Teacher ${teacher.name} returned ${piece.length} values for ${end - start} ${kind} of split '${split}' ` +
              `(not ${dimSeen !== undefined ? `${dimSeen} per row` : 'a whole number per row'}). Check the teacher's export.`,
          );
        }
        writeCheckpoint(partFile, {
          tensors: { features: { shape: [end - start, d], data: piece } },
          state: { split, kind, start, end },
        });
      }
      dim = piece.length / (end - start);
      dimSeen = dim;
      pieces.push(piece);
      progress.tick(end - start);
    }
    return concat(pieces);
  };
  for (const [name, split] of Object.entries(dataset.splits)) {
    const images = await run(name, 'images', split.images.length, async (s, e) => {
      const idx = Array.from({ length: e - s }, (_, i) => s + i);
      return teacher.encodeImages(await loader.load(idx, name), idx.length);
    });
    const texts = await run(name, 'texts', split.captions.length, (s, e) =>
      teacher.encodeTexts(split.captions.slice(s, e).map((c) => c.text)),
    );
    splits[name] = { images, texts };
  }
  progress.done();
  if (shard) {
    writeShardManifest(parts, { key, index: shard.index, count: shard.count, dim, chunks: mine });
    log.info(
      `teacher ${teacher.name}: shard ${shard.index}/${shard.count} (${mine.length} chunks) written to ${parts}`,
    );
    await teacher.dispose?.();
    return mergeShards(
      { file, key, name: teacher.name, dataset, batchSize: opts.batchSize, count: shard.count, parameters },
      log,
    );
  }
  if (teacher.dim !== dim) (teacher as { dim: number }).dim = dim;
  log.info(
    `teacher ${teacher.name}: features for ${Object.keys(splits).join(', ')} (dim ${teacher.dim}), cached in ${file}`,
  );
  writeFeatureCache(file, { key, name: teacher.name, dim: teacher.dim, splits });
  rmSync(parts, { recursive: true, force: true });
  await teacher.dispose?.();
  return { name: teacher.name, dim: teacher.dim, fingerprint: key, train: splits.train, splits, parameters, file };
}

function concat(xs: Float32Array[]): Float32Array {
  const out = new Float32Array(xs.reduce((a, x) => a + x.length, 0));
  let o = 0;
  for (const x of xs) {
    out.set(x, o);
    o += x.length;
  }
  return out;
}
