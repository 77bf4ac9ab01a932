import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import {
  createLogger,
  createProgress,
  currentRuntime,
  DistillError,
  initRuntime,
  installWasmFastKernels,
  RunDirectory,
  tf,
  type Dataset,
  type Logger,
  type NamedVariable,
  type RetrievalMetrics,
  type SplitData,
} from '@distill/core';
import { ImageLoader, loadDataset, PairSampler, primeEmojiImages, type SamplerState } from '@distill/data';
import { computeRecall, headline } from '@distill/eval';
import {
  createStudent,
  getStudentWeights,
  loadTokenizer,
  setStudentWeights,
  trainWordPieceTokenizer,
  type DualEncoderStudent,
} from '@distill/student-architectures';
import type { AdamWState } from './adamw.js';
import { chooseStudentEngine, tfjsBackendFor } from './engine.js';
import { checkMemory, estimateStepMemory, evaluateWith, OnnxStepEngine, peakRssBytes, planOnnxStep, readSavedWeights, TfjsStepEngine, type StepEngine } from './step-engine.js';
import { clearRunCheckpoints, loadRunCheckpoint, nonFiniteLossMessage, saveRunCheckpoint } from './checkpoint.js';
import type { TrainConfig } from './config.js';
import { encodeSplit, subsetSplit } from './encode.js';
import { ImagePairSampler } from './image-sampler.js';
import { resolveMethod, type Method } from './methods.js';
import { saveStudent } from './saved-student.js';
import { lrScaleAt } from './schedule.js';
import { obtainTeacherFeatures, type TeacherFeatures } from './teacher-features.js';

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
  /** Where the step ran: 'onnx' (towers and losses), 'onnx+tfjs-<backend>-losses' (towers only) or 'tfjs-<backend>'. */
  engine?: string;
}

interface TrainState {
  step: number;
  epoch: number;
  sampler: SamplerState;
  balancer: unknown;
  optimizer: { step: number; lrScale: number };
  queuePtr?: number;
  bestValRsum: number;
  bestEpoch: number;
  val: RetrievalMetrics[];
  elapsedSeconds: number;
}

/** Tokenizer for the student: the textInit's own, else WordPiece trained on the training captions (saved in the run). */
function studentTokenizer(cfg: TrainConfig, run: RunDirectory, train: SplitData) {
  const path = run.path('tokenizer.json');
  if (cfg.student.textInit) return undefined; // createStudent loads <textInit>/tokenizer.json
  if (existsSync(path)) return loadTokenizer(path, { maxLength: cfg.student.maxLength });
  const json = trainWordPieceTokenizer(
    train.captions.map((c) => c.text),
    { vocabSize: cfg.student.vocabSize },
  );
  run.writeJson('tokenizer.json', json);
  return loadTokenizer(path, { maxLength: cfg.student.maxLength });
}

/** The dataset with subsets applied (smoke runs). */
export async function prepareDataset(cfg: TrainConfig): Promise<Dataset> {
  const ds = await loadDataset(cfg.dataset.name, {
    dataRoot: cfg.dataset.dataRoot,
    annotations: cfg.dataset.annotations,
    imageRoot: cfg.dataset.imageRoot,
  } as never);
  const splits: Record<string, SplitData> = {};
  for (const [name, s] of Object.entries(ds.splits)) {
    splits[name] = subsetSplit(s, name === 'train' ? cfg.dataset.trainSubset : cfg.dataset.evalSubset);
  }
  for (const need of ['train', 'val', 'test']) {
    if (!splits[need] || splits[need].captions.length === 0) {
      throw new DistillError(`Dataset '${cfg.dataset.name}' has no '${need}' split (or it is empty): training needs train, val and test.`);
    }
  }
  return { ...ds, splits };
}

export async function evaluateStudent(student: DualEncoderStudent, split: SplitData, loader: ImageLoader, splitName: string): Promise<RetrievalMetrics> {
  const emb = await encodeSplit(student, split, loader, splitName);
  return computeRecall(emb.images, emb.texts, emb.dim, emb.textToImage);
}

/**
 * Train one student: data -> teacher features -> student -> losses -> balancer -> AdamW -> queue update,
 * validation every epoch (best by RSUM kept), test at the end. Every checkpoint is one atomic file;
 * `resume` continues exactly where the checkpoint stopped.
 */
