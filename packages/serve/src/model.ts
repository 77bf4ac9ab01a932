/**
 * An exported model folder (the ONNX teacher contract of docs/teachers.md) run with onnxruntime-node:
 * captions -> L2-normalised text embeddings, preprocessed pixels -> L2-normalised image embeddings.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DistillError, l2NormalizeRows, OnnxRunner, readJsonFile, sha256, type ImagePreprocess } from '@distill/core';
import { loadTokenizer, type TextTokenizer } from '@distill/student-architectures';
import { type TeacherSpec } from '@distill/teacher-adapters';

/** The teacher-folder contract (teacher.json): an exported model is a teacher folder. */
export type ModelSpec = TeacherSpec;

export const MODEL_FILES = ['image.onnx', 'text.onnx', 'tokenizer.json', 'teacher.json'] as const;

/** sha256 of the files that define a model's embeddings (which model made an index). */
export function modelHash(dir: string): string {
  const missing = MODEL_FILES.filter((f) => !existsSync(join(dir, f)));
  if (missing.length) throw new DistillError(`${dir} is not an exported model: missing ${missing.join(', ')}. Create one with \`distill export <run-dir>/best --out ${dir}\`.`, 2);
  return sha256(Buffer.concat(MODEL_FILES.map((f) => readFileSync(join(dir, f)))));
}

export class OnnxModel {
  private constructor(
    readonly dir: string,
    readonly spec: ModelSpec,
    readonly hash: string,
    private readonly image: OnnxRunner,
    private readonly text: OnnxRunner,
    private readonly tokenizer: TextTokenizer,
  ) {}

  get dim(): number {
    return this.spec.dim;
  }

  get preprocess(): ImagePreprocess {
    return { resize: this.spec.resize ?? this.spec.imageSize, crop: this.spec.imageSize, mean: this.spec.mean, std: this.spec.std };
  }

  /** `spec` overrides teacher.json (the export checks parity before it writes teacher.json). */
  static async load(dir: string, opts: { spec?: Partial<ModelSpec>; threads?: number } = {}): Promise<OnnxModel> {
    const need = ['image.onnx', 'text.onnx', 'tokenizer.json', ...(opts.spec ? [] : ['teacher.json'])];
    const missing = need.filter((f) => !existsSync(join(dir, f)));
    if (missing.length) throw new DistillError(`${dir} is not an exported model: missing ${missing.join(', ')}. Create one with \`distill export <run-dir>/best --out <dir>\`.`, 2);
    const defaults: ModelSpec = {
      name: 'exported',
      imageSize: 0,
      mean: [0, 0, 0],
      std: [1, 1, 1],
      maxTextLength: 0,
      dim: 0,
      inputs: { pixels: 'pixel_values', ids: 'input_ids', mask: 'attention_mask' },
      outputs: { image: 'image_embeds', text: 'text_embeds' },
    };
    const spec: ModelSpec = { ...defaults, ...(existsSync(join(dir, 'teacher.json')) ? readJsonFile<Partial<ModelSpec>>(join(dir, 'teacher.json')) : {}), ...opts.spec };
    if (!(spec.imageSize > 0 && spec.maxTextLength > 0)) throw new DistillError(`${join(dir, 'teacher.json')} needs positive imageSize and maxTextLength.`, 2);
    const session = async (f: string) => {
      try {
        return await OnnxRunner.create(new Uint8Array(readFileSync(join(dir, f))), { threads: opts.threads });
      } catch (e) {
        throw new DistillError(`onnxruntime cannot load ${join(dir, f)}: ${String((e as Error).message).split('\n')[0].slice(0, 300)}. Re-export the model.`, 2);
      }
    };
    const tokenizer = loadTokenizer(join(dir, 'tokenizer.json'), { maxLength: spec.maxTextLength });
    const hash = opts.spec ? '' : modelHash(dir);
    return new OnnxModel(dir, spec, hash, await session('image.onnx'), await session('text.onnx'), tokenizer);
  }

  /** pixels: NCHW float32 [n, 3, S, S], preprocessed with `preprocess`. */
  async encodeImages(pixels: Float32Array, n: number): Promise<Float32Array> {
    const S = this.spec.imageSize;
    if (pixels.length !== n * 3 * S * S) throw new DistillError(`Expected ${n} x 3 x ${S} x ${S} pixels, got ${pixels.length} values.`);
    const [out] = await this.image.run({ [this.spec.inputs.pixels]: { data: pixels, dims: [n, 3, S, S] } }, [this.spec.outputs.image]);
    return this.checked(out, n);
  }

  async encodeTexts(texts: string[]): Promise<Float32Array> {
    const { ids, mask } = this.tokenizer.encodeArrays(texts);
    const L = this.spec.maxTextLength;
    const big = (a: Int32Array) => BigInt64Array.from(a, (v) => BigInt(v));
    const [out] = await this.text.run(
      { [this.spec.inputs.ids]: { data: big(ids), dims: [texts.length, L] }, [this.spec.inputs.mask]: { data: big(mask), dims: [texts.length, L] } },
      [this.spec.outputs.text],
    );
    return this.checked(out, texts.length);
  }

  private checked(out: Float32Array, n: number): Float32Array {
    const d = out.length / n;
    if (this.spec.dim && d !== this.spec.dim) throw new DistillError(`${this.dir}: teacher.json says dim ${this.spec.dim}, the model outputs ${d}.`, 2);
    this.spec.dim = d;
    return l2NormalizeRows(out, d);
  }

  async dispose(): Promise<void> {
    await this.image.session.release?.();
    await this.text.session.release?.();
  }
}
