import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DistillError, sha256, type ImagePreprocess, type Teacher } from '@distill/core';
import { Tokenizer } from '@huggingface/tokenizers';

/**
 * The export contract of an ONNX teacher folder:
 *   image.onnx     pixel_values [B,3,S,S] float32            -> image embeddings [B,D] (projected, not normalised)
 *   text.onnx      input_ids, attention_mask [B,L] int64     -> text embeddings  [B,D]
 *   tokenizer.json Hugging Face tokenizer of the text tower
 *   teacher.json   { name, imageSize, resize, mean, std, maxTextLength, dim, inputs{...}, outputs{...} } (optional
 *                  when a preset gives every field)
 * distill L2-normalises the embeddings.
 */
export interface TeacherSpec {
  name: string;
  imageSize: number;
  /** Shorter side before the centre crop (default = imageSize). */
  resize?: number;
  mean: [number, number, number];
  std: [number, number, number];
  maxTextLength: number;
  /** Expected embedding dim (checked against the outputs); 0 = take it from the model. */
  dim: number;
  inputs: { pixels: string; ids: string; mask: string };
  outputs: { image: string; text: string };
  /** Token id used for padding (default 0). */
  padId?: number;
}

const IO = { inputs: { pixels: 'pixel_values', ids: 'input_ids', mask: 'attention_mask' }, outputs: { image: 'image_embeds', text: 'text_embeds' } };

export const TEACHER_PRESETS: Record<string, TeacherSpec> = {
  clip: { name: 'clip', imageSize: 224, mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711], maxTextLength: 77, dim: 0, ...IO },
  beit3: { name: 'beit3', imageSize: 384, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], maxTextLength: 64, dim: 0, ...IO, padId: 1 },
};

const LAYOUT = (dir: string) =>
  `A teacher folder needs image.onnx, text.onnx, tokenizer.json and (unless a preset covers it) teacher.json, in ${dir}. ` +
  'Export one with tools/export/export_clip.py (Hugging Face CLIP) or tools/export/export_beit3.py (BEiT-3 retrieval checkpoints); ' +
  'without a teacher folder, `distill train` uses the embedded emoji teacher.';

type Ort = typeof import('onnxruntime-node');
let ortModule: Ort | undefined;
async function ort(): Promise<Ort> {
  ortModule ??= (await import('onnxruntime-node')) as Ort;
  return ((ortModule as unknown as { default?: Ort }).default ?? ortModule) as Ort;
}

export interface OnnxTeacherOptions {
  preset?: string;
  /** onnxruntime intra-op threads (default: all cores). */
  threads?: number;
  /** e.g. ['cuda', 'cpu'] with a CUDA build of onnxruntime-node. */
  executionProviders?: string[];
  /** Only the image tower (parity checks without a tokenizer). */
  requireTokenizer?: boolean;
}

/** Row-wise L2 normalisation into a new array: x / max(||x||, 1e-12). */
export function l2normalizeRows(x: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / dim; r++) {
    let n = 0;
    for (let d = 0; d < dim; d++) n += x[r * dim + d] ** 2;
    const s = 1 / Math.max(Math.sqrt(n), 1e-12);
    for (let d = 0; d < dim; d++) out[r * dim + d] = x[r * dim + d] * s;
  }
  return out;
}

export class OnnxTeacher implements Teacher {
  readonly name: string;
  readonly preprocess: ImagePreprocess;
  readonly maxTextLength: number;
  dim: number;
  private constructor(
    readonly dir: string,
    readonly spec: TeacherSpec,
    private readonly image: import('onnxruntime-node').InferenceSession,
    private readonly text: import('onnxruntime-node').InferenceSession,
    private readonly tokenizer: Tokenizer | undefined,
    private readonly fp: string,
  ) {
    this.name = spec.name;
    this.dim = spec.dim;
    this.maxTextLength = spec.maxTextLength;
    this.preprocess = { resize: spec.resize ?? spec.imageSize, crop: spec.imageSize, mean: spec.mean, std: spec.std };
  }

