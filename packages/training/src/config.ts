import { existsSync, readFileSync } from 'node:fs';
import { DistillError, type BackendChoice } from '@distill/core';
import YAML from 'yaml';

/**
 * One experiment = one config (YAML or JSON), validated, with CLI overrides on top. The resolved
 * config is saved into the run folder. Defaults are the paper's where the embedded emoji benchmark
 * allows (see PRESETS for the small-machine settings).
 */
/** tfjs backends, plus 'onnx': the student's towers (and losses with a graph form) train as onnxruntime-node graphs. */
export type TrainBackend = BackendChoice | 'onnx';
export const TRAIN_BACKENDS: TrainBackend[] = ['auto', 'onnx', 'tensorflow', 'wasm', 'cpu'];

export interface TrainConfig {
  seed: number;
  /** auto: tensorflow (tfjs-node) when it loads, else onnx when the student supports it, else wasm > cpu. */
  backend: TrainBackend;
  /** onnxruntime intra-op threads for the onnx backend (0 = all cores; the main job halves it per process). */
  threads: number;
  dataset: { name: string; dataRoot?: string; annotations?: string; imageRoot?: string; skipBadImages?: boolean; trainSubset?: number; evalSubset?: number };
  teacher: { name: string; model?: string; batchSize: number };
  student: {
    pair: string;
    preset: 'tiny' | 'small' | 'base';
    imageInit?: string;
    textInit?: string;
    maxLength: number;
    vocabSize: number;
    /** Partial encoder configs over the preset, e.g. { image: { hiddenSize: 128 } }. */
    overrides?: { image?: Record<string, unknown>; text?: Record<string, unknown> };
  };
  /** A named method (dsmd, dsmd-official, dcd, kd, fitnet, rkd, clip-kd, none) or a list such as cd,fd,sd,hnd. */
  losses: string;
  /** Balancer name; default = the method's own (dsmd-official for dsmd methods, static otherwise). */
  balancer?: string;
  lossOptions: { temperature: number; queueSize: number; margin?: number; hardNegative?: 'sum' | 'max' };
  optimizer: { lr: number; weightDecay: number; lrImage?: number; lrText?: number; lrHead?: number; betas: [number, number]; eps: number };
  schedule: { epochs: number; decayEpoch: number; decayFactor: number; warmupSteps: number };
  batchSize: number;
  /** An epoch visits every caption (official DSMD) or every image once with one of its captions. */
  sampling: 'captions' | 'images';
  dropLast: boolean;
  /** Checkpoint every N optimizer steps (and at every epoch end). */
  checkpointEvery: number;
  /** Stop after this many steps in total (0 = no limit): for tests and the smoke matrix. */
  maxSteps: number;
  /** Also train the no-teacher student of the same size and budget and report it (the main job's baseline). */
  baseline: boolean;
  /** Measure encoder latency for the report. */
  latency: boolean;
  /** On the wasm backend, install @distill/core's fast kernels (rank>=5 transposes in JS, batched matmuls through XNNPACK). */
  fastKernels: boolean;
}

export const DEFAULT_CONFIG: TrainConfig = {
  seed: 0,
  backend: 'auto',
  threads: 0,
  dataset: { name: 'emoji' },
  teacher: { name: 'emoji', batchSize: 64 },
  student: { pair: 'vit-bert', preset: 'tiny', maxLength: 30, vocabSize: 2000 },
  losses: 'dsmd',
  lossOptions: { temperature: 0.05, queueSize: 8192 },
  optimizer: { lr: 1e-4, weightDecay: 1e-4, betas: [0.9, 0.999], eps: 1e-8 },
  schedule: { epochs: 20, decayEpoch: 10, decayFactor: 0.1, warmupSteps: 0 },
  batchSize: 64,
  sampling: 'captions',
  dropLast: true,
  checkpointEvery: 200,
  maxSteps: 0,
  baseline: false,
  latency: true,
  fastKernels: true,
};

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] };

/**
 * Named presets (torchdistill-style: one config per experiment).
 * - `emoji` (the main job, default with no flags): tiny vit-bert on the embedded emoji benchmark, sized
 *   to finish in about 15 minutes on 2 cores, with the no-teacher baseline trained alongside.
 * - `smoke`: the CI matrix (tiny subset, 1 epoch, < 1 minute per pair).
 * - `paper`: the DSMD paper's setting (base students, Flickr30K, 20 epochs, batch 64, queue 8192).
 */
