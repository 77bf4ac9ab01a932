/**
 * Teacher v3: frozen pretrained features under trained heads. The image side is the MobileNetV2 trunk of
 * @distill/pretrained up to a chosen layer (global-mean pooled), the text side GloVe 100-d word vectors;
 * both frozen. Trained: an image head (LayerNorm + MLP to `dim`) and a small text encoder over the word
 * vectors (attention pooling + mean pooling, LayerNorm, MLP to `dim`), contrastively (symmetric InfoNCE)
 * on a dataset's train split. The trunk runs once per image into a feature cache, so training the heads
 * takes minutes. The result is a standard ONNX teacher folder (image.onnx, text.onnx, tokenizer.json,
 * teacher.json; docs/teachers.md), written by distill's graph builder from the same definitions.
 *
 * The tokenizer keeps words whole: a word-level vocabulary (BERT's normaliser and pre-tokeniser, a
 * WordPiece model with no sub-word pieces, so a word outside the vocabulary is one [UNK]) over the GloVe
 * subset, so every word GloVe knows (32,025 of them) means something to the teacher, including words never
 * seen in training captions.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Graph, Sym, encodeModel } from '@distill/autodiff';
import {
  atomicWriteJson,
  createLogger,
  createProgress,
  DistillError,
  encodeSafetensors,
  graphOps,
  l2NormalizeRows,
  OnnxRunner,
  readSafetensors,
  sha256,
  tf,
  tfOps,
  type Dataset,
  type Logger,
  type Ops,
  type RetrievalMetrics,
  type TensorParams,
} from '@distill/core';
import { distillCacheDir, ImageLoader } from '@distill/data';
import { computeRecall, headline } from '@distill/eval';
import { loadGlove, loadMobileNetV2 } from '@distill/pretrained';
import {
  basicTokenize,
  frozenTrunkParams,
  GLOVE_OFFSET,
  gloveWordTable,
  mobilenetV2Depth,
  poolWords,
  WORD_ATTENTION_WIDTH,
  wordTokenizerJson,
  mobilenetV2LayerDim,
  mobilenetV2Tower,
  paramsUnder,
  SPECIAL_TOKENS,
  type MobileNetV2TowerConfig,
} from '@distill/student-architectures';

export interface HeadsTeacherConfig {
  /** Image side: the trunk's input size (a multiple of 32) and feature layer (block_0..block_16, last, head_0). */
  imageSize: number;
  layer: string;
  /** Pixels as the trunk sees them: [0, 1] (nsfwjs's fine-tuning) or [-1, 1] (Keras's ImageNet MobileNetV2). */
  pixelRange: 'unit' | 'signed';
  /** Image head: 'linear' (LayerNorm + linear) or 'mlp' (LayerNorm + linear-GELU-linear). */
  imageHead: 'linear' | 'mlp';
  /** Text encoder over the word vectors: 'mean' (masked mean) or 'attention' (attention pooling + mean, then an MLP). */
  textEncoder: 'mean' | 'attention';
  hidden: number;
  dim: number;
  maxTextLength: number;
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  temperature: number;
  seed: number;
}

export const HEADS_TEACHER_DEFAULTS: HeadsTeacherConfig = {
  imageSize: 96,
  layer: 'block_12',
  pixelRange: 'unit',
  imageHead: 'mlp',
  textEncoder: 'attention',
  hidden: 512,
  dim: 256,
  maxTextLength: 16,
  epochs: 12,
  batchSize: 512,
  lr: 2e-3,
  weightDecay: 1e-4,
  temperature: 0.05,
  seed: 0,
};

const UNK = SPECIAL_TOKENS.indexOf('[UNK]');

// ---------------------------------------------------------------- tokenizer

