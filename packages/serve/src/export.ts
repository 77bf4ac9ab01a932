/**
 * `distill export`: a saved student (student.json + model.safetensors + tokenizer.json) to a folder in the
 * ONNX teacher contract (docs/teachers.md): image.onnx, text.onnx, tokenizer.json, teacher.json. The graphs
 * are the training engine's own towers (student-architectures' `Encoder.tower` on `graphOps`) + projection + L2 normalisation, the weights
 * stored as initializers, with a symbolic batch dimension. The export is checked against distill's forward.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DistillError, OnnxRunner, Rng, atomicWriteJson, graphOps, tf, type TensorParams } from '@distill/core';
import { Graph, Sym, encodeModel, type NodeSpec, type TensorSpec } from '@distill/autodiff';
import {
  buildEncoderGraph,
  getStudentWeights,
  loadStudent,
  studentEmbedding,
  type DualEncoderStudent,
} from '@distill/student-architectures';
import { TEACHER_IO } from '@distill/teacher-adapters';
import { OnnxModel, modelHash } from './model.js';
import { quantizeGemmsInt8 } from './quantize.js';

/** The batch size the graphs are built with, then replaced by the symbol 'batch' (a prime no model size is a multiple of). */
const SENTINEL = 100_003;
const OPSET = 20;

export interface TowerModel {
  bytes: Uint8Array;
}

/**
 * Rewrites a graph built at batch SENTINEL to take any batch: in every Reshape target the one size that
 * is a multiple of SENTINEL becomes -1; every Expand to [SENTINEL, ...] takes its first size from the
 * data input's shape at run time. Any other constant that still holds a multiple of SENTINEL means the
 * graph depends on the batch size in a way this does not handle: that throws (nothing is exported).
 */
function dynamicBatch(g: Graph, dataInput: string): { nodes: NodeSpec[]; initializers: TensorSpec[] } {
  const inits = new Map(g.initializers.map((t) => [t.name, t]));
  const extraInits: TensorSpec[] = [];
  const extraNodes: NodeSpec[] = [];
  let n = 0;
  const int64 = (name: string, v: number[]) => {
    extraInits.push({ name, dtype: 'int64', dims: [v.length], data: BigInt64Array.from(v.map(BigInt)) });
    return name;
  };
  let batchDim: string | undefined;
  const batchOf = () => {
    if (batchDim) return batchDim;
    batchDim = 'xb_batch_dim';
    extraNodes.push({ op: 'Shape', name: 'xb_shape', inputs: [dataInput], outputs: ['xb_shape_out'] });
    extraNodes.push({
      op: 'Slice',
      name: 'xb_slice',
      inputs: ['xb_shape_out', int64('xb_s0', [0]), int64('xb_s1', [1])],
      outputs: [batchDim],
    });
    return batchDim;
  };
  const touched = new Set<string>();
  const nodes = g.nodes.map((node) => {
    if (node.op !== 'Reshape' && node.op !== 'Expand') return node;
    const shapeName = node.inputs[1];
    const t = inits.get(shapeName);
    if (!t) return node;
    const dims = Array.from(t.data as BigInt64Array, Number);
    const hits = dims.map((d, i) => (d !== 0 && d % SENTINEL === 0 ? i : -1)).filter((i) => i >= 0);
    if (hits.length === 0) return node;
    touched.add(shapeName);
    if (hits.length > 1)
      throw new Error(`export: ${node.op} ${node.name} to [${dims}] has ${hits.length} batch-sized dims`);
    if (node.op === 'Reshape') {
      const out = dims.map((d, i) => (i === hits[0] ? -1 : d));
      return { ...node, inputs: [node.inputs[0], int64(`xb_reshape_${n++}`, out)] };
    }
    if (hits[0] !== 0 || dims[0] !== SENTINEL)
      throw new Error(`export: Expand ${node.name} to [${dims}] is not batch-first`);
    const rest = int64(`xb_rest_${n}`, dims.slice(1));
    const shape = `xb_expand_shape_${n++}`;
    extraNodes.push({
      op: 'Concat',
      name: `${shape}_node`,
      inputs: [batchOf(), rest],
      outputs: [shape],
      attrs: { axis: 0 },
    });
    return { ...node, inputs: [node.inputs[0], shape] };
  });
  for (const t of g.initializers) {
    if (touched.has(t.name) || t.dtype !== 'int64') continue;
    const bad = Array.from(t.data as BigInt64Array, Number).find((d) => d !== 0 && d % SENTINEL === 0);
    if (bad !== undefined)
      throw new Error(
        `export: constant ${t.name} depends on the batch size (${bad}); the graph cannot take a dynamic batch`,
      );
  }
  return { nodes: [...extraNodes, ...nodes], initializers: [...g.initializers, ...extraInits] };
}

