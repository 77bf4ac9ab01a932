import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initRuntime, OnnxRunner } from '@distill/core';
import {
  createStudent,
  saveStudent,
  trainWordPieceTokenizer,
  type DualEncoderStudent,
} from '@distill/student-architectures';
import { OnnxTeacher } from '@distill/teacher-adapters';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  checkParity,
  exportQuantized,
  exportStudent,
  PARITY_TEXTS,
  PARITY_TOLERANCE,
  resolveStudentDir,
  towerModel,
} from './export.js';
import { OnnxModel } from './model.js';

const captions = [
  'grinning face with big eyes',
  'red heart',
  'cat face with tears of joy',
  'smiling face with sunglasses',
  'thumbs up',
  ...PARITY_TEXTS,
];
const tokenizer = trainWordPieceTokenizer(captions, { vocabSize: 150 });

/** A random-weight student of `pair` saved in a temp folder (export does not care whether it was trained). */
function savedStudent(pair: string, seed = 1): { dir: string; student: DualEncoderStudent } {
  // a glove text tower reads the word-level GloVe tokenizer (createStudent gives it one)
  const student = createStudent(pair, {
    preset: 'tiny',
    embedDim: 24,
    seed,
    tokenizer: pair.endsWith('-glove') ? undefined : tokenizer,
    maxLength: 12,
  });
  const dir = mkdtempSync(join(tmpdir(), `distill-export-${pair}-`));
  saveStudent(dir, student, { test: true });
  return { dir, student };
}

beforeAll(async () => {
  await initRuntime('auto', { quiet: true });
});

