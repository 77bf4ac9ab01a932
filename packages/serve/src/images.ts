/**
 * Image files of an index: the formats it reads, a folder walk, the decode for the model (the data
 * package's preprocessing with EXIF orientation applied first) and the thumbnails the page shows.
 * One read of each file serves its content hash, its decode and its thumbnail.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, resolve } from 'node:path';
import sharp from 'sharp';
import { DistillError, type ImagePreprocess } from '@distill/core';

/** What sharp's prebuilt libvips reads (GIF and WebP: the first frame; SVG: rendered at 72 dpi). */
export const IMAGE_EXTS = ['.jpg', '.jpeg', '.png', '.webp', '.gif', '.svg', '.avif', '.tif', '.tiff'];
const IMAGE_EXT = new Set(IMAGE_EXTS);

/** Longest side of a thumbnail (px). */
export const THUMB_SIZE = 256;

/** Every image file under `folder` (recursively, sorted by path), as [relative name, absolute path]. */
export function walkImages(folder: string): { name: string; path: string }[] {
  if (!existsSync(folder) || !statSync(folder).isDirectory())
    throw new DistillError(`Image folder not found: ${folder}.`, 2);
  const root = resolve(folder);
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    )) {
      if (e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && IMAGE_EXT.has(extname(e.name).toLowerCase())) files.push(p);
    }
  };
  walk(root);
  return files.map((p) => ({ name: relative(root, p).split('\\').join('/'), path: p }));
}

/** The captions of an image file: `<name>.txt` beside it, one per line (none when absent). */
export function sidecarCaptions(path: string): string[] {
  const txt = path.slice(0, -extname(path).length) + '.txt';
  if (!existsSync(txt)) return [];
  return readFileSync(txt, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

const open = (buf: Buffer) => sharp(buf, { failOn: 'error', limitInputPixels: 268_402_689 });

/**
 * The crop the model sees, as the data package's `decodeImage` makes it (shorter side -> `resize`,
 * bilinear; centre crop; alpha over white; RGB uint8 HWC), after turning the image upright by its EXIF
 * orientation (a no-op for files without one, such as every dataset image).
 */
export async function decodeUpright(buf: Buffer, resize: number, crop: number): Promise<Uint8Array> {
  const meta = await open(buf).metadata();
  const swap = (meta.orientation ?? 1) >= 5;
  const w0 = swap ? meta.height : meta.width;
  const h0 = swap ? meta.width : meta.height;
  if (!w0 || !h0) throw new Error('no image size in the file');
  const s = resize / Math.min(w0, h0);
  const w = Math.max(crop, Math.round(w0 * s)),
    h = Math.max(crop, Math.round(h0 * s));
  let p = open(buf)
    .rotate()
    .flatten({ background: { r: 255, g: 255, b: 255 } });
  if (w !== w0 || h !== h0) p = p.resize(w, h, { kernel: 'linear', fit: 'fill' });
  const left = Math.round((w - crop) / 2),
    top = Math.round((h - crop) / 2);
  if (w !== crop || h !== crop) p = p.extract({ left, top, width: crop, height: crop });
  const { data, info } = await p.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || data.length !== crop * crop * 3)
    throw new Error(`unexpected decoded shape ${info.width}x${info.height}x${info.channels}`);
  return new Uint8Array(data);
}

/** NCHW float32 [n, 3, crop, crop] of decoded crops (undefined: zeros). */
export function normalise(crops: (Uint8Array | undefined)[], pre: ImagePreprocess): Float32Array {
  const hw = pre.crop * pre.crop;
  const out = new Float32Array(crops.length * 3 * hw);
  const scale = [0, 1, 2].map((c) => 1 / (255 * pre.std[c]));
  const shift = [0, 1, 2].map((c) => pre.mean[c] / pre.std[c]);
  crops.forEach((u, n) => {
    if (!u) return;
    const o = n * 3 * hw;
    for (let p = 0; p < hw; p++) {
      out[o + p] = u[3 * p] * scale[0] - shift[0];
      out[o + hw + p] = u[3 * p + 1] * scale[1] - shift[1];
      out[o + 2 * hw + p] = u[3 * p + 2] * scale[2] - shift[2];
    }
  });
  return out;
}

/** A WebP thumbnail, upright, longest side at most THUMB_SIZE (never enlarged). */
export async function thumbnail(buf: Buffer): Promise<Buffer> {
  return open(buf)
    .rotate()
    .resize(THUMB_SIZE, THUMB_SIZE, { fit: 'inside', withoutEnlargement: true })
    .webp({ quality: 80, effort: 2 })
    .toBuffer();
}

/** One line for why an image could not be read. */
export function imageErrorReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'file not found';
  if (code === 'EACCES') return 'permission denied';
  return String((e as Error).message ?? e).split('\n')[0];
}
