import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  createLogger,
  currentRuntime,
  initRuntime,
  readJsonFile,
  tf,
  type Container,
  type Dataset,
  type Logger,
  type RetrievalMetrics,
} from '@distill/core';
import { ImageLoader, loadDataset, primeDatasetImages } from '@distill/data';
import { computeRecall, measureLatency } from '@distill/eval';
import {
  encodeSplit,
  evaluateEmbeddings,
  loadStudent,
  obtainTeacherFeatures,
  stableStringify,
  subsetSplit,
  type SplitEmbeddings,
  type TrainConfig,
} from '@distill/training';
import type { RunRanks } from './stats.js';
import { checksumProblem, obtainRanks, writeSealedJson } from './store.js';

/** The dataset of a config with its subsets applied, as the trainer sees it. */
async function loadSubsetDataset(o: TrainConfig['dataset'], container: Container): Promise<Dataset> {
  const ds = await loadDataset(
    o.name,
    { dataRoot: o.dataRoot, annotations: o.annotations, imageRoot: o.imageRoot } as never,
    container,
  );
  const splits = Object.fromEntries(
    Object.entries(ds.splits).map(([n, s]) => [n, subsetSplit(s, n === 'train' ? o.trainSubset : o.evalSubset)]),
  );
  return { ...ds, splits };
}

/** Datasets are loaded once per process and container (rows keyed by their dataset section), chosen in `container`'s dataset registry. */
const datasetsByContainer = new WeakMap<Container, Map<string, Promise<Dataset>>>();
export function datasetOf(cfg: TrainConfig, container: Container): Promise<Dataset> {
  const key = stableStringify(cfg.dataset);
  let datasets = datasetsByContainer.get(container);
  if (!datasets) datasetsByContainer.set(container, (datasets = new Map()));
  let d = datasets.get(key);
  if (!d) datasets.set(key, (d = loadSubsetDataset(cfg.dataset, container)));
  return d;
}

async function ensureRuntime(log: Logger): Promise<void> {
  if (!currentRuntime()) await initRuntime('auto', { logger: log, quiet: true });
}

/** The test-split embeddings of a run's best student (tfjs inference of <dir>/best). */
export async function studentTestEmbeddings(
  cfg: TrainConfig,
  dir: string,
  container: Container,
  log: Logger = createLogger(),
): Promise<SplitEmbeddings> {
  await ensureRuntime(log);
  const dataset = await datasetOf(cfg, container);
  const { student } = loadStudent(join(dir, 'best'));
  try {
    const loader = new ImageLoader(dataset, student.preprocess, {
      memoryCache: true,
      skipBadImages: cfg.dataset.skipBadImages,
      logger: log,
    });
    await primeDatasetImages(dataset, loader);
    return await encodeSplit(student, dataset.splits.test, loader, 'test');
  } finally {
    student.dispose();
  }
}

/** The manifest hash of a config's dataset (the dataset part of a run's fingerprint). */
export async function datasetManifestHash(cfg: TrainConfig, container: Container): Promise<string> {
  return (await datasetOf(cfg, container)).manifestHash;
}

/**
 * Per-query test ranks of a finished run (for the statistics over test images), from its best student;
 * cached in <dir>/ranks.json with its checksum, and checked on every read against the test split (a
 * rank outside it, a changed byte: named, and recomputed). `rsum` is kept beside them.
 */
export async function runRanks(
  cfg: TrainConfig,
  dir: string,
  container: Container,
  log: Logger = createLogger(),
): Promise<RunRanks & { rsum: number }> {
  const test = (await datasetOf(cfg, container)).splits.test;
  return obtainRanks(
    join(dir, 'ranks.json'),
    { images: test.images.length, captions: test.captions.length },
    async () => {
      if (!existsSync(join(dir, 'best', 'student.json'))) throw new Error(`${dir} has no best student to evaluate`);
      const emb = await studentTestEmbeddings(cfg, dir, container, log);
      const r = computeRecall(emb.images, emb.texts, emb.dim, emb.textToImage, { engine: 'js' });
      return {
        i2t: Array.from(r.i2tRanks),
        t2i: Array.from(r.t2iRanks),
        textToImage: Array.from(emb.textToImage),
        rsum: r.rsum,
      };
    },
    log,
  );
}

