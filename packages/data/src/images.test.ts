import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import {
  decodeImage,
  EMOJI_PREPROCESS,
  emojiEntries,
  IMAGENET_PREPROCESS,
  ImageLoader,
  loadDataset,
  makeDataset,
  primeEmojiImages,
} from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'distill-img-'));
// 100x50: left half pure red, right half pure blue.
beforeAll(async () => {
  const w = 100,
    h = 50;
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px.set(x < 50 ? [255, 0, 0] : [0, 0, 255], 3 * (y * w + x));
  await sharp(px, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toFile(join(dir, 'rb.png'));
  writeFileSync(join(dir, 'corrupt.png'), Buffer.from('\x89PNG\r\n\x1a\nthis is not really a png'));
});
const ds = () =>
  makeDataset('t', dir, {
    test: {
      images: [
        { id: 'rb', path: 'rb.png' },
        { id: 'bad', path: 'corrupt.png' },
        { id: 'gone', path: 'missing.png' },
      ],
      captions: [{ text: 'red and blue', image: 0 }],
    },
  });

describe('ImageLoader', () => {
  it('resizes the shorter side, centre-crops and normalises to NCHW float32', async () => {
    const pre = { ...IMAGENET_PREPROCESS, resize: 32, crop: 32 };
    const loader = new ImageLoader(ds(), pre, { split: 'test' });
    const x = await loader.load([0]);
    expect(x).toHaveLength(3 * 32 * 32);
    // 100x50 -> 64x32, centre crop 32 keeps columns 16..47: left 16 red, right 16 blue.
    const at = (c: number, y: number, xx: number) => x[c * 32 * 32 + y * 32 + xx];
    const red = [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (0 - 0.406) / 0.225];
    const blue = [(0 - 0.485) / 0.229, (0 - 0.456) / 0.224, (1 - 0.406) / 0.225];
    for (let c = 0; c < 3; c++) {
      expect(at(c, 10, 2)).toBeCloseTo(red[c], 5);
      expect(at(c, 20, 29)).toBeCloseTo(blue[c], 5);
    }
  });

  it('names the unreadable file, or skips it with a count when asked', async () => {
    const loader = new ImageLoader(ds(), EMOJI_PREPROCESS, { split: 'test' });
    await expect(loader.load([1])).rejects.toThrow(`Could not read image ${join(dir, 'corrupt.png')}`);
    await expect(loader.load([2])).rejects.toThrow(/missing\.png: file not found/);
    const warnings: string[] = [];
    const logger = {
      debug() {},
      info() {},
      warn: (m: string) => void warnings.push(m),
      error() {},
      child: () => logger,
    };
    const skip = new ImageLoader(ds(), EMOJI_PREPROCESS, { split: 'test', skipBadImages: true, logger });
    const x = await skip.load([1, 2, 0]);
    expect(x.subarray(0, 2 * 3 * 64 * 64).every((v) => v === 0)).toBe(true);
    expect(skip.badImages).toHaveLength(2);
    expect(skip.reportBadImages()).toBe(2);
    expect(warnings.at(-1)).toMatch(/2 unreadable image/);
  });

  it('decodes each emoji once: the disk cache serves a second loader, identically', async () => {
    const d = await loadDataset('emoji');
    const cacheDir = join(dir, 'cache');
    const a = new ImageLoader(d, EMOJI_PREPROCESS, { split: 'test', cacheDir, memoryCache: true });
    const first = await a.load([0, 1, 2, 3]);
    expect(a.decoded.decode).toBe(4);
    await a.load([0, 1]);
    expect(a.decoded.memory).toBe(2);
    const b = new ImageLoader(d, EMOJI_PREPROCESS, { split: 'test', cacheDir });
    const again = await b.load(d.splits.test.images.slice(0, 4));
    expect(b.decoded).toEqual({ disk: 4, memory: 0, decode: 0 });
    expect(again).toEqual(first);
    // A drawing with transparency is flattened on white: the corner pixel is white.
    const white = [(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225];
    for (let c = 0; c < 3; c++) expect(first[c * 64 * 64]).toBeCloseTo(white[c], 5);
  });

  it('primes emoji from the sprite sheets, byte-identical to decoding each PNG', async () => {
    const d = await loadDataset('emoji-xstyle');
    const loader = new ImageLoader(d, EMOJI_PREPROCESS, { split: 'test', memoryCache: true });
    expect(await primeEmojiImages(loader)).toBe(2 * emojiEntries().length);
    const items = d.splits.test.images.slice(0, 3);
    const [a] = await loader.loadUint8(items);
    expect(loader.decoded).toEqual({ disk: 0, memory: 3, decode: 0 });
    expect(a).toEqual(await decodeImage(items[0].path, 64, 64));
    // Other sizes are not primed (the sheets are 64 px).
    expect(await primeEmojiImages(new ImageLoader(d, IMAGENET_PREPROCESS))).toBe(0);
  });

  it('rejects a crop larger than the resize', () => {
    expect(() => new ImageLoader(ds(), { ...IMAGENET_PREPROCESS, resize: 200 }, {})).toThrow(/crop <= resize/);
  });
});
