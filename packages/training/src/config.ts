import { existsSync, readFileSync } from 'node:fs';
import { DistillError, registryByKind, type BackendChoice, type Container, type RegistryKind } from '@distill/core';
import {
  IMAGE_PRESETS,
  PAIRS,
  PRESETS as STUDENT_SIZE_NAMES,
  TEXT_PRESETS,
  type PresetName,
} from '@distill/student-architectures';
import YAML from 'yaml';
import { z } from 'zod';

/**
 * One experiment = one config (YAML or JSON), validated, with CLI overrides on top. The resolved
 * config is saved into the run folder. Defaults are the paper's where the embedded emoji benchmark
 * allows (see PRESETS for the small-machine settings).
 */
/** tfjs backends, plus 'onnx': the student's towers (and losses with a graph form) train as onnxruntime-node graphs. */
export type TrainBackend = BackendChoice | 'onnx';
export const TRAIN_BACKENDS: TrainBackend[] = ['auto', 'onnx', 'tensorflow', 'wasm', 'cpu'];
/** Where the onnx engine runs: onnxruntime's CPU provider, its WebGPU provider, or webgpu when a real (non-software) adapter is found. */
export type TrainDevice = 'cpu' | 'webgpu' | 'auto';
export const TRAIN_DEVICES: readonly TrainDevice[] = ['cpu', 'webgpu', 'auto'];

export interface TrainConfig {
  seed: number;
  /** auto: tensorflow (tfjs-node) when it loads, else onnx when the student supports it, else wasm > cpu. */
  backend: TrainBackend;
  /** onnxruntime intra-op threads for the onnx backend (0 = all cores; the main job halves it per process). */
  threads: number;
  /**
   * Where the onnx engine's graphs run (default cpu): webgpu = onnxruntime's WebGPU provider (Vulkan;
   * weights uploaded each step for now); auto = webgpu when the probe finds a non-software adapter.
   * Part of the config hash (float rounding differs between devices); 'cpu' is left out of it.
   */
  device: TrainDevice;
  dataset: {
    name: string;
    dataRoot?: string;
    annotations?: string;
    imageRoot?: string;
    skipBadImages?: boolean;
    trainSubset?: number;
    evalSubset?: number;
  };
  teacher: { name: string; model?: string; batchSize: number };
  student: {
    pair: string;
    preset: 'tiny' | 'small' | 'base';
    imageInit?: string;
    /** A Hugging Face folder, or 'glove': GloVe vectors for the word embeddings of the tokenizer's whole-word tokens. */
    textInit?: string;
    maxLength: number;
    vocabSize: number;
    /** Partial encoder configs over the preset, e.g. { image: { hiddenSize: 128 } }. */
    overrides?: { image?: Record<string, unknown>; text?: Record<string, unknown> };
    /**
     * L2-normalise the student's projected features before the losses (default true, the paper's and
     * the official code's setting; false = Table 6's ablation, the losses see fc(f) itself). Training
     * only: evaluation, retrieval and export always normalise (retrieval ranks by cosine).
     * Part of the config hash when false.
     */
    normalize: boolean;
  };
  /** A named method (dsmd, dsmd-official, dcd, kd, fitnet, rkd, clip-kd, none) or a list such as cd,fd,sd,hnd. */
  losses: string;
  /** Balancer name; default = the method's own (dsmd-official for dsmd methods, static otherwise). */
  balancer?: string;
  /** Balancer settings: the softmax temperature of the dsmd balancers (default 1; the paper's Table 10 varies it). */
  balancerOptions?: { temperature?: number };
  /** dcd: DCD's candidates per row, distillation temperature and mix (default 8, 1, 0.2; topK = batch size scores every in-batch candidate). */
  lossOptions: {
    temperature: number;
    queueSize: number;
    margin?: number;
    hardNegative?: 'sum' | 'max';
    dcd?: { topK?: number; temperature?: number; alpha?: number };
  };
  optimizer: {
    lr: number;
    weightDecay: number;
    lrImage?: number;
    lrText?: number;
    lrHead?: number;
    betas: [number, number];
    eps: number;
  };
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
  /** Plugin modules (files, package folders or package names) whose register(container) adds registry entries; loaded before the names are checked. */
  plugins?: string[];
  /** sha256 of each plugin's content (its package's files, or the file), by the module file in `plugins`: --resume refuses a changed plugin. */
  pluginHashes?: Record<string, string>;
}

