import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  DistillError,
  Rng,
  tf,
  tfOps,
  type ImagePreprocess,
  type Ops,
  type TensorParams,
  type NamedVariable,
  type ParamGroup,
  type Student,
  type TokenizedBatch,
} from '@distill/core';
import { createBert, type BertConfig } from './bert.js';
import type { Encoder, ImageEncoder, TextEncoder } from './encoder.js';
import { createGloveText, gloveTokenizerJson, gloveVocabSize, type GloveTextConfig } from './glove-text.js';
import {
  GLOVE_INIT,
  loadDefaultWordVectors,
  vocabTokens,
  wordEmbeddingInit,
  type WordInitReport,
  type WordVectors,
} from './glove.js';
import { encoderFromHfConfig, loadHfEncoder, readHfConfig } from './hf.js';
import { projectEmbedding } from './ops.js';
import {
  IMAGE_PRESETS,
  PAIRS,
  pairDef,
  PRESETS,
  TEXT_PRESETS,
  type ImageEncoderType,
  type PresetName,
  type TextEncoderType,
} from './presets.js';
import {
  countParams,
  createVariables,
  initValues,
  type ParamSpec,
  type Params,
  sizeOf,
  type WeightProblem,
  weightProblemMessage,
} from './params.js';
import { createMobileNetV2, mobilenetV2AssetWeights, type MobileNetV2TowerConfig } from './mobilenet.js';
import { createResNet, type ResNetConfig } from './resnet.js';
import { createTextCnn, type TextCnnConfig } from './textcnn.js';
import { loadTokenizer, TextTokenizer, type TokenizerJson } from './tokenizer.js';
import { createVit, type VitConfig } from './vit.js';

/** Everything needed to rebuild a student's architecture (save it next to a checkpoint). */
export interface StudentConfig {
  pair: string;
  preset: PresetName;
  embedDim: number;
  maxLength: number;
  image: { type: ImageEncoderType; config: ImageTowerConfig };
  text: { type: TextEncoderType; config: TextTowerConfig };
  preprocess: ImagePreprocess;
}

export type TextTowerConfig = BertConfig | TextCnnConfig | GloveTextConfig;

export interface CreateStudentOptions {
  preset?: PresetName;
  /** The teacher's dimension (both projections map to it). */
  embedDim: number;
  seed: number;
  /** Text vocabulary size when no tokenizer is given (a tokenizer's size wins). */
  vocabSize?: number;
  /** A tokenizer, a tokenizer.json document, or a path to one (or a folder holding tokenizer.json). */
  tokenizer?: TextTokenizer | TokenizerJson | string;
  /** Max text length in tokens (default 30). */
  maxLength?: number;
  /**
   * A Hugging Face save_pretrained folder to start the image tower from (its config.json wins over the preset),
   * or 'mobilenetv2' for a MobileNetV2 tower (`mobilenet-bert`): the converted ImageNet weights of
   * @distill/pretrained for every layer the tower keeps.
   */
  imageInit?: string;
  /**
   * A Hugging Face folder as for imageInit, or 'glove': the word embeddings of every whole-word token of the
   * tokenizer that GloVe has start from its vector (`wordEmbeddingInit`), the rest of the tower as usual.
   */
  textInit?: string;
  /** The word vectors for textInit 'glove' (default: @distill/pretrained's GloVe subset). */
  wordVectors?: WordVectors;
  /** Partial encoder configs merged over the preset (e.g. { image: { imageSize: 64 } }). */
  overrides?: { image?: Record<string, unknown>; text?: Record<string, unknown> };
}

const IMAGENET: Pick<ImagePreprocess, 'mean' | 'std'> = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
/** Keras MobileNetV2's preprocessing: pixels to [-1, 1] (the range its ImageNet blocks were trained on). */
const MINUS_ONE_TO_ONE: Pick<ImagePreprocess, 'mean' | 'std'> = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
/** nsfwjs's input range, [0, 1]: the frozen trunk sees pixels as teacher v3's does. */
const UNIT: Pick<ImagePreprocess, 'mean' | 'std'> = { mean: [0, 0, 0], std: [1, 1, 1] };