/** Token ids as that tokenizer gives them (BERT's basic split, one id per word, [UNK] for others), truncated to L, padded with 0. */
export function wordIds(
  texts: string[],
  index: Map<string, number>,
  L: number,
): { ids: Int32Array; mask: Float32Array; unk: number; words: number; truncated: number } {
  const ids = new Int32Array(texts.length * L);
  const mask = new Float32Array(texts.length * L);
  let unk = 0,
    words = 0,
    truncated = 0;
  texts.forEach((t, i) => {
    const toks = basicTokenize(t);
    if (toks.length > L) truncated++;
    toks.slice(0, L).forEach((w, j) => {
      const k = index.get(w);
      words++;
      if (k === undefined) unk++;
      ids[i * L + j] = k === undefined ? UNK : GLOVE_OFFSET + k;
      mask[i * L + j] = 1;
    });
  });
  return { ids, mask, unk, words, truncated };
}

// ---------------------------------------------------------------- heads over Ops<T>

interface Spec {
  name: string;
  shape: number[];
  init: 'zeros' | 'ones' | { std: number };
}

export function headSpecs(c: HeadsTeacherConfig, featureDim: number, wordDim: number): Spec[] {
  const lin = (name: string, i: number, o: number): Spec[] => [
    { name: `${name}.weight`, shape: [i, o], init: { std: Math.sqrt(1 / i) } },
    { name: `${name}.bias`, shape: [o], init: 'zeros' },
  ];
  const ln = (name: string, d: number): Spec[] => [
    { name: `${name}.weight`, shape: [d], init: 'ones' },
    { name: `${name}.bias`, shape: [d], init: 'zeros' },
  ];
  const s: Spec[] = [...ln('image_head.norm', featureDim)];
  if (c.imageHead === 'mlp')
    s.push(...lin('image_head.fc1', featureDim, c.hidden), ...lin('image_head.fc2', c.hidden, c.dim));
  else s.push(...lin('image_head.fc', featureDim, c.dim));
  const pooled = c.textEncoder === 'attention' ? 2 * wordDim : wordDim;
  if (c.textEncoder === 'attention')
    s.push(...lin('text.attn', wordDim, WORD_ATTENTION_WIDTH), {
      name: 'text.attn_v',
      shape: [WORD_ATTENTION_WIDTH],
      init: { std: Math.sqrt(1 / WORD_ATTENTION_WIDTH) },
    });
  s.push(...ln('text.norm', pooled), ...lin('text.fc1', pooled, c.hidden), ...lin('text.fc2', c.hidden, c.dim));
  return s;
}

/** Image head: [B, F] trunk features -> [B, dim]. */
export function imageHead<T>(o: Ops<T>, p: TensorParams<T>, c: HeadsTeacherConfig, f: T): T {
  const x = o.layerNorm(f, p['image_head.norm.weight'], p['image_head.norm.bias'], 1e-5);
  if (c.imageHead === 'linear') return o.linear(x, p['image_head.fc.weight'], p['image_head.fc.bias']);
  return o.linear(
    o.geluErf(o.linear(x, p['image_head.fc1.weight'], p['image_head.fc1.bias'])),
    p['image_head.fc2.weight'],
    p['image_head.fc2.bias'],
  );
}

/**
 * Text encoder: word vectors e [B, L, E] (rows of the frozen `table`), mask [B, L] -> [B, dim]. Pooling is
 * written without batch-sized reshapes (transposes and broadcasting), so the exported graph takes any batch.
 */
export function textEncoder<T>(o: Ops<T>, p: TensorParams<T>, c: HeadsTeacherConfig, table: T, ids: T, mask: T): T {
  const x = o.layerNorm(
    poolWords(o, paramsUnder(p, 'text.'), c.textEncoder, table, ids, mask),
    p['text.norm.weight'],
    p['text.norm.bias'],
    1e-5,
  );
  return o.linear(
    o.geluErf(o.linear(x, p['text.fc1.weight'], p['text.fc1.bias'])),
    p['text.fc2.weight'],
    p['text.fc2.bias'],
  );
}

// ---------------------------------------------------------------- frozen trunk features (cached)

