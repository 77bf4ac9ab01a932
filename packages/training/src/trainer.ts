import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  createLogger,
  createProgress,
  currentRuntime,
  DistillError,
  initRuntime,
  installWasmFastKernels,
  registryByKind,
  RunDirectory,
  sha256,
  type Container,
  type Dataset,
  type Evaluator,
  type Logger,
  type RetrievalMetrics,
  type RuntimeInfo,
  type SplitData,
} from '@distill/core';
import {
  distillCacheDir,
  hashDatasetImages,
  ImageLoader,
  ImagePairSampler,
  isEmojiDataset,
  PairSampler,
  primeDatasetImages,
  type DatasetOptions,
} from '@distill/data';
import { headline } from '@distill/eval';
import {
  GLOVE_INIT,
  gloveTokenizerJson,
  loadTokenizer,
  pairDef,
  trainWholeWordTokenizer,
  wordInitLine,
  type DualEncoderStudent,
  type TokenizerJson,
  type StudentRegistryConfig,
  type TextTokenizer,
  type WeightRecord,
} from '@distill/student-architectures';
import { BatchMaker, lossHooks } from './batch.js';
import {
  Checkpointer,
  engineCheckpoint,
  jsonCheckpoint,
  methodCheckpoint,
  MetricsLog,
  samplerCheckpoint,
} from './checkpointer.js';
import type { TrainConfig } from './config.js';
import { encodeSplit, subsetSplit, type SplitEmbeddings } from './encode.js';
import { createStepEngine, tfjsBackendFor } from './engine.js';
import { methodFor } from './method-registry.js';
import type { Method } from './methods.js';
import { saveStudent } from './saved-student.js';
import { lrScaleAt } from './schedule.js';
import { peakRssBytes, readSavedWeights, type StepEngine } from './step-engine.js';
import { obtainTeacher, type TeacherFeatures } from './teacher-features.js';

export interface TrainOptions {
  runDir: string;
  /** Continue from runDir/checkpoint.safetensors. */
  resume?: boolean;
  logger?: Logger;
  /** Label used in logs and the report (e.g. 'student', 'no-teacher'). */
  label?: string;
  /** Teacher features already extracted (the baseline run shares nothing, the main run passes its own). */
  teacherFeatures?: TeacherFeatures;
}

/**
 * What `train` sets a run up from: the container its datasets, teachers, students, losses, balancers and
 * evaluators are chosen in by name (the caller's: the CLI's with its plugins, a test's own), or the run's
 * setup built once by `createRunContext` (the job runner shares it; it carries its container).
 */
export type TrainSetup = { container: Container; context?: undefined } | { context: RunContext; container?: undefined };

/**
 * What a run is set up from, built once (`createRunContext`) and handed to `train`: the runtime, the
 * registries, the dataset, the method (losses + balancer) and the teacher's features. The job runner
 * builds one for the distilled student and derives the baseline's from it (`from`: same runtime,
 * dataset and teacher, the baseline's own method), so nothing is set up twice.
 */
export interface RunContext {
  container: Container;
  rt: RuntimeInfo;
  dataset: Dataset;
  method: Method;
  /** The teacher's features: when the method needs them, or when asked for (`teacher: 'report'`) and the teacher could be run. */
  teacher?: TeacherFeatures;
  /** The teacher's latency at batch 1 (asked for with `teacherLatency`; a teacher that computes its features). */
  teacherLatency?: { image: number; text: number };
  /** The teacher's folder when it is a saved distill student (the job times it as it times its students). */
  teacherDir?: string;
}

/**
 * Builds a run's context once: the runtime for `cfg.backend`, the dataset and the method chosen by
 * name, and the teacher (created once: its latency when asked, then its features) when the method
 * needs it, or for the report (`teacher: 'report'`: a teacher that cannot run is a warning, not an
 * error, when the method does not need it). `from` reuses another context's runtime, dataset and
 * teacher (the baseline of the same job); `teacherFeatures` are features already extracted.
 */