/** The name `imageInit` takes for MobileNetV2's converted ImageNet weights (`--image-init mobilenetv2`). */
export const MOBILENETV2_INIT = 'mobilenetv2';

export type ImageTowerConfig = VitConfig | ResNetConfig | MobileNetV2TowerConfig;

function buildImage(type: ImageEncoderType, config: ImageTowerConfig): ImageEncoder {
  if (type === 'resnet') return createResNet(config as ResNetConfig);
  if (type === 'mobilenet-v2' || type === 'mobilenet-v2-frozen')
    return createMobileNetV2(config as MobileNetV2TowerConfig);
  return createVit({ ...(config as VitConfig), distillationToken: type === 'deit' });
}
function buildText(type: TextEncoderType, config: TextTowerConfig): TextEncoder {
  if (type === 'glove') return createGloveText(config as GloveTextConfig);
  return type === 'textcnn' ? createTextCnn(config as TextCnnConfig) : createBert(config as BertConfig);
}

function headSpecs(imageDim: number, textDim: number, embedDim: number): ParamSpec[] {
  // projection fc: W ~ xavier_normal(gain 1.414), b ~ U(-1/sqrt(in), 1/sqrt(in)) (PyTorch Linear default)
  const head = (name: string, inD: number): ParamSpec[] => [
    {
      name: `${name}.weight`,
      shape: [inD, embedDim],
      init: { kind: 'xavierNormal', gain: 1.414, fanIn: inD, fanOut: embedDim },
      hf: 'linear',
    },
    { name: `${name}.bias`, shape: [embedDim], init: { kind: 'uniform', limit: 1 / Math.sqrt(inD) } },
  ];
  return [...head('image_proj', imageDim), ...head('text_proj', textDim)];
}