/** One tower of a student as a self-contained ONNX model (weights as initializers, dynamic batch). */
export function towerModel(
  student: DualEncoderStudent,
  tower: 'image' | 'text',
  opts: { quantize?: 'int8' } = {},
): Uint8Array {
  const g = new Graph();
  const weights = getStudentWeights(student);
  // the tower's and its projection's weights as initializers, by variable name
  const params: TensorParams<Sym> = Object.fromEntries(
    Object.entries(weights).flatMap(([name, w]) => {
      if (!name.startsWith(`${tower}.`) && !name.startsWith(`${tower}_proj.`)) return [];
      const init = `w.${name}`;
      g.initializers.push({ name: init, dtype: 'float32', dims: [...w.shape], data: w.data });
      const s = new Sym(g, init, [...w.shape], 'float32', false);
      g.values.set(init, s);
      return [[name, s]];
    }),
  );
  const { maxLength } = student.config;
  const B = SENTINEL;
  let out: Sym;
  let dataInput: string;
  if (tower === 'image') {
    const { crop } = student.preprocess;
    const pixels = g.input('pixel_values', [B, 3, crop, crop]);
    dataInput = pixels.name;
    out = studentEmbedding(graphOps(), student, 'image', params, pixels);
  } else {
    const ids = g.input('input_ids', [B, maxLength], { dtype: 'int64' });
    const maskInt = g.input('attention_mask', [B, maxLength], { dtype: 'int64' });
    dataInput = ids.name;
    const mask = g.emit('Cast', [maskInt], [[B, maxLength]], { attrs: { to: 1 }, dtype: 'float32' })[0];
    out = studentEmbedding(graphOps(), student, 'text', params, { ids, mask });
  }
  const outName = tower === 'image' ? 'image_embeds' : 'text_embeds';
  let { nodes, initializers } = dynamicBatch(g, dataInput);
  if (opts.quantize === 'int8') ({ nodes, initializers } = quantizeGemmsInt8(nodes, initializers));
  nodes.push({ op: 'Identity', name: 'n_output', inputs: [out.name], outputs: [outName] });
  const used = new Set(nodes.flatMap((x) => x.inputs));
  return encodeModel({
    nodes,
    initializers: initializers.filter((t) => used.has(t.name)),
    inputs: g.inputs.map((s) => ({ name: s.name, dtype: s.dtype, shape: ['batch', ...s.shape.slice(1)] })),
    outputs: [{ name: outName, dtype: 'float32', shape: ['batch', out.shape[1]] }],
    opset: OPSET,
  });
}

export interface Parity {
  /** max |onnxruntime - distill forward| over the checked batches. */
  image: number;
  text: number;
  batches: number[];
  /** distill's tfjs forward, or the onnx engine's inference graph for large students. */
  reference: 'tfjs' | 'onnx-engine';
}

export interface ExportResult {
  out: string;
  files: string[];
  hash: string;
  dim: number;
  parity: Parity;
  bytes: { image: number; text: number };
}

/** Captions for the text parity check (the last is longer than any student's maxLength: truncation is checked too). */
export const PARITY_TEXTS = [
  'red heart',
  'grinning face with smiling eyes',
  'a cat',
  'flag of a country with stars and stripes in red white and blue',
  Array.from({ length: 80 }, (_, i) => ['smile', 'heart', 'sun', 'moon', 'star'][i % 5]).join(' '),
];

async function studentImages(student: DualEncoderStudent, pixels: Float32Array, n: number): Promise<Float32Array> {
  const { crop } = student.preprocess;
  const out = tf.tidy(() => student.encodeImage(tf.tensor4d(pixels, [n, 3, crop, crop]), false));
  const data = (await out.data()) as Float32Array;
  out.dispose();
  return data;
}

async function studentTexts(student: DualEncoderStudent, texts: string[]): Promise<Float32Array> {
  const tok = student.tokenize(texts);
  const out = tf.tidy(() => student.encodeText(tok, false));
  const data = (await out.data()) as Float32Array;
  tf.dispose([out, tok.ids, tok.mask]);
  return data;
}

