import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DistillError, l2NormalizeRows, sha256, type ImagePreprocess, type Teacher } from '@distill/core';
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

/** The contract's default tensor names (what `distill export` and the export scripts write). */
export const TEACHER_IO: Pick<TeacherSpec, 'inputs' | 'outputs'> = {
  inputs: { pixels: 'pixel_values', ids: 'input_ids', mask: 'attention_mask' },
  outputs: { image: 'image_embeds', text: 'text_embeds' },
};

export const TEACHER_PRESETS: Record<string, TeacherSpec> = {
  clip: {
    name: 'clip',
    imageSize: 224,
    mean: [0.48145466, 0.4578275, 0.40821073],
    std: [0.26862954, 0.26130258, 0.27577711],
    maxTextLength: 77,
    dim: 0,
    ...TEACHER_IO,
  },
  beit3: {
    name: 'beit3',
    imageSize: 384,
    mean: [0.5, 0.5, 0.5],
    std: [0.5, 0.5, 0.5],
    maxTextLength: 64,
    dim: 0,
    ...TEACHER_IO,
    padId: 1,
  },
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
  /** Settings over the preset and teacher.json (e.g. a tiny test export's own imageSize and maxTextLength). */
  spec?: Partial<TeacherSpec>;
}

/** Number of token ids a tokenizer.json can produce: 1 + the largest id in its vocabulary and added tokens. */
export function tokenizerVocabSize(json: Record<string, unknown>): number | undefined {
  const model = json.model as { vocab?: unknown } | undefined;
  let max = -1;
  const vocab = model?.vocab;
  if (Array.isArray(vocab))
    max = vocab.length - 1; // Unigram: [[piece, score], ...]
  else if (vocab && typeof vocab === 'object')
    for (const id of Object.values(vocab)) if (typeof id === 'number' && id > max) max = id;
  for (const t of (json.added_tokens as { id?: unknown }[] | undefined) ?? [])
    if (typeof t.id === 'number' && t.id > max) max = t.id;
  return max >= 0 ? max + 1 : undefined;
}

