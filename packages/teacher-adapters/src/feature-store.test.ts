import { mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Dataset } from '@distill/core';
import { atomicWriteFile, tensorChecksum, writeNpy, encodeSafetensors } from '@distill/core';
import { loadFeatureStore } from './feature-store.js';

// 2 images, 3 captions (image 0 has two), dim 2
const dataset: Dataset = {
  name: 'toy',
  imageRoot: '.',
  manifestHash: 'x',
  splits: {
    train: {
      images: [
        { id: 'a', path: 'a.png' },
        { id: 'b', path: 'b.png' },
      ],
      captions: [
        { text: 'a1', image: 0 },
        { text: 'a2', image: 0 },
        { text: 'b1', image: 1 },
      ],
    },
  },
};

describe('features teacher (precomputed feature store)', () => {
  it('reads official-style rows (one image row per caption) and de-duplicates them, normalised', () => {
    const dir = mkdtempSync(join(tmpdir(), 'feats-'));
    writeNpy(join(dir, 'train.image.npy'), Float32Array.from([3, 4, 3, 4, 0, 2]), [3, 2]);
    writeNpy(join(dir, 'train.text.npy'), Float32Array.from([1, 0, 0, 5, 1, 1]), [3, 2]);
    const s = loadFeatureStore(dir, dataset);
    expect(s.dim).toBe(2);
    expect(Array.from(s.splits.train.images)).toEqual([0.6000000238418579, 0.800000011920929, 0, 1]);
    expect(s.splits.train.texts[3]).toBe(1);
  });

  it('round-trips the safetensors feature files distill writes', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'feats-')), 'f.safetensors');
    const images = Float32Array.from([1, 0, 0, 1]);
    const texts = Float32Array.from([1, 0, 0.6, 0.8, 0, 1]);
    atomicWriteFile(
      file,
      encodeSafetensors({
        'train/images': { shape: [2, 2], data: images },
        'train/texts': { shape: [3, 2], data: texts },
      }),
    );
    const s = loadFeatureStore(file, dataset);
    expect(Array.from(s.splits.train.images)).toEqual(Array.from(images));
    expect(Array.from(s.splits.train.texts)).toEqual(Array.from(texts));
  });

  it("verifies a checksummed feature file (distill's cache format): a flipped bit or a cut file is an error naming it", () => {
    const file = join(mkdtempSync(join(tmpdir(), 'feats-')), 'cache.safetensors');
    const tensors = {
      'train/images': { shape: [2, 2], data: Float32Array.from([1, 0, 0, 1]) },
      'train/texts': { shape: [3, 2], data: Float32Array.from([1, 0, 0.6, 0.8, 0, 1]) },
    };
    const state = JSON.stringify({ key: 'k', dim: 2 });
    atomicWriteFile(
      file,
      encodeSafetensors(tensors, { format: 'distill-checkpoint-v1', state, checksum: tensorChecksum(tensors, state) }),
    );
    expect(loadFeatureStore(file, dataset).splits.train.texts[3]).toBeCloseTo(0.8, 6);
    const good = readFileSync(file);
    const flipped = Buffer.from(good);
    flipped[flipped.length - 2] ^= 0x01; // a low mantissa bit of the last text feature: still finite, still the right shape
    writeFileSync(file, flipped);
    expect(() => loadFeatureStore(file, dataset)).toThrow(
      new RegExp(`Feature store ${file} is corrupt: its data does not match its checksum`),
    );
    writeFileSync(file, good);
    truncateSync(file, good.length - 8);
    expect(() => loadFeatureStore(file, dataset)).toThrow(new RegExp(`Feature store ${file} is truncated`));
  });

  it('counts and dims that do not match the dataset are clear errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'feats-'));
    writeNpy(join(dir, 'train.image.npy'), new Float32Array(5 * 2), [5, 2]);
    writeNpy(join(dir, 'train.text.npy'), new Float32Array(3 * 2), [3, 2]);
    expect(() => loadFeatureStore(dir, dataset)).toThrow(/5 image rows, but the dataset has 2 images \(or 3 captions/);
    writeNpy(join(dir, 'train.text.npy'), new Float32Array(4 * 2), [4, 2]);
    expect(() => loadFeatureStore(dir, dataset)).toThrow(/4 text rows, but the dataset has 3 captions/);
    expect(() => loadFeatureStore(join(dir, 'nope'), dataset)).toThrow(/Feature store not found/);
  });
});