export async function createRunContext(
  cfg: TrainConfig,
  o: {
    container: Container;
    logger?: Logger;
    teacherFeatures?: TeacherFeatures;
    teacher?: 'needed' | 'report';
    teacherLatency?: boolean;
    /** With `teacherLatency`: a saved-student teacher is not timed here (the caller times `teacherDir`). */
    timesSavedStudents?: boolean;
    from?: RunContext;
  },
): Promise<RunContext> {
  const container = o.from?.container ?? o.container;
  const log = o.logger ?? createLogger();
  const method = await methodFor(cfg, container);
  if (o.from) return { ...o.from, method };
  const rt = await initRuntime(tfjsBackendFor(cfg.backend), { logger: log, quiet: currentRuntime() !== undefined });
  if (rt.backend === 'wasm' && cfg.fastKernels) installWasmFastKernels();
  const dataset = await prepareDataset(cfg.dataset, container);
  const wanted = method.needsTeacher || o.teacher === 'report';
  if (o.teacherFeatures || !wanted) return { container, rt, dataset, method, teacher: o.teacherFeatures };
  try {
    const t = await obtainTeacher(cfg, dataset, log, container, {
      latency: o.teacherLatency,
      timesSavedStudents: o.timesSavedStudents,
    });
    return {
      container,
      rt,
      dataset,
      method,
      teacher: t.features,
      teacherLatency: t.latency,
      teacherDir: t.savedStudentDir,
    };
  } catch (e) {
    if (method.needsTeacher) throw e;
    log.warn(`no teacher row in the report: ${(e as Error).message}`);
    return { container, rt, dataset, method };
  }
}

export interface StepRecord {
  step: number;
  epoch: number;
  lr: number;
  loss: number;
  components: Record<string, number>;
  weights: number[];
  ms: number;
}

export interface TrainResult {
  runDir: string;
  label: string;
  steps: number;
  epochs: number;
  bestEpoch: number;
  bestValRsum: number;
  val: RetrievalMetrics[];
  test: RetrievalMetrics;
  parameters: { image: number; text: number; head: number; total: number };
  seconds: number;
  /** Where the step ran: 'onnx' (towers and losses), 'onnx-webgpu' or 'tfjs-<backend>'. */
  engine?: string;
}

/** The loop's own checkpointed record. */
interface LoopState {
  step: number;
  epoch: number;
  bestValRsum: number;
  bestEpoch: number;
  val: RetrievalMetrics[];
  elapsedSeconds: number;
  label: string;
}

/** Evaluation of a split with the engine's current weights, or with `weights` (a saved best student). */
export type EvaluateFn = (split: SplitData, splitName: string, weights?: WeightRecord) => Promise<RetrievalMetrics>;

/** The optimizer slice as AdamW options (per-group learning rates). */
function adamwOptions(o: TrainConfig['optimizer']) {
  return {
    lr: o.lr,
    weightDecay: o.weightDecay,
    betas: o.betas,
    eps: o.eps,
    groupLr: { image: o.lrImage, text: o.lrText, head: o.lrHead },
  };
}

/**
 * The tokenizer.json a student trains with when it has no textInit: WordPiece that keeps words whole
 * (trainWholeWordTokenizer: frequent caption words are one token, pieces for the rest), at most
 * `vocabSize` entries, trained on the training captions.
 */
export function trainStudentTokenizer(
  captions: readonly string[],
  o: Pick<TrainConfig['student'], 'vocabSize'>,
): TokenizerJson {
  return trainWholeWordTokenizer(captions, { vocabSize: o.vocabSize });
}

/**
 * Tokenizer for the student: the textInit's own (undefined: the student loads it), the GloVe word-level one for a
 * `glove` text tower, else trainStudentTokenizer's (saved in the run; a resumed run keeps its own).
 */
function studentTokenizer(o: TrainConfig['student'], run: RunDirectory, train: SplitData): TextTokenizer | undefined {
  const path = run.path('tokenizer.json');
  if (o.textInit && o.textInit !== GLOVE_INIT) return undefined; // a Hugging Face folder brings its own
  if (existsSync(path)) return loadTokenizer(path, { maxLength: o.maxLength });
  // a text tower over the GloVe table reads its word-level vocabulary (every GloVe word, not only the captions')
  const json =
    pairDef(o.pair)?.text === 'glove'
      ? (gloveTokenizerJson(o.maxLength) as unknown as TokenizerJson)
      : trainStudentTokenizer(
          train.captions.map((c) => c.text),
          o,
        );
  run.writeJson('tokenizer.json', json);
  return loadTokenizer(path, { maxLength: o.maxLength });
}