/** Resolve a pair + preset + overrides (+ HF configs, + tokenizer size) into a full StudentConfig. */
export function resolveStudentConfig(
  pair: string,
  opts: Omit<CreateStudentOptions, 'seed' | 'tokenizer'> & { tokenizerVocabSize?: number },
): StudentConfig {
  const def = pairDef(pair);
  if (!def)
    throw new DistillError(`Unknown student pair '${pair}'. Available: ${PAIRS.map((p) => p.name).join(', ')}.`, 2);
  const preset = opts.preset ?? 'tiny';
  if (!PRESETS.includes(preset))
    throw new DistillError(`Unknown preset '${preset}'. Available: ${PRESETS.join(', ')}.`, 2);
  if (!(opts.embedDim > 0))
    throw new DistillError(`embedDim must be a positive integer (the teacher's dimension), got ${opts.embedDim}.`, 2);
  const maxLength = opts.maxLength ?? 30;
  let image: Record<string, unknown> = { ...IMAGE_PRESETS[preset][def.image] };
  let text: Record<string, unknown> = { ...TEXT_PRESETS[preset][def.text] };
  if (def.image === 'mobilenet-v2-frozen' && opts.imageInit && opts.imageInit !== MOBILENETV2_INIT) {
    throw new DistillError(
      `Pair '${pair}' keeps MobileNetV2's converted ImageNet trunk frozen: it takes no --image-init (got '${opts.imageInit}').`,
      2,
    );
  }
  if (def.text === 'glove' && opts.textInit) {
    throw new DistillError(
      `Pair '${pair}' reads frozen GloVe word vectors already: it takes no --text-init (got '${opts.textInit}').`,
      2,
    );
  }
  if (opts.imageInit === MOBILENETV2_INIT) {
    if (def.image !== 'mobilenet-v2' && def.image !== 'mobilenet-v2-frozen')
      throw new DistillError(
        `--image-init ${MOBILENETV2_INIT} starts a MobileNetV2 tower, but pair '${pair}' has a '${def.image}' image tower: use --student mobilenet-bert.`,
        2,
      );
  } else if (opts.imageInit) {
    const hf = readHfConfig(opts.imageInit);
    if (hf.model_type !== def.image)
      throw new DistillError(
        `imageInit ${opts.imageInit} is a '${String(hf.model_type)}' checkpoint, but pair '${pair}' needs '${def.image}'.`,
        2,
      );
    image = { ...image, ...encoderFromHfConfig(hf).config, feature: image.feature, addPooler: false };
  }
  const hfText = opts.textInit !== undefined && opts.textInit !== GLOVE_INIT ? opts.textInit : undefined;
  if (hfText) {
    const hf = readHfConfig(hfText);
    if (hf.model_type !== def.text)
      throw new DistillError(
        `textInit ${hfText} is a '${String(hf.model_type)}' checkpoint, but pair '${pair}' needs '${def.text}'.`,
        2,
      );
    text = { ...text, ...encoderFromHfConfig(hf).config, feature: text.feature };
  }
  image = { ...image, ...(opts.overrides?.image ?? {}) };
  text = { ...text, ...(opts.overrides?.text ?? {}) };
  const vocab = opts.tokenizerVocabSize ?? opts.vocabSize;
  if (def.text === 'glove') {
    text.vocabSize = gloveVocabSize();
    if (vocab !== undefined && vocab !== text.vocabSize) {
      throw new DistillError(
        `Pair '${pair}' reads the GloVe word table (${String(text.vocabSize)} tokens), but its tokenizer has ${vocab}: use the word-level GloVe tokenizer (the trainer writes it; gloveTokenizerJson).`,
        2,
      );
    }
  } else if (vocab !== undefined && !hfText) text.vocabSize = vocab;
  if (hfText && vocab !== undefined && vocab > (text.vocabSize as number)) {
    throw new DistillError(
      `The tokenizer has ${vocab} tokens but the textInit checkpoint's vocabulary has ${String(text.vocabSize)}: use that checkpoint's tokenizer.json.`,
      2,
    );
  }
  if ((def.text === 'bert' || def.text === 'albert') && maxLength > (text.maxPositionEmbeddings as number)) {
    throw new DistillError(
      `maxLength ${maxLength} exceeds the text encoder's maxPositionEmbeddings ${String(text.maxPositionEmbeddings)}.`,
      2,
    );
  }
  const crop = image.imageSize as number;
  // base resizes as ImageNet models do (256/224) before the centre crop; drawings and a frozen trunk matching teacher v3 see the whole image
  const resize = preset === 'base' && def.image !== 'mobilenet-v2-frozen' ? Math.round((crop * 256) / 224) : crop;
  return {
    pair,
    preset,
    embedDim: opts.embedDim,
    maxLength,
    image: { type: def.image, config: image as unknown as ImageTowerConfig },
    text: { type: def.text, config: text as unknown as TextTowerConfig },
    preprocess: {
      resize,
      crop,
      ...(def.image === 'mobilenet-v2' ? MINUS_ONE_TO_ONE : def.image === 'mobilenet-v2-frozen' ? UNIT : IMAGENET),
    },
  };
}

/** Parameter counts from shapes alone (nothing allocated): fine for the 197M `base`. */
export function countStudentParams(config: StudentConfig): {
  image: number;
  text: number;
  head: number;
  total: number;
} {
  const img = buildImage(config.image.type, config.image.config);
  const txt = buildText(config.text.type, config.text.config);
  const image = countParams(img.specs());
  const text = countParams(txt.specs());
  const head = countParams(headSpecs(img.featureDim, txt.featureDim, config.embedDim));
  return { image, text, head, total: image + text + head };
}

interface Slot {
  spec: ParamSpec;
  name: string;
  group: ParamGroup;
  variable: tf.Variable;
}

/** A trainable dual encoder: two towers, two linear projections to embedDim, L2 normalisation. */
export class DualEncoderStudent implements Student {
  readonly name: string;
  readonly embedDim: number;
  readonly preprocess: ImagePreprocess;
  readonly imageEncoder: ImageEncoder;
  readonly textEncoder: TextEncoder;
  private readonly slots: Slot[];
  private readonly imageParams: Params;
  private readonly textParams: Params;
  private readonly headParams: Params;
  /**
   * Whether the training forward (`encodeImage/encodeText` with training true, and the onnx engine's
   * training graphs, `buildStudentGraphs`) L2-normalises the projected features the losses see
   * (default true; the trainer sets it from the config key `student.normalize`). Inference
   * (evaluation, retrieval, export) always normalises: retrieval ranks by cosine.
   */
  normalizeInTraining = true;
  /** What a pretrained initialisation did (e.g. textInit 'glove': how many tokens got a vector), for the run's log. */
  initReport: { text?: WordInitReport } = {};

