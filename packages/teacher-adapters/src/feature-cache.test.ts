import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, type Dataset, type Teacher } from '@distill/core';
import { loadEmoji } from '@distill/data';
import { afterAll, describe, expect, it } from 'vitest';
import { extractTeacherFeatures } from './feature-cache.js';
import { readFeatureCache } from './feature-files.js';
import type { PrecomputedTeacher } from './teachers.js';

const tmp = mkdtempSync(join(tmpdir(), 'distill-feature-cache-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const log = createLogger({ level: 'warn' });

/** The embedded emoji benchmark cut to 3 images per split (64-px sprites: no image files to read). */
function tinyEmoji(): Dataset {
  const d = loadEmoji();
  const splits = Object.fromEntries(
    Object.entries(d.splits).map(([k, s]) => [
      k,
      { images: s.images.slice(0, 3), captions: s.captions.filter((c) => c.image < 3) },
    ]),
  );
  return { ...d, splits };
}

/** A 2-dim teacher: image row = (mean pixel, 1), text row = (length, 0); counts its calls. */
function fakeTeacher(fp = 'fake-v1') {
  const calls = { images: 0, texts: 0, disposed: 0 };
  const t: Teacher = {
    name: 'fake',
    dim: 2,
    preprocess: { resize: 64, crop: 64, mean: [0, 0, 0], std: [1, 1, 1] },
    maxTextLength: 16,
    fingerprint: () => fp,
    encodeImages: async (px, n) => {
      calls.images += n;
      const per = px.length / n;
      return Float32Array.from({ length: 2 * n }, (_, k) =>
        k % 2 ? 1 : px.subarray(((k / 2) | 0) * per, (((k / 2) | 0) + 1) * per).reduce((a, b) => a + b, 0) / per,
      );
    },
    encodeTexts: async (texts) => {
      calls.texts += texts.length;
      return Float32Array.from({ length: 2 * texts.length }, (_, k) => (k % 2 ? 0 : texts[(k / 2) | 0].length));
    },
    dispose: () => void calls.disposed++,
  };
  return { t, calls };
}

describe('extractTeacherFeatures', () => {
  it('runs the teacher once per image and caption, caches the features, and a second run reads them back', async () => {
    const ds = tinyEmoji();
    const first = fakeTeacher();
    const a = await extractTeacherFeatures(first.t, ds, { batchSize: 2, cacheDir: tmp }, log);
    const nImages = Object.values(ds.splits).reduce((n, s) => n + s.images.length, 0);
    const nTexts = Object.values(ds.splits).reduce((n, s) => n + s.captions.length, 0);
    expect([first.calls.images, first.calls.texts, first.calls.disposed]).toEqual([nImages, nTexts, 1]);
    expect(a.dim).toBe(2);
    expect(Array.from(a.splits.test.texts.subarray(0, 2))).toEqual([ds.splits.test.captions[0].text.length, 0]);
    expect(a.file && existsSync(a.file)).toBe(true);
    const cached = readFeatureCache(a.file!, a.fingerprint, ds);
    expect(cached.ok).toBe(true);

    const again = fakeTeacher();
    const b = await extractTeacherFeatures(again.t, ds, { batchSize: 2, cacheDir: tmp }, log);
    expect([again.calls.images, again.calls.texts]).toEqual([0, 0]); // from the cache
    expect(b.file).toBe(a.file);
    expect(Array.from(b.splits.val.images)).toEqual(Array.from(a.splits.val.images));

    // another teacher fingerprint or another device is another cache entry
    const other = fakeTeacher('fake-v2');
    expect((await extractTeacherFeatures(other.t, ds, { batchSize: 2, cacheDir: tmp }, log)).file).not.toBe(a.file);
    const gpu = fakeTeacher();
    expect(
      (await extractTeacherFeatures(gpu.t, ds, { batchSize: 2, cacheDir: tmp, device: 'webgpu' }, log)).file,
    ).not.toBe(a.file);
  });

  it('a features teacher is read from its store, not run or cached', async () => {
    const ds = tinyEmoji();
    const rows = (n: number) => new Float32Array(n * 4).fill(0.5);
    const store: PrecomputedTeacher = {
      name: 'features',
      precomputed: true,
      fingerprint: () => 'store-hash',
      features: (d) => ({
        dim: 4,
        splits: Object.fromEntries(
          Object.entries(d.splits).map(([k, s]) => [
            k,
            { images: rows(s.images.length), texts: rows(s.captions.length) },
          ]),
        ),
      }),
    };
    const f = await extractTeacherFeatures(store, ds, { batchSize: 2, cacheDir: tmp }, log);
    expect([f.name, f.dim, f.fingerprint, f.file]).toEqual(['features', 4, 'store-hash', undefined]);
    expect(f.train).toBe(f.splits.train);
  });
});