/**
 * The dataset chosen by name in the dataset registry, with subsets applied (smoke runs). Takes the
 * config's `dataset` slice (a whole config is accepted too, and its slice used).
 */
export async function prepareDataset(
  slice: TrainConfig['dataset'] | Pick<TrainConfig, 'dataset'>,
  container: Container,
): Promise<Dataset> {
  const o = 'dataset' in slice ? slice.dataset : slice;
  const reg = registryByKind<DatasetOptions, Dataset>(container, 'dataset');
  const ds = await reg.create(
    o.name,
    { dataRoot: o.dataRoot, annotations: o.annotations, imageRoot: o.imageRoot },
    { container },
  );
  const splits: Record<string, SplitData> = {};
  for (const [name, s] of Object.entries(ds.splits))
    splits[name] = subsetSplit(s, name === 'train' ? o.trainSubset : o.evalSubset);
  for (const need of ['train', 'val', 'test']) {
    if (!splits[need] || splits[need].captions.length === 0) {
      throw new DistillError(
        `Dataset '${o.name}' has no '${need}' split (or it is empty): training needs train, val and test.`,
      );
    }
  }
  return { ...ds, splits };
}

/**
 * Where a frozen image trunk's outputs for the train split are cached, keyed by content: the trunk's
 * fingerprint (its weights' bytes, its config), the student's preprocessing, every image's bytes
 * (hashDatasetImages) and the split's size. Undefined for a student without a frozen trunk.
 */
export function frozenTrunkCache(
  student: DualEncoderStudent,
  dataset: Dataset,
  cfg: Pick<TrainConfig, 'dataset'>,
): { file: string; key: string } | undefined {
  const frozen = student.imageEncoder.frozen;
  if (!frozen) return undefined;
  const dir = distillCacheDir();
  const images = hashDatasetImages(dataset, { cacheDir: dir, skipBadImages: cfg.dataset.skipBadImages });
  const key = sha256(
    JSON.stringify({
      v: 1,
      trunk: frozen.fingerprint(),
      pre: student.preprocess,
      images: images.digest,
      n: dataset.splits.train.images.length,
    }),
  );
  return { file: join(dir, 'trunk-features', `student-train-${key.slice(0, 24)}.safetensors`), key };
}

/** The student pair chosen by name in the student registry, with the run's tokenizer and the teacher's dim. */
export async function createStudentFor(
  o: TrainConfig['student'],
  x: { embedDim: number; seed: number; tokenizer?: TextTokenizer; container: Container },
): Promise<DualEncoderStudent> {
  const reg = registryByKind<StudentRegistryConfig, DualEncoderStudent>(x.container, 'student');
  const student = await reg.create(
    o.pair,
    {
      preset: o.preset,
      embedDim: x.embedDim,
      seed: x.seed,
      tokenizer: x.tokenizer,
      maxLength: o.maxLength,
      imageInit: o.imageInit,
      textInit: o.textInit,
      overrides: o.overrides,
    },
    { container: x.container },
  );
  student.normalizeInTraining = o.normalize !== false; // the losses' features (Table 6); inference always normalises
  return student;
}

/** Embeddings scored by an evaluator chosen by name in the evaluator registry (`recall` by default; `options` are its config). */
export async function evaluateEmbeddings(
  emb: Pick<SplitEmbeddings, 'images' | 'texts' | 'dim' | 'textToImage'>,
  o: { container: Container; name?: string; options?: Record<string, unknown> },
): Promise<RetrievalMetrics> {
  const container = o.container;
  const ev = await registryByKind<Record<string, unknown>, Evaluator>(container, 'evaluator').create(
    o.name ?? 'recall',
    o.options ?? {},
    { container },
  );
  return ev.evaluate(emb.images, emb.texts, emb.dim, emb.textToImage);
}