  constructor(
    readonly config: StudentConfig,
    readonly tokenizer: TextTokenizer | undefined,
    seed: number,
    init: { image?: Map<string, Float32Array>; text?: Map<string, Float32Array> } = {},
  ) {
    this.name = config.pair;
    this.embedDim = config.embedDim;
    this.preprocess = config.preprocess;
    this.imageEncoder = buildImage(config.image.type, config.image.config);
    this.textEncoder = buildText(config.text.type, config.text.config);
    const rng = new Rng(seed);
    const img = createVariables(this.imageEncoder.specs(), 'image.', 'image', rng.fork('image'), init.image);
    const txt = createVariables(this.textEncoder.specs(), 'text.', 'text', rng.fork('text'), init.text);
    const head = createVariables(
      headSpecs(this.imageEncoder.featureDim, this.textEncoder.featureDim, config.embedDim),
      '',
      'head',
      rng.fork('head'),
    );
    this.slots = [...img, ...txt, ...head];
    const rec = (s: Slot[]) => Object.fromEntries(s.map((x) => [x.spec.name, x.variable as tf.Tensor]));
    this.imageParams = rec(img);
    this.textParams = rec(txt);
    this.headParams = rec(head);
  }

  /** Image tower feature before the projection: [B, featureDim]. */
  imageFeatures(pixels: tf.Tensor4D, training: boolean): tf.Tensor2D {
    return this.imageEncoder.forward(this.imageParams, pixels, training).features;
  }

  textFeatures(batch: TokenizedBatch, training: boolean): tf.Tensor2D {
    return this.textEncoder.forward(this.textParams, batch, training).features;
  }

  encodeImage(pixels: tf.Tensor4D, training: boolean): tf.Tensor2D {
    return tf.tidy(
      () =>
        projectEmbedding(
          tfOps(),
          this.headParams,
          'image_proj',
          this.imageFeatures(pixels, training),
          !training || this.normalizeInTraining,
        ) as tf.Tensor2D,
    );
  }

  encodeText(batch: TokenizedBatch, training: boolean): tf.Tensor2D {
    return tf.tidy(
      () =>
        projectEmbedding(
          tfOps(),
          this.headParams,
          'text_proj',
          this.textFeatures(batch, training),
          !training || this.normalizeInTraining,
        ) as tf.Tensor2D,
    );
  }

  tokenize(texts: string[]): TokenizedBatch {
    if (!this.tokenizer)
      throw new DistillError(
        `Student '${this.name}' has no tokenizer: pass one to createStudent (a tokenizer.json, or train one with trainWordPieceTokenizer).`,
        2,
      );
    return this.tokenizer.tokenize(texts);
  }

  variables(): NamedVariable[] {
    return this.slots.map(({ name, variable, group }) => ({ name, variable, group }));
  }

  parameterCount(): { image: number; text: number; head: number; total: number } {
    const c = { image: 0, text: 0, head: 0, total: 0 };
    for (const s of this.slots) {
      c[s.group] += s.variable.size;
      c.total += s.variable.size;
    }
    return c;
  }

  dispose(): void {
    for (const s of this.slots) s.variable.dispose();
  }
}

function toTokenizer(
  t: CreateStudentOptions['tokenizer'],
  maxLength: number,
  textInit?: string,
): TextTokenizer | undefined {
  if (t instanceof TextTokenizer) return t.maxLength === maxLength ? t : new TextTokenizer(t.json, maxLength);
  if (t) return loadTokenizer(t, { maxLength });
  if (textInit === GLOVE_INIT) return undefined;
  // a textInit folder that ships its tokenizer.json brings its vocabulary with it
  if (textInit && existsSync(join(textInit, 'tokenizer.json'))) return loadTokenizer(textInit, { maxLength });
  return undefined;
}

/**
 * The factory the trainer uses: a pair ('vit-bert', 'deit-albert', 'resnet-bert', 'vit-textcnn',
 * 'resnet-textcnn'), a preset, the teacher's dim and a seed. Towers start from HF checkpoints when
 * imageInit/textInit are given, else from a seeded random init.
 */
