/**
 * An exported model folder (the ONNX teacher contract of docs/teachers.md): a teacher folder, so it is run
 * by teacher-adapters' `OnnxTeacher` (one runner of the contract: sessions, input checks, a tiny run of each
 * model, L2-normalised embeddings); serve adds the student's own tokenizer (captions padded to
 * maxTextLength, as in training), the defaults of an export and the model hash of an index.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DistillError, l2NormalizeRows, readJsonFile, sha256, type ImagePreprocess } from '@distill/core';
import { loadTokenizer, type TextTokenizer } from '@distill/student-architectures';
import { OnnxTeacher, TEACHER_IO, type TeacherSpec } from '@distill/teacher-adapters';

/** The teacher-folder contract (teacher.json): an exported model is a teacher folder. */
export type ModelSpec = TeacherSpec;

export const MODEL_FILES = ['image.onnx', 'text.onnx', 'tokenizer.json', 'teacher.json'] as const;

/** sha256 of the files that define a model's embeddings (which model made an index). */
export function modelHash(dir: string): string {
  const missing = MODEL_FILES.filter((f) => !existsSync(join(dir, f)));
  if (missing.length)
    throw new DistillError(
      `${dir} is not an exported model: missing ${missing.join(', ')}. Create one with \`distill export <run-dir> --out ${dir}\`.`,
      2,
    );
  return sha256(Buffer.concat(MODEL_FILES.map((f) => readFileSync(join(dir, f)))));
}

/**
 * A text cut to what a model of `maxTokens` tokens can read, before the tokenizer sees it (a 30,000-character
 * query overflowed the stack in tokenization): runs of white space become one space (the tokenizer splits
 * on them and drops them), then at most 101 characters per token are kept. A token covers at most 100
 * characters (longer words are one [UNK]), so ordinary text tokenizes exactly as before; the tokenizer
 * truncates to maxTokens anyway.
 */
export function cutText(text: string, maxTokens: number): string {
  const limit = Math.max(1, maxTokens) * 101;
  if (text.length <= limit) return text;
  let out = '';
  let space = false;
  for (let i = 0; i < text.length && out.length < limit; i++) {
    const ch = text[i];
    if (ch === ' ' || ch === '\n' || ch === '\t' || ch === '\r' || ch === '\f' || ch === '\v') {
      if (!space) out += ' ';
      space = true;
    } else {
      out += ch;
      space = false;
    }
  }
  return out;
}

export class OnnxModel {
  private constructor(
    readonly dir: string,
    readonly spec: ModelSpec,
    readonly hash: string,
    private readonly runner: OnnxTeacher,
    private readonly tokenizer: TextTokenizer,
  ) {}

  get dim(): number {
    return this.runner.dim;
  }

  get preprocess(): ImagePreprocess {
    return this.runner.preprocess;
  }

  /** `spec` overrides teacher.json (the export checks parity before it writes teacher.json). */
  static async load(dir: string, opts: { spec?: Partial<ModelSpec>; threads?: number } = {}): Promise<OnnxModel> {
    const need = ['image.onnx', 'text.onnx', 'tokenizer.json', ...(opts.spec ? [] : ['teacher.json'])];
    const missing = need.filter((f) => !existsSync(join(dir, f)));
    if (missing.length)
      throw new DistillError(
        `${dir} is not an exported model: missing ${missing.join(', ')}. Create one with \`distill export <run-dir> --out <dir>\`.`,
        2,
      );
    const defaults: ModelSpec = {
      name: 'exported',
      imageSize: 0,
      mean: [0, 0, 0],
      std: [1, 1, 1],
      maxTextLength: 0,
      dim: 0,
      ...TEACHER_IO,
    };
    const spec: ModelSpec = {
      ...defaults,
      ...(existsSync(join(dir, 'teacher.json')) ? readJsonFile<Partial<ModelSpec>>(join(dir, 'teacher.json')) : {}),
      ...opts.spec,
    };
    if (!(spec.imageSize > 0 && spec.maxTextLength > 0))
      throw new DistillError(`${join(dir, 'teacher.json')} needs positive imageSize and maxTextLength.`, 2);
    const tokenizer = loadTokenizer(join(dir, 'tokenizer.json'), { maxLength: spec.maxTextLength });
    const hash = opts.spec ? '' : modelHash(dir);
    return new OnnxModel(dir, spec, hash, await OnnxTeacher.load(dir, { spec, threads: opts.threads }), tokenizer);
  }

  /** pixels: NCHW float32 [n, 3, S, S], preprocessed with `preprocess`. */
  async encodeImages(pixels: Float32Array, n: number): Promise<Float32Array> {
    return this.runner.encodeImages(pixels, n);
  }

  /** Captions through the student's tokenizer (padded to maxTextLength), L2-normalised rows. */
  async encodeTexts(texts: string[]): Promise<Float32Array> {
    const { ids, mask } = this.tokenizer.encodeArrays(texts.map((t) => cutText(t, this.spec.maxTextLength)));
    const raw = await this.runner.textEmbeddingsRaw(ids, mask, texts.length, this.spec.maxTextLength);
    return l2NormalizeRows(raw, this.runner.dim);
  }

  async dispose(): Promise<void> {
    await this.runner.dispose();
  }
}