export const DEFAULT_CONFIG: TrainConfig = {
  seed: 0,
  backend: 'auto',
  threads: 0,
  device: 'cpu',
  dataset: { name: 'emoji' },
  teacher: { name: 'emoji', batchSize: 64 },
  // maxLength and vocabSize: measured on the emoji and glyphs captions with the whole-word tokenizer (docs/tokenizer.md)
  student: { pair: 'vit-bert', preset: 'tiny', maxLength: 24, vocabSize: 6000, normalize: true },
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

export type DeepPartial<T> = {
  [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K];
};

/**
 * The embedded emoji teacher (`distill teacher pretrain`): a wider, deeper vit-bert than the `tiny`
 * student, trained contrastively (no teacher) on the emoji train split for longer.
 */
const EMOJI_TEACHER: DeepPartial<TrainConfig> = {
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
};

/**
 * The main job: the preset `distill train` uses when no --preset is given (the larger embedded
 * benchmark, 13 min cold on 2 cores). The library's resolveConfig defaults to `emoji` (the small, fast set).
 */
export const MAIN_JOB_PRESET = 'glyphs';

/**
 * Named presets (torchdistill-style: one config per experiment).
 * - `emoji`: tiny vit-bert on the small embedded emoji benchmark (2 min on 2 cores), with the no-teacher
 *   baseline trained alongside; the default of resolveConfig.
 * - `smoke`: the CI matrix (tiny subset, 1 epoch, < 1 minute per pair).
 * - `glyphs`: the main job (`distill train` with no flags, MAIN_JOB_PRESET): the glyphs benchmark with
 *   teacher v2, 13 min cold on 2 cores; `emoji-teacher`, `glyphs-teacher`: the
 *   embedded teachers (`distill teacher pretrain`).
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
  'emoji-teacher': EMOJI_TEACHER,
  /**
   * Teacher v2 (`distill teacher pretrain --dataset glyphs`): the emoji teacher's towers and recipe,
   * trained on the glyphs train split (23,542 images of 9,672 concepts) for 32 epochs.
   */
  'glyphs-teacher': {
    ...EMOJI_TEACHER,
    dataset: { name: 'glyphs' },
    schedule: { epochs: 32, decayEpoch: 26, decayFactor: 0.1, warmupSteps: 100 },
    checkpointEvery: 200,
  },
  /**
   * The main job on `glyphs` (`distill train --preset glyphs`): the embedded glyphs teacher (v3: frozen
   * MobileNetV2 at 96 px + GloVe under trained heads) distilled with KD into the `small` mobilenet-glove (the
   * same frozen parts at 64 px, the glyphs' own size; only its heads train, on the trunk's outputs computed
   * once), with the no-teacher student of the same size and budget. KD was chosen by test RSUM among kd,
   * none, clip-kd, dsmd-official and dsmd at 6 epochs; 64 px over 32 px (`tiny`, 5x faster image encoder) by
   * everyday-query search (hit@5 56.5% against 43.5%) and the seed study (docs/glyphs.md).
   */
  glyphs: {
    dataset: { name: 'glyphs' },
    teacher: { name: 'glyphs' },
    student: { pair: 'mobilenet-glove', preset: 'small' },
    losses: 'kd',
    sampling: 'images',
    lossOptions: { queueSize: 4096 },
    optimizer: { lr: 1e-3, weightDecay: 1e-4 },
    schedule: { epochs: 20, decayEpoch: 16, decayFactor: 0.1, warmupSteps: 100 },
    batchSize: 64,
    checkpointEvery: 200,
    baseline: true,
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
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new DistillError(
      `Cannot read config file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}. Pass a readable YAML or JSON file to --config.`,
      2,
    );
  }
  try {
    const v = path.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
    if (!isObject(v)) throw new Error('the top level must be a mapping');
    return v as DeepPartial<TrainConfig>;
  } catch (e) {
    throw new DistillError(`Could not parse config ${path}: ${(e as Error).message}`, 2);
  }
}

// ---------------------------------------------------------------------------------------------------
// The schema of a resolved config (zod, strict at every level). TrainConfig above is checked against it
// at compile time (SchemaMatchesType below), so the two cannot drift apart.

/** Student sizes (`--size`, config key `student.preset`). */
export const STUDENT_SIZES: readonly PresetName[] = STUDENT_SIZE_NAMES;
export const SAMPLINGS = ['captions', 'images'] as const;