describe('distill export: ONNX towers with a dynamic batch', () => {
  // the four tower graphs, DeiT's second token / ALBERT's shared layers, and the frozen trunk and word table as constants
  for (const pair of ['vit-bert', 'resnet-textcnn', 'deit-albert', 'mobilenet-bert', 'mobilenet-glove']) {
    it(`${pair}: onnxruntime reproduces distill's forward within ${PARITY_TOLERANCE} at batch 1, 3 and 7`, async () => {
      const { dir, student } = savedStudent(pair);
      const out = join(dir, 'onnx');
      const r = await exportStudent(dir, out);
      expect(r.files).toEqual(['image.onnx', 'text.onnx', 'tokenizer.json', 'teacher.json']);
      expect(r.parity.image).toBeLessThanOrEqual(PARITY_TOLERANCE);
      expect(r.parity.text).toBeLessThanOrEqual(PARITY_TOLERANCE);
      const model = await OnnxModel.load(out, { threads: 1 });
      try {
        // other batch sizes than the export's own check: one model file serves any batch
        const p = await checkParity(student, model, [3, 7]);
        expect(p.reference).toBe('tfjs');
        expect(Math.max(p.image, p.text)).toBeLessThanOrEqual(PARITY_TOLERANCE);
        // the reference of students too large for tfjs-wasm: the onnx engine's own inference graph
        const e = await checkParity(student, model, [2], 'onnx-engine');
        expect(Math.max(e.image, e.text)).toBeLessThanOrEqual(PARITY_TOLERANCE);
        expect(model.hash).toBe(r.hash);
      } finally {
        await model.dispose();
        student.dispose();
      }
      const spec = JSON.parse(readFileSync(join(out, 'teacher.json'), 'utf8'));
      expect(spec).toMatchObject({
        imageSize: student.preprocess.crop, // 64, and 32 for mobilenet-glove's tiny
        maxTextLength: 12,
        dim: 24,
        inputs: { pixels: 'pixel_values', ids: 'input_ids', mask: 'attention_mask' },
      });
    });
  }

  it('declares a symbolic batch: the inputs and outputs have dim_param "batch"', async () => {
    const { student } = savedStudent('vit-bert');
    const runner = await OnnxRunner.create(towerModel(student, 'text'), { threads: 1 });
    const meta = (runner.session as unknown as { inputMetadata: { name: string; shape: (number | string)[] }[] })
      .inputMetadata;
    expect(meta.map((m) => [m.name, m.shape])).toEqual([
      ['input_ids', ['batch', 12]],
      ['attention_mask', ['batch', 12]],
    ]);
    await runner.session.release();
    student.dispose();
  });

  it("the export is a teacher folder: OnnxTeacher (--teacher clip --teacher-model <out>) gives the student's embeddings", async () => {
    const { dir, student } = savedStudent('vit-bert', 5);
    const out = join(dir, 'onnx');
    await exportStudent(dir, out);
    const teacher = await OnnxTeacher.load(out, { preset: 'clip', threads: 1 });
    try {
      expect(teacher.dim).toBe(24);
      expect(teacher.preprocess).toEqual(student.preprocess);
      const texts = captions.slice(0, 5); // within maxLength (OnnxTeacher truncates without keeping [SEP])
      const model = await OnnxModel.load(out, { threads: 1 });
      const ours = await model.encodeTexts(texts);
      const theirs = await teacher.encodeTexts(texts);
      let d = 0;
      for (let i = 0; i < ours.length; i++) d = Math.max(d, Math.abs(ours[i] - theirs[i]));
      expect(d).toBeLessThanOrEqual(PARITY_TOLERANCE);
      const px = new Float32Array(2 * 3 * 64 * 64).map((_, i) => Math.sin(i));
      const a = await model.encodeImages(px, 2);
      const b = await teacher.encodeImages(px, 2);
      expect(Math.max(...a.map((v, i) => Math.abs(v - b[i])))).toBeLessThanOrEqual(PARITY_TOLERANCE);
      await model.dispose();
    } finally {
      await teacher.dispose();
      student.dispose();
    }
  });

  it('--quantize int8: int8 Gemm weights, a smaller file, embeddings within 1e-2 of float32, still a teacher folder', async () => {
    const { dir, student } = savedStudent('vit-bert', 7);
    student.dispose();
    const out = join(dir, 'onnx');
    const f = await exportStudent(dir, out);
    const q = await exportQuantized(dir, out, join(dir, 'onnx-int8'));
    expect(q.bytes.image).toBeLessThan(f.bytes.image * 0.6);
    expect(q.hash).not.toBe(f.hash);
    expect(q.maxDiff.image).toBeGreaterThan(0); // it did change the weights
    expect(Math.max(q.maxDiff.image, q.maxDiff.text)).toBeLessThan(1e-2);
    expect(JSON.parse(readFileSync(join(dir, 'onnx-int8', 'teacher.json'), 'utf8'))).toMatchObject({
      quantized: 'int8',
      dim: 24,
    });
    const teacher = await OnnxTeacher.load(join(dir, 'onnx-int8'), { preset: 'clip', threads: 1 });
    expect(teacher.dim).toBe(24);
    await teacher.dispose();
  });

  it('refuses what is not a saved student, and a non-empty folder that is not an export', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'distill-export-none-'));
    expect(() => resolveStudentDir(empty)).toThrow(/holds no saved student/);
    expect(() => resolveStudentDir(join(empty, 'missing'))).toThrow(/not found/);
    const { dir, student } = savedStudent('vit-bert');
    student.dispose();
    // a run folder of an experiment: the distilled student, not the no-teacher baseline
    const run = mkdtempSync(join(tmpdir(), 'distill-export-run-'));
    for (const sub of ['student', 'baseline'])
      saveStudent(
        join(run, sub, 'best'),
        createStudent('vit-bert', { preset: 'tiny', embedDim: 8, seed: 0, tokenizer, maxLength: 12 }),
      );
    expect(resolveStudentDir(run)).toBe(join(run, 'student', 'best'));
    const two = mkdtempSync(join(tmpdir(), 'distill-export-two-'));
    for (const sub of ['a', 'b'])
      saveStudent(
        join(two, sub, 'best'),
        createStudent('vit-bert', { preset: 'tiny', embedDim: 8, seed: 0, tokenizer, maxLength: 12 }),
      );
    expect(() => resolveStudentDir(two)).toThrow(/holds 2 trained students/);
    const busy = mkdtempSync(join(tmpdir(), 'distill-export-busy-'));
    writeFileSync(join(busy, 'notes.txt'), 'mine');
    await expect(exportStudent(dir, busy)).rejects.toThrow(/not empty/);
    expect(existsSync(join(busy, 'image.onnx'))).toBe(false);
  });
});