const pixelNorm = (range: 'unit' | 'signed') =>
  range === 'unit'
    ? { mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number] }
    : { mean: [0.5, 0.5, 0.5] as [number, number, number], std: [0.5, 0.5, 0.5] as [number, number, number] };

/**
 * Pooled trunk features of every image of the dataset's splits, for several layers at once:
 * { split: { layer: Float32Array [n, d] } }. Cached under $DISTILL_CACHE_DIR/trunk-features by
 * (weights, size, pixel range, dataset manifest), one file per layer.
 */
export async function trunkFeatures(
  dataset: Dataset,
  opts: {
    imageSize: number;
    layers: string[];
    pixelRange: 'unit' | 'signed';
    threads?: number;
    batch?: number;
    logger?: Logger;
  },
): Promise<Record<string, Record<string, Float32Array>>> {
  const log = opts.logger ?? createLogger({ scope: 'teacher' });
  const layers = [...new Set(opts.layers)].sort();
  const key = sha256(
    JSON.stringify({
      v: 2,
      source: loadMobileNetV2().source,
      size: opts.imageSize,
      range: opts.pixelRange,
      manifest: dataset.manifestHash,
    }),
  ).slice(0, 16);
  const dir = join(distillCacheDir(), 'trunk-features');
  // one file per layer, so a run that needs one layer finds it in a sweep's cache
  const fileOf = (layer: string) =>
    join(dir, `${dataset.name}-${opts.imageSize}-${opts.pixelRange}-${layer}-${key}.safetensors`);
  const out: Record<string, Record<string, Float32Array>> = {};
  if (layers.every((l) => existsSync(fileOf(l)))) {
    for (const l of layers) for (const [split, t] of readSafetensors(fileOf(l))) (out[split] ??= {})[l] = t.data;
    log.info(`trunk features from cache ${dir} (${layers.join(', ')} at ${opts.imageSize}px)`);
    return out;
  }
  const S = opts.imageSize;
  const B = opts.batch ?? 32;
  const deepest = layers.reduce((a, b) => (mobilenetV2Depth(b) > mobilenetV2Depth(a) ? b : a));
  const tc: MobileNetV2TowerConfig = { imageSize: S, layer: deepest, numChannels: 3 };
  const g = new Graph();
  const px = g.input('pixels', [B, 3, S, S]);
  const t = mobilenetV2Tower(graphOps(), frozenTrunkParams(graphOps(), px, tc), tc, px, layers);
  const runner = await OnnxRunner.create(
    g.encode(
      layers.map((l) => t.taps[l]),
      layers,
    ),
    { threads: opts.threads ?? 0 },
  );
  const { mean, std } = pixelNorm(opts.pixelRange);
  const total = Object.values(dataset.splits).reduce((a, s) => a + s.images.length, 0);
  const progress = createProgress({ label: `MobileNetV2 features ${S}px`, total });

  try {
    for (const [split, sd] of Object.entries(dataset.splits)) {
      const loader = new ImageLoader(dataset, { resize: S, crop: S, mean, std }, { split, concurrency: 8 });
      const n = sd.images.length;
      const feats = Object.fromEntries(layers.map((l) => [l, new Float32Array(n * mobilenetV2LayerDim(l))]));
      for (let s = 0; s < n; s += B) {
        const idx = Array.from({ length: Math.min(B, n - s) }, (_, i) => s + i);
        const pix = new Float32Array(B * 3 * S * S);
        pix.set(await loader.load(idx));
        const res = await runner.run({ pixels: { data: pix, dims: [B, 3, S, S] } }, layers);
        layers.forEach((l, k) =>
          feats[l].set(res[k].subarray(0, idx.length * mobilenetV2LayerDim(l)), s * mobilenetV2LayerDim(l)),
        );
        progress.tick(idx.length);
      }
      out[split] = feats;
    }
  } finally {
    await runner.release();
  }
  mkdirSync(dir, { recursive: true });
  for (const l of layers) {
    const tensors = Object.fromEntries(
      Object.entries(out).map(([split, f]) => [
        split,
        { shape: [f[l].length / mobilenetV2LayerDim(l), mobilenetV2LayerDim(l)], data: f[l] },
      ]),
    );
    writeFileSync(`${fileOf(l)}.tmp`, encodeSafetensors(tensors));
    renameSync(`${fileOf(l)}.tmp`, fileOf(l));
  }
  return out;
}