const expected = (what: string) => ({ error: `expected ${what}` });
const intAtLeast = (min: number) => {
  const e = expected(`an integer >= ${min}`);
  return z.number(e).int(e).min(min, e);
};
const positive = (what = 'a number > 0') => z.number(expected(what)).gt(0, expected(what));
const finite = () => z.number(expected('a finite number'));
const nonNegative = () => z.number(expected('a number >= 0')).min(0, expected('a number >= 0'));
const oneOf = <T extends string>(values: readonly T[]) =>
  z.enum(values as [T, ...T[]], expected(`one of ${values.join(', ')}`));
const bool = () => z.boolean(expected('true or false'));
const str = (what = 'a string') => z.string(expected(what));
const section = <S extends z.core.$ZodLooseShape>(shape: S) =>
  z.strictObject(shape, expected(`a mapping with keys ${Object.keys(shape).join(', ')}`));

/**
 * A name chosen in a registry (datasets, student pairs, balancers): checked against the entries of the
 * registries the schema was built from (trainConfigSchema(container)), so plugins' entries are accepted
 * and errors list them.
 */
const registered = (container: Container, kind: RegistryKind) =>
  str().superRefine((v, ctx) => {
    const reg = registryByKind(container, kind);
    if (!reg.accepts(v)) ctx.addIssue({ code: 'custom', message: `expected one of ${reg.names().join(', ')}` });
  });
const lossesExpected = (container: Container) =>
  `a method (${registryByKind(container, 'loss')
    .names()
    .filter((n) => !n.includes(','))
    .join(', ')}) or a list of DSMD components (cd, fd, sd, hnd)`;

/**
 * `losses` is a string (`dsmd`, `cd,fd`) or, in a YAML/JSON file, a list of names (`[cd, fd]`), which is
 * joined into the same comma list. Either way the name must resolve to a loss method.
 */
const lossesSchema = (container: Container) =>
  z
    .union([str(), z.array(str())], { error: () => `expected ${lossesExpected(container)}` })
    .transform((v) => (Array.isArray(v) ? v.join(',') : v))
    .superRefine((v, ctx) => {
      if (!registryByKind(container, 'loss').accepts(v))
        ctx.addIssue({ code: 'custom', message: `expected ${lossesExpected(container)}` });
    });

const encoderOverrides = z.record(z.string(), z.unknown(), expected('a mapping of encoder settings')).optional();

/**
 * The schema of a resolved config over the registries of `container` (its dataset, student, loss,
 * balancer and teacher names: the built-ins and the plugins loaded into it). There is no global
 * container: the caller passes the one it trains with. Built once per container.
 */
export function trainConfigSchema(container: Container) {
  let s = schemas.get(container);
  if (!s) schemas.set(container, (s = buildSchema(container)));
  return s as ReturnType<typeof buildSchema>;
}
const schemas = new WeakMap<Container, unknown>();