/** The evaluator callback: the engine's embeddings of a split scored by the registry's `recall` evaluator. */
export async function evaluatorFor(
  engine: Pick<StepEngine, 'encodeSplit'>,
  loader: ImageLoader,
  container: Container,
  name = 'recall',
): Promise<EvaluateFn> {
  const ev = await registryByKind<Record<string, unknown>, Evaluator>(container, 'evaluator').create(
    name,
    {},
    { container },
  );
  return async (split, splitName, weights) => {
    const emb = await engine.encodeSplit(split, loader, splitName, weights);
    return ev.evaluate(emb.images, emb.texts, emb.dim, emb.textToImage);
  };
}

/** Tfjs-student evaluation (saved students, tools). */
export async function evaluateStudent(
  student: DualEncoderStudent,
  split: SplitData,
  loader: ImageLoader,
  splitName: string,
  container: Container,
): Promise<RetrievalMetrics> {
  return (await evaluatorFor({ encodeSplit: (s, l, n) => encodeSplit(student, s, l, n) }, loader, container))(
    split,
    splitName,
  );
}

/**
 * Train one student: setup (data, teacher features, student, method, step engine), then a loop of
 * engine steps; validation every epoch (best by RSUM kept), test at the end. Every checkpoint is one
 * atomic file over the engine, the method, the sampler and the loop; `resume` continues exactly where
 * the checkpoint stopped.
 */