export function createStudent(pair: string, opts: CreateStudentOptions): DualEncoderStudent {
  const maxLength = opts.maxLength ?? 30;
  const glove = pairDef(pair)?.text === 'glove';
  const tokenizer = toTokenizer(
    opts.tokenizer ?? (glove ? (gloveTokenizerJson(maxLength) as unknown as TokenizerJson) : undefined),
    maxLength,
    opts.textInit,
  );
  const config = resolveStudentConfig(pair, { ...opts, maxLength, tokenizerVocabSize: tokenizer?.vocabSize });
  const init: { image?: Map<string, Float32Array>; text?: Map<string, Float32Array> } = {};
  // a frozen trunk is the asset's weights as constants (nothing to start); a fine-tuned one starts from them
  if (opts.imageInit === MOBILENETV2_INIT) {
    if (config.image.type !== 'mobilenet-v2-frozen')
      init.image = mobilenetV2Init(config.image.config as MobileNetV2TowerConfig);
  } else if (opts.imageInit)
    init.image = loadHfEncoder(opts.imageInit, config.image.config as unknown as Record<string, unknown>).values;
  let report: WordInitReport | undefined;
  if (opts.textInit === GLOVE_INIT)
    ({ values: init.text, report } = gloveTextInit(config, tokenizer, opts.seed, opts.wordVectors));
  else if (opts.textInit)
    init.text = loadHfEncoder(opts.textInit, config.text.config as unknown as Record<string, unknown>).values;
  const student = new DualEncoderStudent(config, tokenizer, opts.seed, init);
  if (report) student.initReport.text = report;
  return student;
}

/** The text tower's word-embedding table for textInit 'glove': GloVe rows for whole-word tokens, the usual seeded random init for the rest. */
function gloveTextInit(
  config: StudentConfig,
  tokenizer: TextTokenizer | undefined,
  seed: number,
  vectors?: WordVectors,
): { values: Map<string, Float32Array>; report: WordInitReport } {
  if (!tokenizer)
    throw new DistillError(
      "--text-init glove needs the student's tokenizer (training makes one from the captions; or pass --tokenizer).",
      2,
    );
  const wv = vectors ?? loadDefaultWordVectors();
  const spec = buildText(config.text.type, config.text.config)
    .specs()
    .find((s) => s.name === WORD_EMBEDDINGS);
  if (!spec || spec.init.kind !== 'normal')
    throw new DistillError(
      `--text-init glove: the '${config.text.type}' text tower has no word-embedding table to start from GloVe.`,
      2,
    );
  // the same values createVariables would draw for this parameter (its rng path), so the other rows are the usual init
  const random = initValues(spec, new Rng(seed).fork('text').fork(spec.name));
  const { values, report } = wordEmbeddingInit(vocabTokens(tokenizer.json), wv, spec.shape[1], random, spec.init.std);
  return { values: new Map([[spec.name, values]]), report };
}

const WORD_EMBEDDINGS = 'embeddings.word_embeddings.weight';

/** The converted MobileNetV2 weights for every parameter the (truncated) tower has, checked by shape. */
function mobilenetV2Init(c: MobileNetV2TowerConfig): Map<string, Float32Array> {
  const weights = mobilenetV2AssetWeights(
    c,
    (problem) => new DistillError(`--image-init ${MOBILENETV2_INIT}: the ${problem}; numChannels must stay 3.`, 2),
  );
  return new Map(Object.entries(weights).map(([name, w]) => [name, w.data]));
}

/** Rebuild a student from a saved StudentConfig (then setStudentWeights to restore a checkpoint). */
export function createStudentFromConfig(
  config: StudentConfig,
  opts: { seed?: number; tokenizer?: CreateStudentOptions['tokenizer'] } = {},
): DualEncoderStudent {
  return new DualEncoderStudent(config, toTokenizer(opts.tokenizer, config.maxLength), opts.seed ?? 0);
}

export type WeightRecord = Record<string, { shape: number[]; data: Float32Array }>;

