import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { OnnxTeacher } from './onnx-teacher.js';
import { runOnnxTeacherParity } from './parity.js';

/** In-repo copy of shared/parity/hf-tiny/clip (config, image.onnx, text.onnx, reference.json). */
const clip = fileURLToPath(new URL('./fixtures/hf-tiny/clip', import.meta.url));

describe('ONNX teacher parity (fixtures/hf-tiny/clip)', () => {
  it('the clip preset machinery reproduces the PyTorch embeddings to 1e-4', async () => {
    const d = await runOnnxTeacherParity(clip);
    expect(d.image_embeds).toBeLessThan(1e-4);
    expect(d.text_embeds).toBeLessThan(1e-4);
  });

  it('encodeImages L2-normalises the projected embeddings', async () => {
    const t = await OnnxTeacher.load(clip, {
      preset: 'clip',
      requireTokenizer: false,
      threads: 1,
      spec: { imageSize: 16, maxTextLength: 12 },
    });
    const e = await t.encodeImages(new Float32Array(2 * 3 * 16 * 16).fill(0.3), 2);
    expect(t.dim).toBe(16);
    expect(Math.hypot(...e.subarray(0, 16))).toBeCloseTo(1, 5);
    await t.dispose();
  });
});

describe('teacher folder errors', () => {
  it('a missing folder or file says what layout is expected and where to get one', async () => {
    await expect(OnnxTeacher.load('/nonexistent/beit3', { preset: 'beit3' })).rejects.toThrow(
      /Teacher folder not found.*image\.onnx, text\.onnx, tokenizer\.json.*tools\/export\/export_beit3\.py.*emoji teacher/,
    );
    await expect(OnnxTeacher.load(clip, { preset: 'clip' })).rejects.toThrow(/is missing tokenizer\.json/);
    await expect(OnnxTeacher.load(clip, { preset: 'nope' })).rejects.toThrow(/Unknown teacher preset 'nope'/);
  });
});
