import { initRuntime, tf } from '@distill/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxStudentEngine } from './onnx-engine.js';
import { createStudent, type DualEncoderStudent } from './student.js';

/**
 * A caption's embedding must not depend on how far its batch is padded: the trainer cuts each batch
 * to its longest caption, the tokenizer pads to maxLength, and the onnx engine pads to a length
 * bucket, so the same caption is seen at many padded lengths. Padded positions carry a junk id (not
 * the pad id), so only the mask can hide them.
 */

beforeAll(async () => {
  await initRuntime('cpu', { quiet: true });
});

const VOCAB = 300;
const JUNK = 123; // id at padded positions
const short = [2, 17, 45, 99, 250, 3]; // the caption under test: 6 tokens
const long = Array.from({ length: 21 }, (_, i) => (i * 53 + 11) % VOCAB); // a longer caption: 21 tokens

/** ids / mask [B, L] for captions padded to L with JUNK. */
function batchOf(captions: number[][], L: number): { ids: Int32Array; mask: Int32Array } {
  const ids = new Int32Array(captions.length * L).fill(JUNK);
  const mask = new Int32Array(captions.length * L);
  captions.forEach((c, b) =>
    c.forEach((id, t) => {
      ids[b * L + t] = id;
      mask[b * L + t] = 1;
    }),
  );
  return { ids, mask };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const D = 16;
// one pair per text tower: bert, albert, textcnn (kernel widths 2, 3, 4: the 'same' padding reaches past the caption's end)
const PAIRS = ['vit-bert', 'deit-albert', 'vit-textcnn'];

describe('a caption embeds the same whatever its batch is padded to', () => {
  const students = new Map<string, DualEncoderStudent>();
  const get = (pair: string) => {
    let s = students.get(pair);
    if (!s) {
      s = createStudent(pair, {
        preset: 'tiny',
        embedDim: D,
        seed: 5,
        vocabSize: VOCAB,
        maxLength: 30,
        overrides: { image: { imageSize: 32 } },
      });
      students.set(pair, s);
    }
    return s;
  };
  afterAll(() => students.forEach((s) => s.dispose()));

  const tfText = (s: DualEncoderStudent, captions: number[][], L: number): Float32Array =>
    tf.tidy(() => {
      const { ids, mask } = batchOf(captions, L);
      return s
        .encodeText(
          {
            ids: tf.tensor2d(ids, [captions.length, L], 'int32'),
            mask: tf.tensor2d(mask, [captions.length, L], 'int32'),
          },
          false,
        )
        .dataSync() as Float32Array;
    });

  for (const pair of PAIRS) {
    it(`${pair} (tfjs): alone, padded to 30, and beside a 21-token caption (either row)`, () => {
      const s = get(pair);
      const alone = tfText(s, [short], short.length);
      expect(Math.hypot(...alone)).toBeCloseTo(1, 5);
      expect(maxAbsDiff(tfText(s, [short], 30), alone)).toBeLessThan(1e-6);
      const pair2 = tfText(s, [short, long], long.length);
      expect(maxAbsDiff(pair2.subarray(0, D), alone)).toBeLessThan(1e-6);
      const swapped = tfText(s, [long, short], long.length);
      expect(maxAbsDiff(swapped.subarray(D, 2 * D), alone)).toBeLessThan(1e-6);
      // and the long caption does differ from the short one (the towers are not constant)
      expect(maxAbsDiff(pair2.subarray(D, 2 * D), alone)).toBeGreaterThan(1e-2);
    });

    it(`${pair} (onnx engine): alone (padded to 8) and beside a 21-token caption (padded to 24)`, async () => {
      const s = get(pair);
      const S = s.preprocess.crop;
      const engine = new OnnxStudentEngine(s, { threads: 1 });
      try {
        const px = (B: number) => Float32Array.from({ length: B * 3 * S * S }, (_, i) => Math.sin(i * 0.37));
        const a = batchOf([short], short.length);
        const alone = (await engine.forward(px(1), a.ids, a.mask, 1, short.length, { training: false })).text;
        const b = batchOf([long, short], long.length);
        const both = (await engine.forward(px(2), b.ids, b.mask, 2, long.length, { training: false })).text;
        expect(engine.compiledShapes).toBe(2); // two padded lengths really ran
        expect(maxAbsDiff(both.subarray(D, 2 * D), alone)).toBeLessThan(1e-6);
        // the engine agrees with the tfjs tower on the unpadded caption
        expect(maxAbsDiff(alone, tfText(s, [short], short.length))).toBeLessThan(1e-5);
      } finally {
        await engine.release();
      }
    });
  }
});
