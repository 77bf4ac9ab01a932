import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  atomicWriteFile,
  atomicWriteJson,
  DistillError,
  readJsonFile,
  readSafetensorsHeader,
  sha256,
  tensorChecksum,
  tf,
  type ImagePreprocess,
  type Teacher,
  encodeSafetensors,
  readSafetensors,
} from '@distill/core';
import {
  createStudentFromConfig,
  getStudentWeights,
  setStudentWeights,
  type DualEncoderStudent,
  type StudentConfig,
} from './student.js';
import { loadTokenizer } from './tokenizer.js';

/**
 * A trained dual encoder on disk, as distill writes it (a run's best student, or the embedded emoji
 * teacher): `student.json` (architecture), `model.safetensors` (weights, with a checksum verified on
 * load), `tokenizer.json`.
 */
export interface SavedStudentMeta {
  format: 'distill-student-v1';
  config: StudentConfig;
  /** Free-form provenance: command, seed, dataset, metrics. */
  provenance?: Record<string, unknown>;
}

export function saveStudent(dir: string, student: DualEncoderStudent, provenance?: Record<string, unknown>): void {
  if (!student.tokenizer) throw new DistillError('Cannot save a student without a tokenizer.');
  const weights = getStudentWeights(student);
  atomicWriteFile(join(dir, 'model.safetensors'), encodeSafetensors(weights, { checksum: tensorChecksum(weights) }));
  student.tokenizer.save(dir);
  const meta: SavedStudentMeta = { format: 'distill-student-v1', config: student.config, provenance };
  atomicWriteJson(join(dir, 'student.json'), meta);
}

export function loadStudent(dir: string): { student: DualEncoderStudent; meta: SavedStudentMeta } {
  const need = ['student.json', 'model.safetensors', 'tokenizer.json'];
  const missing = need.filter((f) => !existsSync(join(dir, f)));
  if (missing.length) {
    throw new DistillError(
      `${dir} is not a saved distill student: missing ${missing.join(', ')} (expected ${need.join(' + ')}).`,
    );
  }
  const meta = readJsonFile<SavedStudentMeta>(join(dir, 'student.json'));
  if (meta.format !== 'distill-student-v1')
    throw new DistillError(`${join(dir, 'student.json')}: unknown format '${String(meta.format)}'.`);
  const tokenizer = loadTokenizer(join(dir, 'tokenizer.json'), { maxLength: meta.config.maxLength });
  const student = createStudentFromConfig(meta.config, { tokenizer });
  const weights: Record<string, { shape: number[]; data: Float32Array }> = {};
  const file = join(dir, 'model.safetensors');
  const bytes = readFileSync(file);
  const { metadata } = readSafetensorsHeader(bytes, file);
  for (const [k, t] of readSafetensors(bytes)) weights[k] = { shape: t.shape, data: t.data };
  // Weights saved by this version carry a checksum (older saves and hand-made folders do not).
  if (typeof metadata.checksum === 'string' && tensorChecksum(weights) !== metadata.checksum) {
    throw new DistillError(
      `${file} is corrupt: its weights do not match their checksum. Re-create the saved student (or re-run its training).`,
    );
  }
  setStudentWeights(student, weights);
  return { student, meta };
}

/**
 * A saved distill dual encoder used as a frozen teacher (the embedded default teacher of the emoji
 * benchmark is one). Its features go through the same cache as ONNX teachers.
 */
export class SavedStudentTeacher implements Teacher {
  readonly name: string;
  readonly dim: number;
  readonly preprocess: ImagePreprocess;
  readonly maxTextLength: number;
  private readonly fp: string;

  constructor(
    readonly dir: string,
    readonly student: DualEncoderStudent,
    name = 'saved-student',
  ) {
    this.name = name;
    this.dim = student.embedDim;
    this.preprocess = student.preprocess;
    this.maxTextLength = student.config.maxLength;
    this.fp = sha256(
      Buffer.concat(['student.json', 'model.safetensors', 'tokenizer.json'].map((f) => readFileSync(join(dir, f)))),
    );
  }

  static load(dir: string, name?: string): SavedStudentTeacher {
    return new SavedStudentTeacher(dir, loadStudent(dir).student, name);
  }

  fingerprint(): string {
    return this.fp;
  }

  async encodeImages(pixels: Float32Array, n: number): Promise<Float32Array> {
    const { crop } = this.preprocess;
    const out = tf.tidy(() => this.student.encodeImage(tf.tensor4d(pixels, [n, 3, crop, crop]), false));
    const data = (await out.data()) as Float32Array;
    out.dispose();
    return data;
  }

  async encodeTexts(texts: string[]): Promise<Float32Array> {
    const tok = this.student.tokenize(texts);
    const out = tf.tidy(() => this.student.encodeText(tok, false));
    const data = (await out.data()) as Float32Array;
    tf.dispose([out, tok.ids, tok.mask]);
    return data;
  }

  dispose(): void {
    this.student.dispose();
  }
}