const buildSchema = (container: Container) =>
  section({
    seed: intAtLeast(0),
    backend: oneOf(TRAIN_BACKENDS),
    threads: intAtLeast(0),
    device: oneOf(TRAIN_DEVICES),
    dataset: section({
      name: registered(container, 'dataset'),
      dataRoot: str('a folder path').optional(),
      annotations: str('a file path').optional(),
      imageRoot: str('a folder path').optional(),
      skipBadImages: bool().optional(),
      trainSubset: intAtLeast(1).optional(),
      evalSubset: intAtLeast(1).optional(),
    }),
    teacher: section({
      name: str('a teacher name (emoji, clip, beit3, features, or a saved student with teacher.model)'),
      model: str('a folder path').optional(),
      batchSize: intAtLeast(1),
    }),
    student: section({
      pair: registered(container, 'student'),
      preset: oneOf(STUDENT_SIZES),
      imageInit: str('a folder path').optional(),
      textInit: str("a folder path, or 'glove'").optional(),
      maxLength: intAtLeast(1),
      vocabSize: intAtLeast(1),
      overrides: section({ image: encoderOverrides, text: encoderOverrides }).optional(),
      normalize: bool(),
    }),
    losses: lossesSchema(container),
    balancer: registered(container, 'balancer').optional(),
    balancerOptions: section({ temperature: positive().optional() }).optional(),
    lossOptions: section({
      temperature: positive(),
      queueSize: intAtLeast(1),
      margin: finite().optional(),
      hardNegative: oneOf(['sum', 'max'] as const).optional(),
      dcd: section({
        topK: intAtLeast(2).optional(),
        temperature: positive().optional(),
        alpha: z
          .number(expected('a number in [0, 1]'))
          .min(0, expected('a number in [0, 1]'))
          .max(1, expected('a number in [0, 1]'))
          .optional(),
      }).optional(),
    }),
    optimizer: section({
      lr: positive(),
      weightDecay: nonNegative(),
      lrImage: positive().optional(),
      lrText: positive().optional(),
      lrHead: positive().optional(),
      betas: z.tuple(
        [nonNegative().lt(1, expected('a number in [0, 1)')), nonNegative().lt(1, expected('a number in [0, 1)'))],
        expected('two numbers in [0, 1), e.g. [0.9, 0.999]'),
      ),
      eps: positive(),
    }),
    schedule: section({
      epochs: intAtLeast(1),
      decayEpoch: intAtLeast(0),
      decayFactor: z
        .number(expected('a number in (0, 1]'))
        .gt(0, expected('a number in (0, 1]'))
        .lte(1, expected('a number in (0, 1]')),
      warmupSteps: intAtLeast(0),
    }),
    batchSize: intAtLeast(1),
    sampling: oneOf(SAMPLINGS),
    dropLast: bool(),
    checkpointEvery: intAtLeast(1),
    maxSteps: intAtLeast(0),
    baseline: bool(),
    latency: bool(),
    fastKernels: bool(),
    plugins: z
      .array(str('a plugin path or package name'), expected('a list of plugin paths or package names'))
      .optional(),
    pluginHashes: z.record(z.string(), z.string()).optional(),
  }).superRefine((c, ctx) => {
    // the teacher: a registered name, or any name whose teacher.model is a saved student (a pattern entry)
    const teachers = registryByKind(container, 'teacher');
    if (!teachers.accepts(c.teacher.name, { model: c.teacher.model })) {
      ctx.addIssue({
        code: 'custom',
        path: ['teacher', 'name'],
        message: `expected one of ${teachers.names().join(', ')} (or any name with a saved-student teacher.model)`,
      });
    }
    if (c.lossOptions.queueSize < c.batchSize) {
      ctx.addIssue({
        code: 'custom',
        path: ['lossOptions', 'queueSize'],
        message: `must be >= batchSize (${c.batchSize}), got ${c.lossOptions.queueSize}`,
      });
    }
    // Encoder overrides: only the settings the pair's encoders have, with the same kind of value.
    const pair = PAIRS.find((p) => p.name === c.student.pair);
    if (!pair || !c.student.overrides) return;
    for (const side of ['image', 'text'] as const) {
      const over = c.student.overrides[side];
      if (!over) continue;
      const kind = side === 'image' ? pair.image : pair.text;
      const known: Record<string, unknown> = Object.assign(
        {},
        ...STUDENT_SIZES.map((s) => (side === 'image' ? IMAGE_PRESETS[s] : TEXT_PRESETS[s])[kind as never]),
      );
      for (const [k, v] of Object.entries(over)) {
        const path = ['student', 'overrides', side, k];
        if (!(k in known))
          ctx.addIssue({
            code: 'custom',
            path,
            message: `unknown ${kind} setting${suggest(k, Object.keys(known))} (${kind} takes ${Object.keys(known).join(', ')})`,
          });
        else if (known[k] !== undefined && typeof v !== typeof known[k])
          ctx.addIssue({
            code: 'custom',
            path,
            message: `expected a ${typeof known[k]} like ${JSON.stringify(known[k])}`,
          });
      }
    }
  });

type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
/** Compile-time guard: the schema's output type is exactly TrainConfig (edit both together). */
const SchemaMatchesType: Equals<z.output<ReturnType<typeof buildSchema>>, TrainConfig> = true;
void SchemaMatchesType;

function levenshtein(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const t = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
      prev = t;
    }
  }
  return d[b.length];
}

function suggest(key: string, known: string[]): string {
  const best = known.map((k) => [k, levenshtein(key, k)] as const).sort((x, y) => x[1] - y[1])[0];
  return best && best[1] <= Math.max(2, Math.floor(key.length / 3)) ? ` (did you mean '${best[0]}'?)` : '';
}

function valueAt(root: unknown, path: readonly PropertyKey[]): { found: boolean; value: unknown } {
  let cur: unknown = root;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object' || !(String(k) in (cur as object)))
      return { found: false, value: undefined };
    cur = (cur as Record<string, unknown>)[String(k)];
  }
  return { found: true, value: cur };
}

function show(v: unknown): string {
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  if (v === null) return 'null (an empty value)';
  if (Array.isArray(v)) return `the list ${JSON.stringify(v)}`;
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

/** The schema node at a path (for the list of valid keys of a section). */
function shapeAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let s: z.ZodType = schema;
  for (const k of path) {
    while (s instanceof z.ZodOptional || s instanceof z.ZodPipe)
      s = (s instanceof z.ZodOptional ? s.unwrap() : s.in) as z.ZodType;
    if (!(s instanceof z.ZodObject)) return [];
    s = (s.shape as Record<string, z.ZodType>)[String(k)];
    if (!s) return [];
  }
  while (s instanceof z.ZodOptional || s instanceof z.ZodPipe)
    s = (s instanceof z.ZodOptional ? s.unwrap() : s.in) as z.ZodType;
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}