  static async load(dir: string, opts: OnnxTeacherOptions = {}): Promise<OnnxTeacher> {
    if (!existsSync(dir)) throw new DistillError(`Teacher folder not found: ${dir}. ${LAYOUT(dir)}`, 2);
    const files = ['image.onnx', 'text.onnx', ...(opts.requireTokenizer === false ? [] : ['tokenizer.json'])];
    const missing = files.filter((f) => !existsSync(join(dir, f)));
    const preset = opts.preset ? TEACHER_PRESETS[opts.preset] : undefined;
    if (opts.preset && !preset) throw new DistillError(`Unknown teacher preset '${opts.preset}'. Available: ${Object.keys(TEACHER_PRESETS).join(', ')}.`, 2);
    const hasSpec = existsSync(join(dir, 'teacher.json'));
    if (!hasSpec && !preset) missing.push('teacher.json');
    if (missing.length) throw new DistillError(`Teacher folder ${dir} is missing ${missing.join(', ')}. ${LAYOUT(dir)}`, 2);
    let spec: TeacherSpec = preset ?? ({} as TeacherSpec);
    if (hasSpec) {
      try {
        spec = { ...spec, ...(JSON.parse(readFileSync(join(dir, 'teacher.json'), 'utf8')) as Partial<TeacherSpec>) };
      } catch (e) {
        throw new DistillError(`Cannot parse ${join(dir, 'teacher.json')}: ${(e as Error).message}`, 2);
      }
    }
    const o = await ort();
    const sessOpts = { executionProviders: opts.executionProviders ?? ['cpu'], intraOpNumThreads: opts.threads ?? 0 };
    const image = await o.InferenceSession.create(join(dir, 'image.onnx'), sessOpts as never);
    const text = await o.InferenceSession.create(join(dir, 'text.onnx'), sessOpts as never);
    for (const [sess, names, what] of [[image, [spec.inputs.pixels], 'image.onnx'], [text, [spec.inputs.ids, spec.inputs.mask], 'text.onnx']] as const) {
      const lack = names.filter((n) => !sess.inputNames.includes(n));
      if (lack.length) throw new DistillError(`${join(dir, what)} has inputs ${sess.inputNames.join(', ')}; teacher.json expects ${lack.join(', ')}.`, 2);
    }
    let tokenizer: Tokenizer | undefined;
    if (existsSync(join(dir, 'tokenizer.json'))) {
      const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
      const config = existsSync(join(dir, 'tokenizer_config.json')) ? JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) : {};
      tokenizer = new Tokenizer(json, config);
    }
    const fp = sha256(
      Buffer.concat([...['image.onnx', 'text.onnx', 'tokenizer.json', 'teacher.json'].filter((f) => existsSync(join(dir, f))).map((f) => readFileSync(join(dir, f))), Buffer.from(JSON.stringify(spec))]),
    );
    return new OnnxTeacher(dir, spec, image, text, tokenizer, fp);
  }

  fingerprint(): string {
    return this.fp;
  }

  /** Projected, un-normalised image embeddings (as the export computes them). */
  async imageEmbeddingsRaw(pixels: Float32Array, n: number): Promise<Float32Array> {
    const o = await ort();
    const S = this.spec.imageSize;
    if (pixels.length !== n * 3 * S * S) throw new DistillError(`Teacher ${this.name}: expected ${n} x 3 x ${S} x ${S} pixels, got ${pixels.length} values.`);
    const r = await this.image.run({ [this.spec.inputs.pixels]: new o.Tensor('float32', pixels, [n, 3, S, S]) });
    const out = r[this.spec.outputs.image];
    if (!out) throw new DistillError(`${join(this.dir, 'image.onnx')} has no output '${this.spec.outputs.image}' (has ${Object.keys(r).join(', ')}).`);
    this.checkDim(out.dims as number[]);
    return out.data as Float32Array;
  }

  /** Projected, un-normalised text embeddings from token ids and mask ([n, L] row-major). */
  async textEmbeddingsRaw(ids: ArrayLike<number>, mask: ArrayLike<number>, n: number, L: number): Promise<Float32Array> {
    const o = await ort();
    const big = (a: ArrayLike<number>) => BigInt64Array.from(Array.from(a, (v) => BigInt(Math.round(v))));
    const r = await this.text.run({
      [this.spec.inputs.ids]: new o.Tensor('int64', big(ids), [n, L]),
      [this.spec.inputs.mask]: new o.Tensor('int64', big(mask), [n, L]),
    });
    const out = r[this.spec.outputs.text];
    if (!out) throw new DistillError(`${join(this.dir, 'text.onnx')} has no output '${this.spec.outputs.text}' (has ${Object.keys(r).join(', ')}).`);
    this.checkDim(out.dims as number[]);
    return out.data as Float32Array;
  }

  private checkDim(dims: number[]): void {
    const d = dims[dims.length - 1];
    if (this.dim && this.dim !== d) throw new DistillError(`Teacher ${this.name}: teacher.json says dim ${this.dim}, the model outputs ${d}.`);
    this.dim = d;
  }

  async encodeImages(pixels: Float32Array, n: number): Promise<Float32Array> {
    const raw = await this.imageEmbeddingsRaw(pixels, n);
    return l2normalizeRows(raw, this.dim);
  }

  /** Tokenise (truncate to maxTextLength, pad with padId) and encode; rows are L2-normalised. */
  async encodeTexts(texts: string[]): Promise<Float32Array> {
    if (!this.tokenizer) throw new DistillError(`Teacher ${this.name} has no tokenizer.json in ${this.dir}: it cannot encode captions.`);
    const enc: number[][] = texts.map((t) => Array.from(this.tokenizer!.encode(t).ids as ArrayLike<number>).slice(0, this.maxTextLength));
    const L = Math.max(1, ...enc.map((e) => e.length));
    const ids = new Array<number>(texts.length * L).fill(this.spec.padId ?? 0);
    const mask = new Array<number>(texts.length * L).fill(0);
    enc.forEach((e, i) => e.forEach((id, j) => ((ids[i * L + j] = id), (mask[i * L + j] = 1))));
    const raw = await this.textEmbeddingsRaw(ids, mask, texts.length, L);
    return l2normalizeRows(raw, this.dim);
  }

  async dispose(): Promise<void> {
    await this.image.release?.();
    await this.text.release?.();
  }
}