/** Every variable's values by NamedVariable name (distill layout: linear weights are [in, out]). */
export function getStudentWeights(student: Student): WeightRecord {
  const out: WeightRecord = {};
  for (const v of student.variables())
    out[v.name] = { shape: [...v.variable.shape], data: v.variable.dataSync() as Float32Array };
  return out;
}

/** Assign weights by name; rejects any missing, unexpected or mis-shaped entry, naming each, before changing anything. */
export function setStudentWeights(student: Student, weights: WeightRecord): void {
  const vars = student.variables();
  const problem: WeightProblem = { missing: [], unexpected: [], misShaped: [] };
  const names = new Set(vars.map((v) => v.name));
  for (const v of vars) {
    const w = weights[v.name];
    if (!w) problem.missing.push(v.name);
    else if (w.shape.join() !== v.variable.shape.join() || w.data.length !== sizeOf(v.variable.shape))
      problem.misShaped.push({ name: v.name, expected: v.variable.shape, got: w.shape });
  }
  for (const k of Object.keys(weights)) if (!names.has(k)) problem.unexpected.push(k);
  if (problem.missing.length || problem.unexpected.length || problem.misShaped.length) {
    throw new DistillError(
      weightProblemMessage(
        `Checkpoint for student '${student.name}'`,
        problem,
        'Was it saved from a student with the same pair, preset and overrides?',
      ),
      2,
    );
  }
  for (const v of vars) {
    const w = weights[v.name];
    tf.tidy(() => v.variable.assign(tf.tensor(w.data, w.shape, 'float32')));
  }
}

export type { Encoder };

/**
 * One tower's embeddings on any engine: the tower (`Encoder.tower`), its projection and the L2
 * normalisation, s = fc(f) / max(||fc(f)||, 1e-12). `p` holds the student's tensors by variable name
 * ('image.…', 'text.…', 'image_proj.…', 'text_proj.…'; only the tower's and its projection's are read).
 * `opts.normalize` false leaves out the normalisation (training graphs of `student.normalize: false`).
 */
export function studentEmbedding<T>(
  o: Ops<T>,
  student: DualEncoderStudent,
  tower: 'image',
  p: TensorParams<T>,
  input: T,
  opts?: { normalize?: boolean },
): T;
export function studentEmbedding<T>(
  o: Ops<T>,
  student: DualEncoderStudent,
  tower: 'text',
  p: TensorParams<T>,
  input: { ids: T; mask: T },
  opts?: { normalize?: boolean },
): T;
export function studentEmbedding<T>(
  o: Ops<T>,
  student: DualEncoderStudent,
  tower: 'image' | 'text',
  p: TensorParams<T>,
  input: T | { ids: T; mask: T },
  opts: { normalize?: boolean } = {},
): T {
  const own = paramsUnder(p, `${tower}.`);
  const f =
    tower === 'image'
      ? student.imageEncoder.tower(o, own, input as T).features
      : student.textEncoder.tower(o, own, input as { ids: T; mask: T }).features;
  return projectEmbedding(o, p, `${tower}_proj`, f, opts.normalize ?? true);
}

/**
 * The image embedding from the frozen trunk's output [B, F] of a tower that has one (`Encoder.frozen`): the
 * tower's head, the projection, the L2 normalisation; equal to `studentEmbedding(..., 'image', ..., pixels)`
 * for features = trunk(pixels).
 */
export function studentImageEmbeddingFromFeatures<T>(
  o: Ops<T>,
  student: DualEncoderStudent,
  p: TensorParams<T>,
  features: T,
  opts: { normalize?: boolean } = {},
): T {
  const frozen = student.imageEncoder.frozen;
  if (!frozen) throw new Error(`Student '${student.name}': its image tower has no frozen trunk to take features from.`);
  return projectEmbedding(
    o,
    p,
    'image_proj',
    frozen.head(o, paramsUnder(p, 'image.'), features).features,
    opts.normalize ?? true,
  );
}

/** The tensors named `<prefix><name>`, keyed by `<name>` (a tower's own parameters out of the student's). */
export function paramsUnder<T>(p: TensorParams<T>, prefix: string): TensorParams<T> {
  const own: TensorParams<T> = {};
  for (const [k, v] of Object.entries(p)) if (k.startsWith(prefix)) own[k.slice(prefix.length)] = v;
  return own;
}