// ---------------------------------------------------------------- training

export interface HeadsTrainResult {
  params: Record<string, { shape: number[]; data: Float32Array }>;
  val: RetrievalMetrics[];
  best: { epoch: number; val: RetrievalMetrics };
  test?: RetrievalMetrics;
  seconds: number;
  steps: number;
  parameters: number;
  text: { unkShare: number; truncated: number };
}

function rngOf(seed: number) {
  let s = (seed * 2654435761 + 1) >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Embeddings of a split with the current heads (image rows, caption rows), as the heads give them (not normalised: see headsRecall). */
function embedSplit(
  c: HeadsTeacherConfig,
  vars: Record<string, tf.Tensor>,
  glove: tf.Tensor,
  feats: Float32Array,
  fdim: number,
  ids: Int32Array,
  mask: Float32Array,
  nT: number,
) {
  return tf.tidy(() => {
    const o = tfOps();
    const img = imageHead(o, vars, c, tf.tensor2d(feats, [feats.length / fdim, fdim]));
    const parts: Float32Array[] = [];
    const L = c.maxTextLength;
    for (let s = 0; s < nT; s += 1024) {
      const e = Math.min(nT, s + 1024);
      parts.push(
        textEncoder(
          o,
          vars,
          c,
          glove,
          tf.tensor2d(ids.subarray(s * L, e * L), [e - s, L], 'int32'),
          tf.tensor2d(mask.subarray(s * L, e * L), [e - s, L]),
        ).dataSync() as Float32Array,
      );
    }
    const texts = new Float32Array(nT * c.dim);
    let off = 0;
    for (const p of parts) (texts.set(p, off), (off += p.length));
    return { images: img.dataSync() as Float32Array, texts };
  });
}

/**
 * Recall@K of the heads' raw embeddings as distill evaluates a teacher: rows L2-normalised first (the heads
 * train on cosine similarity; the ONNX teacher adapter normalises what image.onnx / text.onnx return), since
 * computeRecall ranks by plain dot products. Without it a caption's norm decides its rank.
 */
export function headsRecall(
  images: Float32Array,
  texts: Float32Array,
  dim: number,
  textToImage: Int32Array | number[],
): RetrievalMetrics {
  return headline(
    computeRecall(l2NormalizeRows(images, dim), l2NormalizeRows(texts, dim), dim, textToImage, { engine: 'tf' }),
  ) as RetrievalMetrics;
}

function evalSplit(
  c: HeadsTeacherConfig,
  vars: Record<string, tf.Tensor>,
  glove: tf.Tensor,
  feats: Float32Array,
  fdim: number,
  dataset: Dataset,
  split: string,
  index: Map<string, number>,
): RetrievalMetrics {
  const caps = dataset.splits[split].captions;
  const { ids, mask } = wordIds(
    caps.map((x) => x.text),
    index,
    c.maxTextLength,
  );
  const { images, texts } = embedSplit(c, vars, glove, feats, fdim, ids, mask, caps.length);
  return headsRecall(
    images,
    texts,
    c.dim,
    caps.map((x) => x.image),
  );
}

/** Trains the heads on cached trunk features (tfjs, Adam with decoupled weight decay, cosine schedule); keeps the best epoch by val RSUM. */
export async function trainHeads(
  dataset: Dataset,
  feats: Record<string, Float32Array>,
  cfg: Partial<HeadsTeacherConfig>,
  opts: { logger?: Logger; test?: boolean } = {},
): Promise<HeadsTrainResult> {
  const c: HeadsTeacherConfig = { ...HEADS_TEACHER_DEFAULTS, ...cfg };
  const log = opts.logger ?? createLogger({ scope: 'teacher' });
  const g = loadGlove();
  const train = dataset.splits.train;
  const fdim = feats.train.length / train.images.length;
  const rand = rngOf(c.seed);
  const specs = headSpecs(c, fdim, g.dim);
  const vars: Record<string, tf.Variable> = {};
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const data =
      s.init === 'zeros'
        ? new Float32Array(n)
        : s.init === 'ones'
          ? new Float32Array(n).fill(1)
          : Float32Array.from({ length: n }, () => {
              const u = Math.max(rand(), 1e-12),
                v = rand();
              return (s.init as { std: number }).std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
            });
    vars[s.name] = tf.variable(tf.tensor(data, s.shape), true, s.name);
  }
  const wt = gloveWordTable();
  const glove = tf.tensor2d(wt.data, wt.shape);
  const allCaps = train.captions;
  const byImage: number[][] = train.images.map(() => []);
  allCaps.forEach((x, i) => byImage[x.image].push(i));
  const conceptKeys = new Map<string, number>();
  const concept = byImage.map((cs) => {
    const k = cs
      .map((i) => allCaps[i].text)
      .sort()
      .join('\u0000');
    if (!conceptKeys.has(k)) conceptKeys.set(k, conceptKeys.size);
    return conceptKeys.get(k)!;
  });
  const tok = wordIds(
    allCaps.map((x) => x.text),
    g.index,
    c.maxTextLength,
  );
  const L = c.maxTextLength;
  const nImg = train.images.length;
  const steps = Math.floor(nImg / c.batchSize) * c.epochs;
  const optimizer = tf.train.adam(c.lr);
  const t0 = Date.now();
  let step = 0;
  const val: RetrievalMetrics[] = [];
  let best:
    | { epoch: number; val: RetrievalMetrics; params: Record<string, { shape: number[]; data: Float32Array }> }
    | undefined;
  const progress = createProgress({ label: `teacher heads (${c.layer} @ ${c.imageSize}px)`, total: steps });
  for (let epoch = 1; epoch <= c.epochs; epoch++) {
    const order = Array.from({ length: nImg }, (_, i) => i);
    for (let i = nImg - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (let b = 0; b + c.batchSize <= nImg; b += c.batchSize) {
      const imgs = order.slice(b, b + c.batchSize);
      const capIdx = imgs.map((im) => byImage[im][Math.floor(rand() * byImage[im].length)]);
      const f = new Float32Array(imgs.length * fdim);
      imgs.forEach((im, k) => f.set(feats.train.subarray(im * fdim, (im + 1) * fdim), k * fdim));
      const ids = new Int32Array(imgs.length * L);
      const mask = new Float32Array(imgs.length * L);
      capIdx.forEach(
        (ci, k) => (
          ids.set(tok.ids.subarray(ci * L, (ci + 1) * L), k * L),
          mask.set(tok.mask.subarray(ci * L, (ci + 1) * L), k * L)
        ),
      );
      const lr = c.lr * (step < 100 ? (step + 1) / 100 : 0.5 * (1 + Math.cos((Math.PI * step) / steps)));
      (optimizer as unknown as { learningRate: number }).learningRate = lr;
      tf.tidy(() => {
        const fx = tf.tensor2d(f, [imgs.length, fdim]);
        const idT = tf.tensor2d(ids, [imgs.length, L], 'int32');
        const mT = tf.tensor2d(mask, [imgs.length, L]);
        // drawings of one concept (the same caption set, other styles) in one batch are not each other's negatives
        const same = new Float32Array(imgs.length * imgs.length);
        for (let i = 0; i < imgs.length; i++)
          for (let j = 0; j < imgs.length; j++)
            if (i !== j && concept[imgs[i]] === concept[imgs[j]]) same[i * imgs.length + j] = -1e4;
        const sameT = tf.tensor2d(same, [imgs.length, imgs.length]);
        optimizer.minimize(
          () => {
            const o = tfOps({ training: true });
            const im0 = imageHead(o, vars, c, fx);
            // x / sqrt(|x|^2 + eps): finite gradients at x = 0 too (a caption of unknown words only starts at 0)
            const unit = (x: tf.Tensor) =>
              tf.mul(x, tf.rsqrt(tf.add(tf.sum(tf.square(x), 1, true), 1e-12))) as tf.Tensor2D;
            const im = unit(im0);
            const tx = unit(textEncoder(o, vars, c, glove, idT, mT));
            const logits = tf.add(tf.div(tf.matMul(im, tx, false, true), c.temperature), sameT);
            const labels = tf.oneHot(tf.range(0, imgs.length, 1, 'int32'), imgs.length);
            return tf
              .add(
                tf.losses.softmaxCrossEntropy(labels, logits),
                tf.losses.softmaxCrossEntropy(labels, tf.transpose(logits)),
              )
              .div(2) as tf.Scalar;
          },
          false,
          Object.values(vars),
        );
        if (c.weightDecay > 0)
          for (const [name, v] of Object.entries(vars))
            if (name.endsWith('.weight') && v.shape.length === 2) v.assign(tf.mul(v, 1 - lr * c.weightDecay));
      });
      step++;
      progress.tick(1);
    }
    const m = evalSplit(c, vars, glove, feats.val, fdim, dataset, 'val', g.index);
    val.push(m);
    log.info(`epoch ${epoch}/${c.epochs}: val RSUM ${m.rsum.toFixed(2)}`, { epoch, rsum: m.rsum });
    if (!best || m.rsum > best.val.rsum)
      best = {
        epoch,
        val: m,
        params: Object.fromEntries(
          Object.entries(vars).map(([k, v]) => [
            k,
            { shape: [...v.shape], data: v.dataSync().slice() as Float32Array },
          ]),
        ),
      };
  }
  for (const [k, v] of Object.entries(best!.params)) vars[k].assign(tf.tensor(v.data, v.shape));
  const test =
    opts.test !== false && feats.test
      ? evalSplit(c, vars, glove, feats.test, fdim, dataset, 'test', g.index)
      : undefined;
  const parameters = Object.entries(best!.params).reduce((a, [, v]) => a + v.data.length, 0);
  tf.dispose([glove, ...Object.values(vars)]);
  return {
    params: best!.params,
    val,
    best: { epoch: best!.epoch, val: best!.val },
    test,
    seconds: (Date.now() - t0) / 1000,
    steps,
    parameters,
    text: { unkShare: tok.unk / Math.max(1, tok.words), truncated: tok.truncated / Math.max(1, allCaps.length) },
  };
}

// ---------------------------------------------------------------- export (ONNX teacher folder)

function paramsIn(
  g: Graph,
  params: Record<string, { shape: number[]; data: Float32Array }>,
  prefix: string[],
): TensorParams<Sym> {
  return Object.fromEntries(
    Object.entries(params)
      .filter(([k]) => prefix.some((p) => k.startsWith(p)))
      .map(([k, v]) => {
        const init = `w.${k}`;
        g.initializers.push({ name: init, dtype: 'float32', dims: [...v.shape], data: v.data });
        const s = new Sym(g, init, [...v.shape], 'float32', false);
        g.values.set(init, s);
        return [k, s];
      }),
  );
}

/** A graph built at batch 1 with no batch-sized constant, declared with a symbolic batch. */
function withBatch(g: Graph, out: Sym, outName: string): Uint8Array {
  const nodes = [...g.nodes, { op: 'Identity', name: 'n_output', inputs: [out.name], outputs: [outName] }];
  return encodeModel({
    nodes,
    initializers: g.initializers,
    inputs: g.inputs.map((s) => ({ name: s.name, dtype: s.dtype, shape: ['batch', ...s.shape.slice(1)] })),
    outputs: [{ name: outName, dtype: 'float32', shape: ['batch', out.shape[1]] }],
    opset: 20,
  });
}

export interface HeadsTeacherExport {
  out: string;
  bytes: Record<string, number>;
}

/**
 * Writes the ONNX teacher folder: image.onnx (trunk to the layer, pooled, + image head), text.onnx (the
 * word table + text encoder; input_ids / attention_mask [batch, maxTextLength]), tokenizer.json, teacher.json.
 */
export function exportHeadsTeacher(
  out: string,
  c: HeadsTeacherConfig,
  params: Record<string, { shape: number[]; data: Float32Array }>,
  meta: Record<string, unknown>,
): HeadsTeacherExport {
  const gl = loadGlove();
  mkdirSync(out, { recursive: true });
  // image
  const gi = new Graph();
  const tc: MobileNetV2TowerConfig = { imageSize: c.imageSize, layer: c.layer, numChannels: 3 };
  const px = gi.input('pixel_values', [1, 3, c.imageSize, c.imageSize]);
  const o = graphOps();
  const trunk = mobilenetV2Tower(o, frozenTrunkParams(o, px, tc), tc, px).features;
  const img = imageHead(o, paramsIn(gi, params, ['image_head.']), c, trunk);
  const image = withBatch(gi, img, 'image_embeds');
  // text
  const gt = new Graph();
  const L = c.maxTextLength;
  const ids = gt.input('input_ids', [1, L], { dtype: 'int64' });
  const maskInt = gt.input('attention_mask', [1, L], { dtype: 'int64' });
  const mask = gt.emit('Cast', [maskInt], [[1, L]], { attrs: { to: 1 }, dtype: 'float32' })[0];
  // the int8 table and its row scales: table = Cast(q) * scale
  const wt = gloveWordTable();
  gt.initializers.push({ name: 'w.words.q', dtype: 'int8', dims: [...wt.shape], data: wt.q });
  const qSym = new Sym(gt, 'w.words.q', [...wt.shape], 'int8', false);
  gt.values.set('w.words.q', qSym);
  const scale = paramsIn(gt, { 'words.scale': { shape: [wt.shape[0], 1], data: wt.scale } }, ['words.'])['words.scale'];
  const glove = o.mul(gt.emit('Cast', [qSym], [[...wt.shape]], { attrs: { to: 1 }, dtype: 'float32' })[0], scale);
  const txt = textEncoder(o, paramsIn(gt, params, ['text.']), c, glove, ids, mask);
  const text = withBatch(gt, txt, 'text_embeds');
  const { mean, std } = pixelNorm(c.pixelRange);
  const tmp = `${out}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  writeFileSync(join(tmp, 'image.onnx'), image);
  writeFileSync(join(tmp, 'text.onnx'), text);
  writeFileSync(join(tmp, 'tokenizer.json'), JSON.stringify(wordTokenizerJson(gl.words, L)));
  atomicWriteJson(join(tmp, 'teacher.json'), {
    name: meta.name ?? 'heads-teacher',
    imageSize: c.imageSize,
    resize: c.imageSize,
    mean,
    std,
    maxTextLength: L,
    dim: c.dim,
    padId: 0,
    inputs: { pixels: 'pixel_values', ids: 'input_ids', mask: 'attention_mask' },
    outputs: { image: 'image_embeds', text: 'text_embeds' },
    provenance: { ...meta, config: c },
  });
  const old = `${out}.old`;
  rmSync(old, { recursive: true, force: true });
  if (existsSync(out)) renameSync(out, old);
  renameSync(tmp, out);
  rmSync(old, { recursive: true, force: true });
  return {
    out,
    bytes: { image: image.length, text: text.length, tokenizer: readFileSync(join(out, 'tokenizer.json')).length },
  };
}

export function requireMultipleOf32(size: number): void {
  if (!(Number.isInteger(size) && size > 0 && size % 32 === 0))
    throw new DistillError(
      `--image-size ${size}: the MobileNetV2 trunk needs a multiple of 32 (96, 128, 160, 224).`,
      2,
    );
}