const maxAbsDiff = (a: Float32Array, b: Float32Array) => {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

/**
 * distill's forward on the training engine's inference graph (onnx-engine.ts's buildEncoderGraph: the
 * student's variables fed as inputs, static batch): the reference for students too large for the
 * tfjs-wasm heap (the onnx engine is what trains them).
 */
async function engineForward(
  student: DualEncoderStudent,
  tower: 'image' | 'text',
  n: number,
  data: { pixels?: Float32Array; texts?: string[] },
): Promise<Float32Array> {
  const L = student.config.maxLength;
  const { model, inputs } = buildEncoderGraph(student, tower, n, L);
  const runner = await OnnxRunner.create(model, { threads: 1 });
  try {
    const vars = student.variables();
    const feeds: Record<string, { data: Float32Array | BigInt64Array; dims: number[] }> = {};
    for (const name of inputs) {
      if (/^p\d+$/.test(name)) {
        const v = vars[Number(name.slice(1))].variable;
        feeds[name] = { data: v.dataSync() as Float32Array, dims: [...v.shape] };
      }
    }
    if (tower === 'image') {
      const { crop } = student.preprocess;
      feeds.pixels = { data: data.pixels!, dims: [n, 3, crop, crop] };
    } else {
      const { ids, mask } = student.tokenizer!.encodeArrays(data.texts!);
      feeds.ids = { data: BigInt64Array.from(ids, (v) => BigInt(v)), dims: [n, L] };
      feeds.mask = { data: Float32Array.from(mask), dims: [n, L] };
    }
    const [out] = await runner.run(feeds, ['embedding']);
    return new Float32Array(out);
  } finally {
    await runner.session.release?.();
  }
}

/** Parameters above which the parity reference is the onnx engine's graph, not tfjs (the tfjs-wasm heap is 4 GB). */
export const TFJS_REFERENCE_MAX_PARAMS = 30e6;

/**
 * max |onnxruntime - distill| on seeded random pixels and PARITY_TEXTS, at batch 1 and at batch n. The
 * reference is distill's tfjs forward, or for students over TFJS_REFERENCE_MAX_PARAMS the onnx engine's
 * inference graph.
 */
export async function checkParity(
  student: DualEncoderStudent,
  model: OnnxModel,
  batches = [1, 5],
  reference?: 'tfjs' | 'onnx-engine',
): Promise<Parity> {
  const ref = reference ?? (student.parameterCount().total > TFJS_REFERENCE_MAX_PARAMS ? 'onnx-engine' : 'tfjs');
  const { crop } = student.preprocess;
  const rng = new Rng(18);
  let image = 0;
  let text = 0;
  for (const n of batches) {
    const px = new Float32Array(n * 3 * crop * crop);
    for (let i = 0; i < px.length; i++) px[i] = rng.normal();
    const texts = Array.from({ length: n }, (_, i) => PARITY_TEXTS[i % PARITY_TEXTS.length]);
    const refImage =
      ref === 'tfjs' ? await studentImages(student, px, n) : await engineForward(student, 'image', n, { pixels: px });
    image = Math.max(image, maxAbsDiff(await model.encodeImages(px, n), refImage));
    const refText =
      ref === 'tfjs' ? await studentTexts(student, texts) : await engineForward(student, 'text', n, { texts });
    text = Math.max(text, maxAbsDiff(await model.encodeTexts(texts), refText));
  }
  return { image, text, batches, reference: ref };
}

export const PARITY_TOLERANCE = 1e-5;

/** A saved student folder: `src` itself, `src/best`, a run folder's `student/best`, or its only `<x>/best`. */
export function resolveStudentDir(src: string): string {
  if (!existsSync(src))
    throw new DistillError(
      `Student folder not found: ${src}. Give a run folder or a saved student folder (student.json, model.safetensors, tokenizer.json).`,
      2,
    );
  if (existsSync(join(src, 'student.json'))) return src;
  if (existsSync(join(src, 'best', 'student.json'))) return join(src, 'best');
  // an experiment's run folder: the distilled student (student/), not the no-teacher baseline (baseline/)
  if (existsSync(join(src, 'student', 'best', 'student.json'))) return join(src, 'student', 'best');
  const found = readdirSync(src, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(src, e.name, 'best', 'student.json')))
    .map((e) => join(src, e.name, 'best'));
  if (found.length === 1) return found[0];
  if (found.length > 1)
    throw new DistillError(`${src} holds ${found.length} trained students (${found.join(', ')}): give one of them.`, 2);
  throw new DistillError(
    `${src} holds no saved student (student.json, model.safetensors, tokenizer.json; a run folder keeps its best one in <run>/<student>/best). Train one with \`distill train --run-dir ${src}\`.`,
    2,
  );
}

/**
 * Export a saved student folder (or a run folder holding `best/`) to `out`. Throws a DistillError when the
 * exported models do not reproduce distill's forward within PARITY_TOLERANCE (the folder is then left
 * without teacher.json, so nothing loads it).
 */