export async function train(cfg: TrainConfig, opts: TrainOptions & TrainSetup): Promise<TrainResult> {
  const label = opts.label ?? 'student';
  const log = (opts.logger ?? createLogger()).child(label);
  const t0 = Date.now();
  const run = new RunDirectory(opts.runDir);

  // ---- setup: every part chosen by name in the registries, once (a job runner hands its context in)
  const { container, rt, dataset, method, teacher } =
    opts.context !== undefined
      ? opts.context
      : await createRunContext(cfg, { container: opts.container, logger: log, teacherFeatures: opts.teacherFeatures });
  const trainSplit = dataset.splits.train;
  const embedDim = teacher?.dim ?? 256;
  const student = await createStudentFor(cfg.student, {
    embedDim,
    seed: cfg.seed,
    tokenizer: studentTokenizer(cfg.student, run, trainSplit),
    container,
  });
  const params = student.parameterCount();
  const state = method.createState(embedDim, cfg);
  const { engine, estimate } = await createStepEngine(student, {
    ...cfg,
    rt,
    log,
    head: state.graph.head,
    adamw: adamwOptions(cfg.optimizer),
    textLength: cfg.student.maxLength,
    size: cfg.student.preset,
  });
  engine.useMethodState?.(state); // a resident (webgpu) step keeps the feature queues on the device
  log.info(
    `student ${cfg.student.pair}/${cfg.student.preset}: ${(params.total / 1e6).toFixed(2)}M parameters, embed dim ${embedDim}`,
  );
  if (student.initReport.text) log.info(`text init: ${wordInitLine(student.initReport.text)}`);
  const loader = new ImageLoader(dataset, student.preprocess, {
    memoryCache: true,
    skipBadImages: cfg.dataset.skipBadImages,
    cacheDir: isEmojiDataset(dataset) ? undefined : run.path('..', '.image-cache'),
    logger: log,
  });
  await primeDatasetImages(dataset, loader);
  const trainImages = engine.trainImages
    ? await engine.trainImages(trainSplit, loader, 'train', { log, cache: frozenTrunkCache(student, dataset, cfg) })
    : loader;
  const batches = new BatchMaker(
    trainSplit,
    student.tokenizer!,
    cfg.student.maxLength,
    trainImages,
    teacher && { ...teacher.train, dim: embedDim },
  );
  const sampler =
    cfg.sampling === 'images'
      ? new ImagePairSampler(trainSplit, cfg.batchSize, cfg.seed, cfg.dropLast)
      : new PairSampler(trainSplit, {
          batchSize: cfg.batchSize,
          seed: cfg.seed,
          shuffle: true,
          dropLast: cfg.dropLast,
        });
  const evaluate = await evaluatorFor(engine, loader, container);
  const stepsPerEpoch = sampler.batchesPerEpoch;
  const totalSteps =
    cfg.maxSteps > 0
      ? Math.min(cfg.maxSteps, stepsPerEpoch * cfg.schedule.epochs)
      : stepsPerEpoch * cfg.schedule.epochs;

  // ---- the loop's record, the checkpoint over every stateful part, the metrics log
  let st: LoopState = { step: 0, epoch: 0, bestValRsum: -1, bestEpoch: -1, val: [], elapsedSeconds: 0, label };
  const loop = jsonCheckpoint(
    () => st,
    (v) => (st = v),
    ['step', 'epoch', 'bestValRsum', 'bestEpoch', 'val', 'elapsedSeconds', 'label'],
  );
  const checkpoints = new Checkpointer(
    run.root,
    [engineCheckpoint(engine), methodCheckpoint(state), samplerCheckpoint(sampler), loop],
    log,
  );
  const metrics = new MetricsLog(run.root);
  if (opts.resume) {
    checkpoints.resume();
    st.label = label;
    metrics.truncateAfter(st.step);
    log.info(`resumed from step ${st.step} (epoch ${st.epoch})`);
  } else {
    checkpoints.clear();
    metrics.clear();
  }

  const progress = createProgress({ label: `train ${label}`, total: totalSteps, initial: st.step });
  let lastTick = Date.now();
  while (st.step < totalSteps) {
    const pb = sampler.next();
    st.epoch = pb.epoch;
    engine.lrScale = lrScaleAt(cfg, pb.epoch, st.step);
    const b = await batches.make(pb, st.step);
    const tStep = Date.now();
    const hooks = lossHooks(method, state, b, { step: st.step + 1, runDir: run.root });
    const loss = await engine.step(b.input, hooks);
    if (b.teacherImage && b.teacherText) state.afterStep(b.teacherImage, b.teacherText, b.input.batch);
    st.step++;
    const rec: StepRecord = {
      step: st.step,
      epoch: pb.epoch,
      lr: engine.groupLr('image'),
      loss,
      components: hooks.components,
      weights: hooks.weights,
      ms: Date.now() - tStep,
    };
    metrics.append(rec);
    progress.tick(1, `loss=${loss.toFixed(4)}`);
    const epochDone = sampler.state().cursor >= stepsPerEpoch || st.step >= totalSteps;
    if (epochDone) await endOfEpoch(pb.epoch + 1);
    st.elapsedSeconds += (Date.now() - lastTick) / 1000;
    lastTick = Date.now();
    if (epochDone || st.step % cfg.checkpointEvery === 0) {
      await engine.flush(); // state held on the device (webgpu) comes to the host for the checkpoint
      checkpoints.save();
    }
  }
  progress.done();

  /** Validation; a new best is saved as the run's `best` student. */
  async function endOfEpoch(epoch: number): Promise<void> {
    const val = await evaluate(dataset.splits.val, 'val');
    st.val.push(val);
    metrics.append({ step: st.step, epochEnd: epoch, val: headline(val) });
    log.info(
      `epoch ${epoch}: val RSUM ${val.rsum.toFixed(2)} (R@1 i2t ${val.i2t_r1.toFixed(1)}, t2i ${val.t2i_r1.toFixed(1)})`,
    );
    if (val.rsum > st.bestValRsum) {
      st.bestValRsum = val.rsum;
      st.bestEpoch = epoch;
      await engine.flush();
      engine.syncStudent();
      saveStudent(run.path('best'), student, { label, epoch, step: st.step, valRsum: val.rsum });
    }
  }

  // ---- test with the best student (its weights read from disk and evaluated by the step engine)
  const bestWeights = run.exists('best', 'model.safetensors')
    ? readSavedWeights(run.path('best', 'model.safetensors'))
    : undefined;
  const test = await evaluate(dataset.splits.test, 'test', bestWeights);
  const result: TrainResult = {
    runDir: run.root,
    label,
    steps: st.step,
    epochs: st.val.length,
    bestEpoch: st.bestEpoch,
    bestValRsum: st.bestValRsum,
    val: st.val,
    test,
    parameters: params,
    seconds: st.elapsedSeconds,
    engine: engine.name,
  };
  run.writeJson('result.json', result);
  await engine.release();
  state.dispose();
  student.dispose();
  log.info(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s: test RSUM ${test.rsum.toFixed(2)}`);
  log.info(
    `peak memory ${(peakRssBytes() / 1024 ** 3).toFixed(1)} GB (estimated before the run: ${(estimate.bytes / 1024 ** 3).toFixed(1)} GB)`,
  );
  return result;
}