/**
 * Teacher features of every split the runs need, extracted once here before the training processes
 * start (they then read them from the cache instead of extracting them side by side).
 */
export async function warmTeacherCache(
  configs: TrainConfig[],
  needsTeacher: (c: TrainConfig) => boolean | Promise<boolean>,
  container: Container,
  log: Logger,
): Promise<void> {
  const seen = new Set<string>();
  for (const c of configs) {
    if (!(await needsTeacher(c))) continue;
    const key = stableStringify({ t: c.teacher, d: c.dataset, dev: c.device });
    if (seen.has(key)) continue;
    seen.add(key);
    await ensureRuntime(log);
    await obtainTeacherFeatures(c, await datasetOf(c, container), log, container);
  }
}

/** The teacher's test-split features (Figure 2, the teacher row). */
export async function teacherTestFeatures(
  cfg: TrainConfig,
  container: Container,
  log: Logger,
): Promise<
  { name: string; images: Float32Array; texts: Float32Array; dim: number; textToImage: Int32Array } | undefined
> {
  await ensureRuntime(log);
  const dataset = await datasetOf(cfg, container);
  const tf = await obtainTeacherFeatures(cfg, dataset, log, container);
  const t = tf.splits.test;
  return t
    ? {
        name: tf.name,
        images: t.images,
        texts: t.texts,
        dim: tf.dim,
        textToImage: Int32Array.from(dataset.splits.test.captions, (c) => c.image),
      }
    : undefined;
}

/** The teacher's own test recall (from its cached features): the reference row of an experiment. */
export async function teacherTestMetrics(
  cfg: TrainConfig,
  container: Container,
  log: Logger,
): Promise<{ name: string; test: RetrievalMetrics } | undefined> {
  const t = await teacherTestFeatures(cfg, container, log);
  return t && { name: t.name, test: await evaluateEmbeddings(t, { container, options: { engine: 'js' } }) };
}

/**
 * Median ms per item at batch 1 of a run's best student, image and text tower (tfjs inference, as the
 * main job's report measures it); cached in <dir>/latency.json. Measured after all training, so the
 * training processes do not share the cores with it.
 */
export async function runLatency(dir: string, log: Logger = createLogger()): Promise<{ image: number; text: number }> {
  const f = join(dir, 'latency.json');
  if (existsSync(f)) {
    const bad = checksumProblem(f);
    const v = bad ? undefined : readJsonFile<{ image: number; text: number }>(f);
    const ok = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x > 0 && x < 60_000;
    if (v && ok(v.image) && ok(v.text)) return v;
    log.warn(`${f}: ${bad ?? 'out of range (ms per item, > 0)'}; measuring again`);
  }
  await ensureRuntime(log);
  const { student } = loadStudent(join(dir, 'best'));
  try {
    const { crop } = student.preprocess;
    const px = tf.randomNormal([1, 3, crop, crop]) as tf.Tensor4D;
    const tok = student.tokenize(['a smiling face with heart eyes']);
    const time = async (fn: () => tf.Tensor) =>
      (
        await measureLatency(
          async () => {
            const o = tf.tidy(fn);
            await o.data();
            o.dispose();
          },
          { batchSizes: [1], warmup: 3, iters: 15 },
        )
      )[0].medianMs;
    const out = {
      image: await time(() => student.encodeImage(px, false)),
      text: await time(() => student.encodeText(tok, false)),
    };
    tf.dispose([px, tok.ids, tok.mask]);
    writeSealedJson(f, out);
    return out;
  } finally {
    student.dispose();
  }
}