/** One readable clause per zod issue: `key.path: what was expected, got what`. */
function describeIssue(
  schema: z.ZodType,
  issue: z.core.$ZodIssue,
  input: unknown,
): { path: PropertyKey[]; text: string }[] {
  const name = (p: readonly PropertyKey[]) => (p.length ? p.map(String).join('.') : 'the config');
  if (issue.code === 'unrecognized_keys') {
    const known = shapeAt(schema, issue.path);
    const where = issue.path.length ? `${name(issue.path)} takes` : 'known keys:';
    return issue.keys.map((k) => ({
      path: [...issue.path, k],
      text: `${name([...issue.path, k])}: unknown key${suggest(k, known)} (${where} ${known.join(', ')})`,
    }));
  }
  const path = [...issue.path];
  const { found, value } = valueAt(input, path);
  if (issue.code === 'custom' && !issue.message.startsWith('expected'))
    return [{ path, text: `${name(path)}: ${issue.message}` }];
  let got = found ? show(value) : 'nothing (the key is missing)';
  if (typeof value === 'number' && !Number.isFinite(value)) got += ' (numbers must be finite)';
  const quoted =
    typeof value === 'string' &&
    ((issue.message.includes('true or false') && /^(true|false)$/i.test(value)) ||
      (/number|integer/.test(issue.message) && value.trim() !== '' && Number.isFinite(Number(value))));
  return [{ path, text: `${name(path)}: ${issue.message}, got ${got}${quoted ? ' (write it without quotes)' : ''}` }];
}

/**
 * Parse a merged config against the schema; throws one DistillError (one line) naming each bad key path,
 * what was expected, what was found and, with `where`, which layer (file, flags) set it.
 */
export function parseConfig(
  input: unknown,
  container: Container,
  where?: (path: readonly PropertyKey[]) => string | undefined,
): TrainConfig {
  const schema = trainConfigSchema(container);
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const clauses = r.error.issues
    .flatMap((i) => describeIssue(schema, i, input))
    .map(({ path, text }) => {
      const src = where?.(path);
      return src ? `${text} (from ${src})` : text;
    });
  const shown = clauses.slice(0, 6).join('; ') + (clauses.length > 6 ? `; and ${clauses.length - 6} more` : '');
  throw new DistillError(`Invalid config: ${shown}.`, 2);
}

/** defaults <- preset <- config file <- CLI overrides; then validated against trainConfigSchema(opts.container). */
export function resolveConfig(opts: {
  /** The registries names are checked in (the CLI's container with its plugins; a test's own). */
  container: Container;
  preset?: string;
  file?: DeepPartial<TrainConfig>;
  /** Named in errors about keys that come from the file. */
  fileName?: string;
  overrides?: DeepPartial<TrainConfig>;
  /** Named in errors about keys that come from the overrides (default: command-line flags). */
  overridesName?: string;
}): TrainConfig {
  const presetName = opts.preset ?? 'emoji';
  if (typeof presetName !== 'string' || !Object.hasOwn(PRESETS, presetName)) {
    const size = STUDENT_SIZES.includes(presetName as never)
      ? ` '${presetName}' is a student size: use --size ${presetName} (config key student.preset).`
      : '';
    throw new DistillError(
      `Unknown preset '${String(presetName)}'. Available: ${Object.keys(PRESETS).join(', ')}.${size}`,
      2,
    );
  }
  let cfg: unknown = deepMerge(DEFAULT_CONFIG, PRESETS[presetName]);
  for (const layer of [opts.file, opts.overrides]) if (layer) cfg = deepMerge(cfg, layer);
  return parseConfig(cfg, opts.container, (path) => {
    // Name the layer a bad key came from (the most specific layer that sets it).
    if (opts.overrides && valueAt(opts.overrides, path).found) return opts.overridesName ?? 'the command line';
    if (opts.file && valueAt(opts.file, path).found) return opts.fileName ?? 'config file';
    return undefined;
  });
}

/** Validate a config that is already resolved (e.g. read back from a run folder); returns it parsed. */
export function validateConfig(c: TrainConfig, container: Container): TrainConfig {
  return parseConfig(c, container);
}
