import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initRuntime, tf } from '@distill/core';
import {
  createStudent,
  createStudentFromConfig,
  getStudentWeights,
  loadTokenizer,
  setStudentWeights,
  trainWordPieceTokenizer,
  type DualEncoderStudent,
} from '@distill/student-architectures';
import { loadStudent, saveStudent, SavedStudentTeacher } from './saved-student.js';

const captions = [
  'grinning face with big eyes',
  'red heart',
  'cat face with tears of joy',
  'smiling face with sunglasses',
  'thumbs up',
];

beforeAll(async () => {
  await initRuntime('wasm', { quiet: true });
});

/** A tiny student whose weights are not any seed's initialisation (so a load that does nothing cannot pass). */
function trainedLikeStudent(): DualEncoderStudent {
  const s = createStudent('vit-bert', {
    embedDim: 16,
    seed: 5,
    tokenizer: loadTokenizer(trainWordPieceTokenizer(captions, { vocabSize: 120 }), { maxLength: 12 }),
    maxLength: 12,
  });
  const w = getStudentWeights(s);
  let k = 0;
  for (const t of Object.values(w)) for (let i = 0; i < t.data.length; i++) t.data[i] += Math.sin(++k) * 0.05;
  setStudentWeights(s, w);
  return s;
}

function embed(s: DualEncoderStudent) {
  const S = s.preprocess.crop;
  return tf.tidy(() => {
    const px = tf.randomNormal([2, 3, S, S], 0, 1, 'float32', 11) as tf.Tensor4D;
    const tok = s.tokenize(captions.slice(0, 3));
    return {
      image: Array.from(s.encodeImage(px, false).dataSync()),
      text: Array.from(s.encodeText(tok, false).dataSync()),
      px: Float32Array.from(px.dataSync()),
    };
  });
}

describe('saved students', () => {
  it('saveStudent -> loadStudent: identical weights, config, tokenizer and embeddings', () => {
    const dir = mkdtempSync(join(tmpdir(), 'saved-'));
    const s = trainedLikeStudent();
    saveStudent(dir, s, { label: 'student', epoch: 3 });
    const { student: back, meta } = loadStudent(dir);
    expect(meta.format).toBe('distill-student-v1');
    expect(meta.provenance).toEqual({ label: 'student', epoch: 3 });
    expect(back.config).toEqual(s.config);
    const a = getStudentWeights(s);
    const b = getStudentWeights(back);
    expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
    for (const k of Object.keys(a)) {
      expect(b[k].shape, k).toEqual(a[k].shape);
      const bytes = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
      expect(bytes(b[k].data).equals(bytes(a[k].data)), k).toBe(true);
    }
    // the weights came from the file: a student built from the same config differs
    const fresh = getStudentWeights(createStudentFromConfig(meta.config, { tokenizer: back.tokenizer }));
    expect(Object.keys(a).some((k) => a[k].data.some((v, i) => v !== fresh[k].data[i]))).toBe(true);
    expect(back.tokenize(['red heart face']).ids.arraySync()).toEqual(s.tokenize(['red heart face']).ids.arraySync());
    const e1 = embed(s);
    const e2 = embed(back);
    expect(e2.image).toEqual(e1.image);
    expect(e2.text).toEqual(e1.text);
    s.dispose();
    back.dispose();
  });

  it('a saved student used as a teacher encodes exactly as the student did; its fingerprint follows its files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'saved-'));
    const s = trainedLikeStudent();
    saveStudent(dir, s);
    const t = SavedStudentTeacher.load(dir, 'mine');
    expect(t.name).toBe('mine');
    expect(t.dim).toBe(16);
    expect(t.maxTextLength).toBe(12);
    expect(t.preprocess).toEqual(s.preprocess);
    const e = embed(s);
    expect(Array.from(await t.encodeImages(e.px, 2))).toEqual(e.image);
    expect(Array.from(await t.encodeTexts(captions.slice(0, 3)))).toEqual(e.text);
    const fp = t.fingerprint();
    expect(SavedStudentTeacher.load(dir).fingerprint()).toBe(fp);
    const w = getStudentWeights(s);
    const first = Object.keys(w)[0];
    w[first].data[0] += 1e-3;
    setStudentWeights(s, w);
    saveStudent(dir, s);
    expect(SavedStudentTeacher.load(dir).fingerprint()).not.toBe(fp);
    t.dispose();
    s.dispose();
  });

  it('a folder that is not a saved student is an error naming what is missing or wrong', () => {
    const dir = mkdtempSync(join(tmpdir(), 'saved-'));
    const s = trainedLikeStudent();
    saveStudent(dir, s);
    s.dispose();
    const meta = readFileSync(join(dir, 'student.json'), 'utf8');
    writeFileSync(join(dir, 'student.json'), meta.replace('distill-student-v1', 'other-v9'));
    expect(() => loadStudent(dir)).toThrow(/student\.json: unknown format 'other-v9'/);
    writeFileSync(join(dir, 'student.json'), meta);
    const model = readFileSync(join(dir, 'model.safetensors'));
    model[model.length - 1] ^= 0x01;
    writeFileSync(join(dir, 'model.safetensors'), model);
    expect(() => loadStudent(dir)).toThrow(
      `${join(dir, 'model.safetensors')} is corrupt: its weights do not match their checksum. Re-create the saved student (or re-run its training).`,
    );
    rmSync(join(dir, 'model.safetensors'));
    expect(() => loadStudent(dir)).toThrow(
      `${dir} is not a saved distill student: missing model.safetensors (expected student.json + model.safetensors + tokenizer.json).`,
    );
  });
});