export async function train(cfg: TrainConfig, opts: TrainOptions): Promise<TrainResult> {
  const label = opts.label ?? 'student';
  const log = (opts.logger ?? createLogger()).child(label);
  const t0 = Date.now();
  const rt = await initRuntime(tfjsBackendFor(cfg.backend), { logger: log, quiet: currentRuntime() !== undefined });
  if (rt.backend === 'wasm' && cfg.fastKernels) installWasmFastKernels();
  const run = new RunDirectory(opts.runDir);
  const method: Method = resolveMethod(cfg);
  const dataset = await prepareDataset(cfg);
  const train = dataset.splits.train;

  // ---- teacher features (cache) for the train split, when the method needs them
  let teacher: TeacherFeatures | undefined = opts.teacherFeatures;
  if (method.needsTeacher && !teacher) teacher = await obtainTeacherFeatures(cfg, dataset, log);
  const embedDim = teacher?.dim ?? 256;

  // ---- student
  const tokenizer = studentTokenizer(cfg, run, train);
  const student = createStudent(cfg.student.pair, {
    preset: cfg.student.preset,
    embedDim,
    seed: cfg.seed,
    tokenizer,
    maxLength: cfg.student.maxLength,
    imageInit: cfg.student.imageInit,
    textInit: cfg.student.textInit,
    overrides: cfg.student.overrides,
  });
  const params = student.parameterCount();
  const state = method.createState(embedDim, cfg);
  const onnx = await chooseStudentEngine(cfg.backend, rt, student, { threads: cfg.threads, seed: cfg.seed, log, head: state.graph?.head, lossName: method.name, device: cfg.device });
  const lossInGraph = !!(onnx && state.graph);
  log.info(`student ${cfg.student.pair}/${cfg.student.preset}: ${(params.total / 1e6).toFixed(2)}M parameters, embed dim ${embedDim}`);
  const { crop } = student.preprocess;
  const loader = new ImageLoader(dataset, student.preprocess, {
    memoryCache: true,
    skipBadImages: cfg.dataset.skipBadImages,
    cacheDir: dataset.name.startsWith('emoji') ? undefined : run.path('..', '.image-cache'),
    logger: log,
  });

  if (dataset.name.startsWith('emoji')) await primeEmojiImages(loader);

  // ---- pre-tokenise the training captions once
  const enc = student.tokenizer!.encodeArrays(train.captions.map((c) => c.text));
  const L = cfg.student.maxLength;
  const captionLength = new Int32Array(train.captions.length);
  for (let c = 0; c < captionLength.length; c++) {
    let n = 0;
    for (let k = 0; k < L; k++) n += enc.mask[c * L + k];
    captionLength[c] = n;
  }

  // ---- optimisation state: the step engine owns the weights it trains and the AdamW moments
  const vars: NamedVariable[] = student.variables();
  const adamw = {
    lr: cfg.optimizer.lr,
    weightDecay: cfg.optimizer.weightDecay,
    betas: cfg.optimizer.betas,
    eps: cfg.optimizer.eps,
    groupLr: { image: cfg.optimizer.lrImage, text: cfg.optimizer.lrText, head: cfg.optimizer.lrHead },
  };
  // memory first: a configuration that cannot fit is refused before any work, with the estimate
  const memPlan = onnx
    ? planOnnxStep(onnx, { params: params.total, batchSize: cfg.batchSize, textLength: L, lossInGraph, size: cfg.student.preset })
    : { mode: undefined, estimate: estimateStepMemory({ engine: 'tfjs', params: params.total }), warning: undefined };
  const estimate = memPlan.estimate;
  if (!onnx) checkMemory(estimate, { engine: 'tfjs', batchSize: cfg.batchSize, size: cfg.student.preset });
  if (memPlan.warning) log.warn(memPlan.warning);
  if (memPlan.mode === 'fused') log.info(`memory: ${(estimate.bytes / 1024 ** 3).toFixed(1)} GB per step with the forward recomputed inside the backward run ('fused'; the faster 'split' form would need ${((memPlan.splitBytes ?? 0) / 1024 ** 3).toFixed(1)} GB)`);
  const engine: StepEngine = onnx ? new OnnxStepEngine(student, onnx, adamw, lossInGraph, rt.backend) : new TfjsStepEngine(student, adamw, rt.backend);
  const sampler =
    cfg.sampling === 'images'
      ? new ImagePairSampler(train, cfg.batchSize, cfg.seed, cfg.dropLast)
      : new PairSampler(train, { batchSize: cfg.batchSize, seed: cfg.seed, shuffle: true, dropLast: cfg.dropLast });
  const stepsPerEpoch = sampler.batchesPerEpoch;
  const totalSteps = cfg.maxSteps > 0 ? Math.min(cfg.maxSteps, stepsPerEpoch * cfg.schedule.epochs) : stepsPerEpoch * cfg.schedule.epochs;

  let st: TrainState = {
    step: 0,
    epoch: 0,
    sampler: sampler.state(),
    balancer: undefined,
    optimizer: { step: 0, lrScale: 1 },
    bestValRsum: -1,
    bestEpoch: -1,
    val: [],
    elapsedSeconds: 0,
  };
  const metricsPath = run.path('metrics.jsonl');
  if (opts.resume) {
    // The latest checkpoint that verifies (a corrupt one is reported and the previous one used).
    const found = loadRunCheckpoint<TrainState & { label: string }>(run.root, log);
    if (!found) throw new DistillError(`Cannot resume: ${run.root} has no checkpoint (the run wrote none yet). Start it again without --resume.`, 2);
    const ck = found.ckpt;
    st = ck.state;
    const weights: Record<string, { shape: number[]; data: Float32Array }> = {};
    const m: AdamWState['m'] = {};
    const v: AdamWState['v'] = {};
    for (const [k, t] of Object.entries(ck.tensors)) {
      if (k.startsWith('student/')) weights[k.slice(8)] = t;
      else if (k.startsWith('adamw.m/')) m[k.slice(8)] = t.data;
      else if (k.startsWith('adamw.v/')) v[k.slice(8)] = t.data;
    }
    engine.load({ weights, optimizer: { ...st.optimizer, m, v } });
    state.load(st.balancer, ck.tensors, st.queuePtr);
    sampler.load(st.sampler);
    // Drop metric lines written after the checkpoint (the killed run got further than it saved).
    if (existsSync(metricsPath)) {
      const keep = readFileSync(metricsPath, 'utf8')
        .split('\n')
        .filter((l) => l && (JSON.parse(l) as { step?: number; epochEnd?: number }).step! <= st.step);
      writeFileSync(metricsPath, keep.map((l) => l + '\n').join(''));
    }
    log.info(`resumed from step ${st.step} (epoch ${st.epoch})`);
  } else {
    // A fresh start: an earlier attempt's checkpoints must not be resumed into this run's records.
    clearRunCheckpoints(run.root);
    if (existsSync(metricsPath)) writeFileSync(metricsPath, '');
  }

  const saveCheckpoint = () => {
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
    const es = engine.state();
    for (const [k, w] of Object.entries(es.weights)) tensors[`student/${k}`] = w;
    const os = es.optimizer;
    for (const p of vars) {
      tensors[`adamw.m/${p.name}`] = { shape: [...p.variable.shape], data: os.m[p.name] };
      tensors[`adamw.v/${p.name}`] = { shape: [...p.variable.shape], data: os.v[p.name] };
    }
    const s = state.save();
    Object.assign(tensors, s.tensors);
    st = {
      ...st,
      sampler: sampler.state(),
      balancer: s.balancer,
      queuePtr: s.queuePtr,
      optimizer: { step: os.step, lrScale: os.lrScale },
      elapsedSeconds: st.elapsedSeconds,
    };
    saveRunCheckpoint(run.root, { tensors, state: { ...st, label } });
  };

  const valSplit = dataset.splits.val;
  const progress = createProgress({ label: `train ${label}`, total: totalSteps, initial: st.step });
  let lastTick = Date.now();
  const teacherImg = teacher?.train.images;
  const teacherTxt = teacher?.train.texts;

  while (st.step < totalSteps) {
    const batch = sampler.next();
    if (batch.epoch !== st.epoch) {
      st.epoch = batch.epoch;
    }
    engine.lrScale = lrScaleAt(cfg, batch.epoch, st.step);
    const B = batch.captions.length;
    const px = await loader.load(batch.images, 'train');
    // Dynamic padding: the batch is cut to its longest caption (padding positions are masked anyway).
    let Lb = 1;
    for (const c of batch.captions) Lb = Math.max(Lb, captionLength[c]);
    const ids = new Int32Array(B * Lb);
    const mask = new Int32Array(B * Lb);
    for (let i = 0; i < B; i++) {
      ids.set(enc.ids.subarray(batch.captions[i] * L, batch.captions[i] * L + Lb), i * Lb);
      mask.set(enc.mask.subarray(batch.captions[i] * L, batch.captions[i] * L + Lb), i * Lb);
    }
    const groups = positiveGroups(batch.images, batch.captions, train);
    const tStep = Date.now();
    let values: Record<string, number> = {};
    let weights: number[] = [];
    const tI = teacherImg ? gatherRowsArray(teacherImg, batch.images, embedDim) : undefined;
    const tT = teacherTxt ? gatherRowsArray(teacherTxt, batch.captions, embedDim) : undefined;
    // The NaN check and the balancer run on the loss components; the trained loss is sum_c w_c L_c.
    const balance = (comps: Record<string, number>): number[] => {
      values = comps;
      const names = Object.keys(comps);
      for (const n of names) {
        if (!Number.isFinite(values[n])) {
          throw new DistillError(nonFiniteLossMessage({ loss: n, value: values[n], step: st.step + 1, epoch: batch.epoch + 1, runDir: run.root }));
        }
      }
      weights = state.balancer.weights(names.map((n) => values[n]));
      return weights;
    };
    const balancedLoss = (sI: tf.Tensor2D, sT: tf.Tensor2D): tf.Scalar => {
      const teacherImage = tI ? tf.tensor2d(tI, [B, embedDim]) : undefined;
      const teacherText = tT ? tf.tensor2d(tT, [B, embedDim]) : undefined;
      const comps = method.loss({ studentImage: sI, studentText: sT, teacherImage, teacherText, imageIds: groups }, state);
      const names = Object.keys(comps);
      const w = balance(Object.fromEntries(names.map((n) => [n, comps[n].dataSync()[0]])));
      return names.map((n, i) => comps[n].mul(w[i])).reduce((a, b) => a.add(b)) as tf.Scalar;
    };
    const loss = await engine.step(
      { pixels: px, ids, mask, batch: B, length: Lb, step: st.step },
      {
        balance,
        tfjsLoss: balancedLoss,
        graphFeeds: state.graph ? () => state.graph!.feeds({ batch: B, teacherImage: tI, teacherText: tT, imageIds: groups }) : undefined,
      },
    );
    if (tI && tT) state.afterStep(tI, tT, B);
    st.step++;
    const rec: StepRecord = {
      step: st.step,
      epoch: batch.epoch,
      lr: engine.groupLr('image'),
      loss,
      components: values,
      weights,
      ms: Date.now() - tStep,
    };
    appendFileSync(metricsPath, JSON.stringify(rec) + '\n');
    progress.tick(1, `loss=${loss.toFixed(4)}`);
    const epochDone = sampler.state().cursor >= stepsPerEpoch || st.step >= totalSteps;
    if (epochDone) {
      const val = await evaluateWith(engine, valSplit, loader, 'val');
      st.val.push(val);
      appendFileSync(metricsPath, JSON.stringify({ step: st.step, epochEnd: batch.epoch + 1, val: headline(val) }) + '\n');
      log.info(`epoch ${batch.epoch + 1}: val RSUM ${val.rsum.toFixed(2)} (R@1 i2t ${val.i2t_r1.toFixed(1)}, t2i ${val.t2i_r1.toFixed(1)})`);
      if (val.rsum > st.bestValRsum) {
        st.bestValRsum = val.rsum;
        st.bestEpoch = batch.epoch + 1;
        await engine.flush(); // weights and moments on the device (webgpu) come to the host
        engine.syncStudent();
        saveStudent(run.path('best'), student, { label, epoch: batch.epoch + 1, step: st.step, valRsum: val.rsum });
      }
    }
    st.elapsedSeconds += (Date.now() - lastTick) / 1000;
    lastTick = Date.now();
    if (epochDone || st.step % cfg.checkpointEvery === 0) {
      await engine.flush();
      saveCheckpoint();
    }
  }
  progress.done();

  // ---- test with the best student
  // (the best weights are read from disk and evaluated by the step engine: no second tfjs student)
  const bestWeights = run.exists('best', 'model.safetensors') ? readSavedWeights(run.path('best', 'model.safetensors')) : undefined;
  const test = await evaluateWith(engine, dataset.splits.test, loader, 'test', bestWeights);
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
  log.info(`peak memory ${(peakRssBytes() / 1024 ** 3).toFixed(1)} GB (estimated before the run: ${(estimate.bytes / 1024 ** 3).toFixed(1)} GB)`);
  return result;
}

/**
 * Row i and row j of a batch are positives of each other when they show the same image or carry the
 * same caption text (the emoji benchmark's two drawings of one emoji share their captions): group id =
 * the first row of the batch they match.
 */
export function positiveGroups(images: Int32Array, captions: Int32Array, split: SplitData): Int32Array {
  const byImage = new Map<number, number>();
  const byText = new Map<string, number>();
  const out = new Int32Array(images.length);
  for (let i = 0; i < images.length; i++) {
    const text = split.captions[captions[i]].text;
    const g = byImage.get(images[i]) ?? byText.get(text) ?? i;
    out[i] = g;
    if (!byImage.has(images[i])) byImage.set(images[i], g);
    if (!byText.has(text)) byText.set(text, g);
  }
  return out;
}

function gatherRowsArray(src: Float32Array, rows: ArrayLike<number>, dim: number): Float32Array {
  const out = new Float32Array(rows.length * dim);
  for (let i = 0; i < rows.length; i++) out.set(src.subarray(rows[i] * dim, (rows[i] + 1) * dim), i * dim);
  return out;
}