export async function exportStudent(src: string, out: string, opts: { force?: boolean } = {}): Promise<ExportResult> {
  const dir = resolveStudentDir(src);
  const { student, meta } = loadStudent(dir);
  try {
    if (existsSync(out) && readdirSync(out).length > 0 && !opts.force) {
      const ours = existsSync(join(out, 'teacher.json')) || existsSync(join(out, 'image.onnx'));
      if (!ours)
        throw new DistillError(
          `${out} exists and is not empty: give a new folder to --out (or --force to write into it).`,
          2,
        );
    }
    mkdirSync(out, { recursive: true });
    const image = towerModel(student, 'image');
    const text = towerModel(student, 'text');
    writeFileSync(join(out, 'image.onnx'), image);
    writeFileSync(join(out, 'text.onnx'), text);
    const toks = readdirSync(dir).filter(
      (f) => /^tokenizer.*\.json$/.test(f) || f === 'special_tokens_map.json' || f === 'vocab.txt',
    );
    for (const f of toks) copyFileSync(join(dir, f), join(out, f));
    const model = await OnnxModel.load(out, {
      spec: {
        imageSize: student.preprocess.crop,
        maxTextLength: meta.config.maxLength,
        padId: student.tokenizer?.padId ?? 0,
      },
      threads: 1,
    });
    let parity: Parity;
    try {
      parity = await checkParity(student, model);
    } finally {
      await model.dispose();
    }
    if (!(parity.image <= PARITY_TOLERANCE && parity.text <= PARITY_TOLERANCE)) {
      throw new DistillError(
        `Export parity failed: onnxruntime differs from distill's forward by ${parity.image.toExponential(2)} (image) and ${parity.text.toExponential(2)} (text), over ${PARITY_TOLERANCE}. ` +
          `${out} has no teacher.json and is not usable; please report this with ${join(dir, 'student.json')}.`,
        1,
      );
    }
    const p = student.preprocess;
    const spec = {
      name: `distill-${meta.config.pair}`,
      imageSize: p.crop,
      resize: p.resize,
      mean: p.mean,
      std: p.std,
      maxTextLength: meta.config.maxLength,
      dim: student.embedDim,
      padId: student.tokenizer?.padId ?? 0,
      ...TEACHER_IO,
      exportedFrom: {
        dir,
        pair: meta.config.pair,
        preset: meta.config.preset,
        parity: { image: parity.image, text: parity.text, reference: parity.reference },
      },
      normalized: true,
    };
    atomicWriteJson(join(out, 'teacher.json'), spec);
    const files = ['image.onnx', 'text.onnx', ...toks, 'teacher.json'];
    return {
      out,
      files,
      hash: modelHash(out),
      dim: student.embedDim,
      parity,
      bytes: { image: image.length, text: text.length },
    };
  } finally {
    student.dispose();
  }
}

export interface QuantizedExport {
  out: string;
  hash: string;
  bytes: { image: number; text: number };
  /** max |int8 - float32| of the unit embeddings on the parity inputs (batch 5). */
  maxDiff: { image: number; text: number };
}

/**
 * `--quantize int8`: the same student as `exportStudent`, with int8 Gemm weights (dynamic quantization),
 * written to `out` as a complete model folder (teacher.json says `"quantized": "int8"`). Compared with the
 * float export in `floatDir` on the parity inputs.
 */
export async function exportQuantized(src: string, floatDir: string, out: string): Promise<QuantizedExport> {
  const dir = resolveStudentDir(src);
  const { student } = loadStudent(dir);
  try {
    mkdirSync(out, { recursive: true });
    const image = towerModel(student, 'image', { quantize: 'int8' });
    const text = towerModel(student, 'text', { quantize: 'int8' });
    writeFileSync(join(out, 'image.onnx'), image);
    writeFileSync(join(out, 'text.onnx'), text);
    for (const f of readdirSync(floatDir).filter((f) => f.endsWith('.json') || f === 'vocab.txt'))
      copyFileSync(join(floatDir, f), join(out, f));
    const spec = JSON.parse(readFileSync(join(floatDir, 'teacher.json'), 'utf8')) as Record<string, unknown>;
    atomicWriteJson(join(out, 'teacher.json'), { ...spec, name: `${String(spec.name)}-int8`, quantized: 'int8' });
    const [q, f] = [await OnnxModel.load(out, { threads: 1 }), await OnnxModel.load(floatDir, { threads: 1 })];
    try {
      const { crop } = student.preprocess;
      const n = 5;
      const rng = new Rng(18);
      const px = new Float32Array(n * 3 * crop * crop);
      for (let i = 0; i < px.length; i++) px[i] = rng.normal();
      const texts = PARITY_TEXTS.slice(0, n);
      const maxDiff = {
        image: maxAbsDiff(await q.encodeImages(px, n), await f.encodeImages(px, n)),
        text: maxAbsDiff(await q.encodeTexts(texts), await f.encodeTexts(texts)),
      };
      return { out, hash: q.hash, bytes: { image: image.length, text: text.length }, maxDiff };
    } finally {
      await q.dispose();
      await f.dispose();
    }
  } finally {
    student.dispose();
  }
}
