import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeUpright, thumbnail, THUMB_SIZE, walkImages } from './images.js';
import { cutText } from './model.js';

describe('index images', () => {
  it('a thumbnail of a 12-MP JPEG photo is a WebP of at most 256 px and under 100 KB', async () => {
    // a photo-like 12-MP picture: smooth gradients plus sensor-like noise
    const w = 4000,
      h = 3000;
    const raw = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const o = (y * w + x) * 3;
        const n = ((x * 73856093) ^ (y * 19349663)) % 23;
        raw[o] = (x / w) * 200 + n;
        raw[o + 1] = (y / h) * 180 + n;
        raw[o + 2] = 128 + 60 * Math.sin(x / 150) * Math.cos(y / 120) + n;
      }
    const jpeg = await sharp(raw, { raw: { width: w, height: h, channels: 3 } })
      .jpeg({ quality: 92 })
      .toBuffer();
    expect(jpeg.length).toBeGreaterThan(1_000_000);
    const t = await thumbnail(jpeg);
    const meta = await sharp(t).metadata();
    expect(meta.format).toBe('webp');
    expect(Math.max(meta.width!, meta.height!)).toBe(THUMB_SIZE);
    expect(meta.width! / meta.height!).toBeCloseTo(4 / 3, 1);
    expect(t.length).toBeLessThan(100_000);
  }, 60_000);

  it('EXIF orientation is applied before the crop the model sees', async () => {
    // a 40x20 picture, left half red, right half blue, stored rotated with orientation 6 (shown upright)
    const raw = Buffer.alloc(40 * 20 * 3);
    for (let y = 0; y < 20; y++)
      for (let x = 0; x < 40; x++) raw.set(x < 20 ? [255, 0, 0] : [0, 0, 255], (y * 40 + x) * 3);
    const upright = await sharp(raw, { raw: { width: 40, height: 20, channels: 3 } })
      .png()
      .toBuffer();
    const stored = await sharp(upright).rotate(270).withMetadata({ orientation: 6 }).png().toBuffer();
    const a = await decodeUpright(upright, 20, 20);
    const b = await decodeUpright(stored, 20, 20);
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
    expect(diff).toBeLessThanOrEqual(2);
  });

  it('walks folders recursively, sorted, for the formats sharp reads; hidden files left out', () => {
    const d = mkdtempSync(join(tmpdir(), 'distill-walk-'));
    mkdirSync(join(d, 'b', 'c'), { recursive: true });
    for (const f of ['z.JPG', 'a.png', 'b/c/x.gif', 'b/y.svg', 'b/n.txt', '.hidden.png', 'b/w.webp', 'doc.pdf'])
      writeFileSync(join(d, f), 'x');
    expect(walkImages(d).map((f) => f.name)).toEqual(['a.png', 'b/c/x.gif', 'b/w.webp', 'b/y.svg', 'z.JPG']);
  });

  it('cutText: a 100,000-character query becomes what the model can read; ordinary text is unchanged', () => {
    expect(cutText('red   heart', 30)).toBe('red   heart');
    const long = 'red \n\t heart '.repeat(10_000);
    const c = cutText(long, 30);
    expect(c.length).toBeLessThanOrEqual(30 * 101);
    expect(c.startsWith('red heart red heart')).toBe(true);
  });
});