export class OnnxTeacher implements Teacher {
  readonly name: string;
  readonly preprocess: ImagePreprocess;
  readonly maxTextLength: number;
  dim: number;
  /** The text model's static sequence length (0 = any): captions are padded to it. */
  private textLength = 0;
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
    if (opts.preset && !preset)
      throw new DistillError(
        `Unknown teacher preset '${opts.preset}'. Available: ${Object.keys(TEACHER_PRESETS).join(', ')}.`,
        2,
      );
    const hasSpec = existsSync(join(dir, 'teacher.json'));
    if (!hasSpec && !preset && !opts.spec) missing.push('teacher.json'); // a given spec is checked below like teacher.json
    if (missing.length)
      throw new DistillError(`Teacher folder ${dir} is missing ${missing.join(', ')}. ${LAYOUT(dir)}`, 2);
    let spec: TeacherSpec = preset ?? ({} as TeacherSpec);
    if (hasSpec) {
      try {
        spec = { ...spec, ...(JSON.parse(readFileSync(join(dir, 'teacher.json'), 'utf8')) as Partial<TeacherSpec>) };
      } catch (e) {
        throw new DistillError(`Cannot parse ${join(dir, 'teacher.json')}: ${(e as Error).message}`, 2);
      }
    }
    if (opts.spec) spec = { ...spec, ...opts.spec };
    const posInt = (k: 'imageSize' | 'maxTextLength') => Number.isInteger(spec[k]) && spec[k] > 0;
    const bad = [
      ...(['imageSize', 'maxTextLength'] as const).filter((k) => !posInt(k)),
      ...(['mean', 'std'] as const).filter(
        (k) => !(Array.isArray(spec[k]) && spec[k].length === 3 && spec[k].every(Number.isFinite)),
      ),
      ...(['inputs', 'outputs'] as const).filter((k) => typeof spec[k] !== 'object' || spec[k] === null),
    ];
    if (bad.length) {
      throw new DistillError(
        `${join(dir, 'teacher.json')} lacks valid ${bad.join(', ')} (imageSize and maxTextLength: positive integers; mean, std: 3 numbers; inputs, outputs: tensor names). ${LAYOUT(dir)}`,
        2,
      );
    }
    const o = await ort();
    const sessOpts = { executionProviders: opts.executionProviders ?? ['cpu'], intraOpNumThreads: opts.threads ?? 0 };
    const session = async (f: string) => {
      try {
        return await o.InferenceSession.create(join(dir, f), sessOpts as never);
      } catch (e) {
        const why = String((e as Error).message ?? e)
          .split('\n')[0]
          .slice(0, 300);
        throw new DistillError(
          `onnxruntime cannot load ${join(dir, f)}: ${why}. Re-export the teacher. ${LAYOUT(dir)}`,
          2,
        );
      }
    };
    const image = await session('image.onnx');
    const text = await session('text.onnx');
    for (const [sess, names, what] of [
      [image, [spec.inputs.pixels], 'image.onnx'],
      [text, [spec.inputs.ids, spec.inputs.mask], 'text.onnx'],
    ] as const) {
      const lack = names.filter((n) => !sess.inputNames.includes(n));
      if (lack.length)
        throw new DistillError(
          `${join(dir, what)} has inputs ${sess.inputNames.join(', ')}; teacher.json expects ${lack.join(', ')}.`,
          2,
        );
    }
    let tokenizer: Tokenizer | undefined;
    let vocabSize: number | undefined;
    if (existsSync(join(dir, 'tokenizer.json'))) {
      let json: Record<string, unknown>;
      try {
        json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
      } catch (e) {
        throw new DistillError(
          `Cannot parse ${join(dir, 'tokenizer.json')}: ${(e as Error).message}. ${LAYOUT(dir)}`,
          2,
        );
      }
      const config = existsSync(join(dir, 'tokenizer_config.json'))
        ? JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'))
        : {};
      tokenizer = new Tokenizer(json as never, config);
      vocabSize = tokenizerVocabSize(json);
    }
    const fp = sha256(
      Buffer.concat([
        ...['image.onnx', 'text.onnx', 'tokenizer.json', 'teacher.json']
          .filter((f) => existsSync(join(dir, f)))
          .map((f) => readFileSync(join(dir, f))),
        Buffer.from(JSON.stringify(spec)),
      ]),
    );
    const teacher = new OnnxTeacher(dir, spec, image, text, tokenizer, fp);
    try {
      await teacher.checkModels(vocabSize);
    } catch (e) {
      await teacher.dispose();
      throw e;
    }
    return teacher;
  }

  /**
   * Check teacher.json and tokenizer.json against the models before any work: the inputs' own metadata
   * (rank, element type, static batch/image/text sizes), then one tiny run of each model at the configured
   * image size and text length with the tokenizer's largest id (a smaller vocabulary or fewer position
   * embeddings fail here, with a message naming the setting, instead of mid-extraction).
   */
  private async checkModels(vocabSize: number | undefined): Promise<void> {
    const o = await ort();
    const S = this.spec.imageSize;
    const file = (f: string) => join(this.dir, f);
    const fix = `Fix teacher.json in ${this.dir} (or re-export the teacher).`;
    const meta = (sess: import('onnxruntime-node').InferenceSession, name: string) =>
      (
        sess as unknown as {
          inputMetadata?: readonly {
            name: string;
            isTensor: boolean;
            type?: string;
            shape?: readonly (number | string)[];
          }[];
        }
      ).inputMetadata?.find((m) => m.name === name);
    const dims = (shape: readonly (number | string)[]) => `[${shape.join(', ')}]`;
    const fixedBatch = (what: string, shape: readonly (number | string)[]) => {
      if (typeof shape[0] === 'number' && shape[0] !== -1) {
        throw new DistillError(
          `${what} has a fixed batch size ${shape[0]} (input shape ${dims(shape)}); distill feeds batches of any size. Re-export it with a dynamic batch axis.`,
          2,
        );
      }
    };
    // ---- image.onnx: pixel_values [B, 3, S, S] float32
    const px = meta(this.image, this.spec.inputs.pixels);
    if (px?.isTensor && px.shape?.length) {
      const sh = px.shape;
      const what = `${file('image.onnx')} input '${this.spec.inputs.pixels}'`;
      if (sh.length !== 4)
        throw new DistillError(`${what} has shape ${dims(sh)}; distill feeds [batch, 3, ${S}, ${S}] pixels.`, 2);
      if (px.type && px.type !== 'float32')
        throw new DistillError(
          `${what} takes ${px.type}; distill feeds float32 pixels. Re-export it with float32 inputs.`,
          2,
        );
      fixedBatch(what, sh);
      if (typeof sh[1] === 'number' && sh[1] !== 3)
        throw new DistillError(`${what} takes ${sh[1]} channels (shape ${dims(sh)}); distill feeds RGB (3).`, 2);
      const [h, w] = [sh[2], sh[3]];
      if ((typeof h === 'number' && h > 0 && h !== S) || (typeof w === 'number' && w > 0 && w !== S)) {
        throw new DistillError(
          `${what} takes ${h}x${w} images (shape ${dims(sh)}), but teacher.json says imageSize ${S}. Set "imageSize": ${h} in teacher.json.`,
          2,
        );
      }
    }
    // ---- text.onnx: input_ids, attention_mask [B, L] int64
    let L = 0;
    for (const name of [this.spec.inputs.ids, this.spec.inputs.mask]) {
      const m = meta(this.text, name);
      if (!m?.isTensor || !m.shape?.length) continue;
      const what = `${file('text.onnx')} input '${name}'`;
      if (m.shape.length !== 2)
        throw new DistillError(`${what} has shape ${dims(m.shape)}; distill feeds [batch, length] token ids.`, 2);
      if (m.type && m.type !== 'int64')
        throw new DistillError(
          `${what} takes ${m.type}; distill feeds int64 token ids. Re-export it with int64 inputs.`,
          2,
        );
      fixedBatch(what, m.shape);
      const len = m.shape[1];
      if (typeof len === 'number' && len > 0) {
        if (this.maxTextLength > len) {
          throw new DistillError(
            `${what} takes at most ${len} tokens (shape ${dims(m.shape)}), but teacher.json says maxTextLength ${this.maxTextLength}. Set "maxTextLength": ${len} in teacher.json.`,
            2,
          );
        }
        L = len;
      }
    }
    this.textLength = L;
    // ---- one tiny run of each model
    const first = (e: unknown) =>
      String((e as Error).message ?? e)
        .split('\n')[0]
        .slice(0, 300);
    let imageDim: number | undefined;
    try {
      const out = await this.image.run({
        [this.spec.inputs.pixels]: new o.Tensor('float32', new Float32Array(3 * S * S), [1, 3, S, S]),
      });
      imageDim = out[this.spec.outputs.image]?.dims.at(-1);
    } catch (e) {
      throw new DistillError(
        `${file('image.onnx')} fails on one ${S}x${S} image (teacher.json imageSize ${S}): ${first(e)}. ${fix}`,
        2,
      );
    }
    const len = L || this.maxTextLength;
    const pad = this.spec.padId ?? 0;
    const run = async (ids: number[]) =>
      this.text.run({
        [this.spec.inputs.ids]: new o.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, len]),
        [this.spec.inputs.mask]: new o.Tensor('int64', new BigInt64Array(len).fill(1n), [1, len]),
      });
    let textDim: number | undefined;
    try {
      textDim = (await run(new Array<number>(len).fill(pad)))[this.spec.outputs.text]?.dims.at(-1);
    } catch (e) {
      throw new DistillError(
        `${file('text.onnx')} fails on ${len} tokens (teacher.json maxTextLength ${this.maxTextLength}): ${first(e)}. Lower "maxTextLength" in teacher.json to the export's limit.`,
        2,
      );
    }
    if (vocabSize !== undefined) {
      try {
        await run([vocabSize - 1, ...new Array<number>(len - 1).fill(pad)]);
      } catch (e) {
        throw new DistillError(
          `${file('tokenizer.json')} has ${vocabSize} tokens, but ${file('text.onnx')} fails on token id ${vocabSize - 1}: ${first(e)}. ` +
            'The model has a smaller vocabulary: use the tokenizer.json exported with this model.',
          2,
        );
      }
    }
    if (imageDim !== undefined && textDim !== undefined && imageDim !== textDim) {
      throw new DistillError(
        `${file('image.onnx')} outputs ${imageDim}-d embeddings but ${file('text.onnx')} outputs ${textDim}-d: a teacher's towers must share one embedding space.`,
        2,
      );
    }
    if (imageDim !== undefined) this.checkDim([imageDim]);
  }

  fingerprint(): string {
    return this.fp;
  }

  /** Projected, un-normalised image embeddings (as the export computes them). */
  async imageEmbeddingsRaw(pixels: Float32Array, n: number): Promise<Float32Array> {
    const o = await ort();
    const S = this.spec.imageSize;
    if (pixels.length !== n * 3 * S * S)
      throw new DistillError(
        `Teacher ${this.name}: expected ${n} x 3 x ${S} x ${S} pixels, got ${pixels.length} values.`,
      );
    const r = await this.image.run({ [this.spec.inputs.pixels]: new o.Tensor('float32', pixels, [n, 3, S, S]) });
    const out = r[this.spec.outputs.image];
    if (!out)
      throw new DistillError(
        `${join(this.dir, 'image.onnx')} has no output '${this.spec.outputs.image}' (has ${Object.keys(r).join(', ')}).`,
      );
    this.checkDim(out.dims as number[]);
    return out.data as Float32Array;
  }

  /** Projected, un-normalised text embeddings from token ids and mask ([n, L] row-major). */
  async textEmbeddingsRaw(
    ids: ArrayLike<number>,
    mask: ArrayLike<number>,
    n: number,
    L: number,
  ): Promise<Float32Array> {
    const o = await ort();
    const big = (a: ArrayLike<number>) => BigInt64Array.from(Array.from(a, (v) => BigInt(Math.round(v))));
    const r = await this.text.run({
      [this.spec.inputs.ids]: new o.Tensor('int64', big(ids), [n, L]),
      [this.spec.inputs.mask]: new o.Tensor('int64', big(mask), [n, L]),
    });
    const out = r[this.spec.outputs.text];
    if (!out)
      throw new DistillError(
        `${join(this.dir, 'text.onnx')} has no output '${this.spec.outputs.text}' (has ${Object.keys(r).join(', ')}).`,
      );
    this.checkDim(out.dims as number[]);
    return out.data as Float32Array;
  }

  private checkDim(dims: number[]): void {
    const d = dims[dims.length - 1];
    if (this.dim && this.dim !== d)
      throw new DistillError(`Teacher ${this.name}: teacher.json says dim ${this.dim}, the model outputs ${d}.`);
    this.dim = d;
  }

  async encodeImages(pixels: Float32Array, n: number): Promise<Float32Array> {
    const raw = await this.imageEmbeddingsRaw(pixels, n);
    return l2NormalizeRows(raw, this.dim);
  }

  /** Tokenise (truncate to maxTextLength, pad with padId) and encode; rows are L2-normalised. */
  async encodeTexts(texts: string[]): Promise<Float32Array> {
    if (!this.tokenizer)
      throw new DistillError(`Teacher ${this.name} has no tokenizer.json in ${this.dir}: it cannot encode captions.`);
    const enc: number[][] = texts.map((t) =>
      Array.from(this.tokenizer!.encode(t).ids as ArrayLike<number>).slice(0, this.maxTextLength),
    );
    const L = this.textLength || Math.max(1, ...enc.map((e) => e.length));
    const ids = new Array<number>(texts.length * L).fill(this.spec.padId ?? 0);
    const mask = new Array<number>(texts.length * L).fill(0);
    enc.forEach((e, i) => e.forEach((id, j) => ((ids[i * L + j] = id), (mask[i * L + j] = 1))));
    const raw = await this.textEmbeddingsRaw(ids, mask, texts.length, L);
    return l2NormalizeRows(raw, this.dim);
  }

  async dispose(): Promise<void> {
    await this.image.release?.();
    await this.text.release?.();
  }
}