export const PRESETS: Record<string, DeepPartial<TrainConfig>> = {
  emoji: {
    // The official DSMD semantics (hinge summed over negatives, margin 0.2, official balancer): on this
    // benchmark the paper mode's hardest-negative hinge with margin 0 stalls the tiny student at chance.
    losses: 'dsmd-official',
    sampling: 'images',
    lossOptions: { queueSize: 4096 },
    optimizer: { lr: 1e-3, weightDecay: 1e-4 },
    schedule: { epochs: 12, decayEpoch: 9, decayFactor: 0.1, warmupSteps: 100 },
    batchSize: 64,
    baseline: true,
  },
  smoke: {
    sampling: 'images',
    dataset: { name: 'emoji', trainSubset: 256, evalSubset: 64 },
    lossOptions: { queueSize: 256 },
    optimizer: { lr: 1e-3 },
    schedule: { epochs: 2, decayEpoch: 1, decayFactor: 0.1, warmupSteps: 0 },
    batchSize: 32,
    checkpointEvery: 4,
    baseline: false,
    latency: false,
  },
  /**
   * The embedded emoji teacher (`distill teacher pretrain`): a wider, deeper vit-bert than the `tiny`
   * student, trained contrastively (no teacher) on the emoji train split for longer.
   */
  'emoji-teacher': {
    losses: 'none',
    sampling: 'images',
    student: {
      pair: 'vit-bert',
      preset: 'tiny',
      overrides: {
        image: { hiddenSize: 128, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 512 },
        text: { hiddenSize: 128, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 512 },
      },
    },
    optimizer: { lr: 1e-3, weightDecay: 1e-4 },
    schedule: { epochs: 30, decayEpoch: 24, decayFactor: 0.1, warmupSteps: 100 },
    batchSize: 64,
    checkpointEvery: 50,
    baseline: false,
    latency: false,
  },
  paper: {
    dataset: { name: 'flickr30k' },
    teacher: { name: 'beit3' },
    student: { pair: 'vit-bert', preset: 'base' },
    losses: 'dsmd',
    lossOptions: { temperature: 0.05, queueSize: 8192 },
    optimizer: { lr: 1e-4, weightDecay: 1e-4 },
    schedule: { epochs: 20, decayEpoch: 10, decayFactor: 0.1, warmupSteps: 0 },
    batchSize: 64,
    baseline: false,
  },
};

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

export function deepMerge<T>(base: T, over: unknown): T {
  if (!isObject(over)) return base;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    out[k] = isObject(v) && isObject(out[k]) ? deepMerge(out[k], v) : v;
  }
  return out as T;
}

/** Read a YAML or JSON experiment file. */
export function readConfigFile(path: string): DeepPartial<TrainConfig> {
  if (!existsSync(path)) throw new DistillError(`Config file not found: ${path}`, 2);
  const text = readFileSync(path, 'utf8');
  try {
    const v = path.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
    if (!isObject(v)) throw new Error('the top level must be a mapping');
    return v as DeepPartial<TrainConfig>;
  } catch (e) {
    throw new DistillError(`Could not parse config ${path}: ${(e as Error).message}`, 2);
  }
}

const KNOWN = new Set(Object.keys(DEFAULT_CONFIG).concat(['balancer']));

/** defaults <- preset <- config file <- CLI overrides; then validated. */
export function resolveConfig(opts: { preset?: string; file?: DeepPartial<TrainConfig>; overrides?: DeepPartial<TrainConfig> }): TrainConfig {
  let cfg = DEFAULT_CONFIG;
  const presetName = opts.preset ?? 'emoji';
  const preset = PRESETS[presetName];
  if (!preset) throw new DistillError(`Unknown preset '${presetName}'. Available: ${Object.keys(PRESETS).join(', ')}.`, 2);
  cfg = deepMerge(cfg, preset);
  for (const layer of [opts.file, opts.overrides]) {
    if (!layer) continue;
    for (const k of Object.keys(layer)) if (!KNOWN.has(k)) throw new DistillError(`Unknown config key '${k}'. Known keys: ${[...KNOWN].join(', ')}.`, 2);
    cfg = deepMerge(cfg, layer);
  }
  validateConfig(cfg);
  return cfg;
}

export function validateConfig(c: TrainConfig): void {
  const bad = (msg: string) => {
    throw new DistillError(`Invalid config: ${msg}`, 2);
  };
  const posInt = (v: number, name: string) => (!Number.isInteger(v) || v <= 0) && bad(`${name} must be a positive integer, got ${v}`);
  posInt(c.batchSize, 'batchSize');
  posInt(c.schedule.epochs, 'schedule.epochs');
  posInt(c.lossOptions.queueSize, 'lossOptions.queueSize');
  posInt(c.checkpointEvery, 'checkpointEvery');
  if (!(c.optimizer.lr > 0)) bad(`optimizer.lr must be > 0, got ${c.optimizer.lr}`);
  if (!(c.optimizer.weightDecay >= 0)) bad(`optimizer.weightDecay must be >= 0, got ${c.optimizer.weightDecay}`);
  if (!(c.lossOptions.temperature > 0)) bad(`lossOptions.temperature must be > 0, got ${c.lossOptions.temperature}`);
  if (c.lossOptions.queueSize < c.batchSize) bad(`lossOptions.queueSize (${c.lossOptions.queueSize}) must be >= batchSize (${c.batchSize})`);
  if (!(c.schedule.decayFactor > 0 && c.schedule.decayFactor <= 1)) bad(`schedule.decayFactor must be in (0, 1], got ${c.schedule.decayFactor}`);
  if (c.sampling !== 'captions' && c.sampling !== 'images') bad(`sampling must be 'captions' or 'images', got ${String(c.sampling)}`);
  if (!TRAIN_BACKENDS.includes(c.backend)) bad(`backend must be one of ${TRAIN_BACKENDS.join(', ')}, got ${String(c.backend)}`);
  if (!Number.isInteger(c.threads) || c.threads < 0) bad(`threads must be an integer >= 0 (0 = all cores), got ${c.threads}`);
  if (!Number.isInteger(c.maxSteps) || c.maxSteps < 0) bad(`maxSteps must be an integer >= 0, got ${c.maxSteps}`);
}
