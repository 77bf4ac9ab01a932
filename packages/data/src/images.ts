import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import {
  atomicWriteFile,
  createLogger,
  DistillError,
  sha256,
  type Dataset,
  type ImageItem,
  type ImagePreprocess,
  type Logger,
} from '@distill/base';
import { imagePath } from './datasets.js';

/** The official DSMD preprocessing: Resize(256), CenterCrop(224), ImageNet mean/std. */
export const IMAGENET_PREPROCESS: ImagePreprocess = {
  resize: 256,
  crop: 224,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
};
/** CLIP's normalisation (resize 224, crop 224). */
export const CLIP_PREPROCESS: ImagePreprocess = {
  resize: 224,
  crop: 224,
  mean: [0.48145466, 0.4578275, 0.40821073],
  std: [0.26862954, 0.26130258, 0.27577711],
};
/** The emoji benchmark's drawings are 64 px: keep them as they are. */
export const EMOJI_PREPROCESS: ImagePreprocess = { ...IMAGENET_PREPROCESS, resize: 64, crop: 64 };

export interface ImageLoaderOptions {
  /** Folder for the decoded uint8 cache (keyed by path, mtime, size, resize, crop). Off when undefined. */
  cacheDir?: string;
  /** Keep decoded uint8 crops in memory (for small datasets such as emoji). */
  memoryCache?: boolean;
  /** Replace unreadable images by the mean colour (zeros after normalisation) and warn, instead of failing. */
  skipBadImages?: boolean;
  /** Split that numeric indices refer to (default 'train'). */
  split?: string;
  /** Images decoded at once (default 8). */
  concurrency?: number;
  logger?: Logger;
}

const CACHE_VERSION = 'v1';

/**
 * Decode -> resize shorter side (bilinear) -> centre crop -> flatten alpha on white -> RGB uint8 HWC,
 * then normalise with mean/std into NCHW float32. Decoded crops are cached on disk and/or in memory.
 *
 *   const loader = new ImageLoader(dataset, EMOJI_PREPROCESS, { split: 'train', memoryCache: true });
 *   const pixels = await loader.load([0, 1, 2]);  // Float32Array [3, 3, 64, 64]
 */
export class ImageLoader {
  private readonly memory = new Map<string, Uint8Array>();
  private readonly bad = new Set<string>();
  private readonly logger: Logger;
  readonly decoded = { disk: 0, memory: 0, decode: 0 };

  constructor(
    readonly dataset: Pick<Dataset, 'imageRoot' | 'splits'>,
    readonly preprocess: ImagePreprocess,
    readonly opts: ImageLoaderOptions = {},
  ) {
    const { resize, crop } = preprocess;
    if (!(crop > 0 && resize >= crop))
      throw new DistillError(`Image preprocess needs 0 < crop <= resize (got resize ${resize}, crop ${crop}).`);
    this.logger = opts.logger ?? createLogger({ scope: 'images' });
  }

  /** Values per image in the output: 3 * crop * crop. */
  get itemSize(): number {
    return 3 * this.preprocess.crop * this.preprocess.crop;
  }

  /** Files that could not be read so far (with skipBadImages). */
  get badImages(): string[] {
    return [...this.bad];
  }

  private items(sel: number[] | Int32Array | ImageItem[], split?: string): ImageItem[] {
    const arr = Array.from(sel as ArrayLike<number | ImageItem>);
    if (arr.length === 0 || typeof arr[0] !== 'number') return arr as ImageItem[];
    const name = split ?? this.opts.split ?? 'train';
    const s = this.dataset.splits[name];
    if (!s)
      throw new DistillError(`Dataset has no split '${name}' (has: ${Object.keys(this.dataset.splits).join(', ')}).`);
    return (arr as number[]).map((i) => {
      const it = s.images[i];
      if (!it) throw new Error(`Image index ${i} is out of range for split '${name}' (${s.images.length} images)`);
      return it;
    });
  }

  /** Preprocessed images as NCHW float32 [n, 3, crop, crop]. Indices refer to `split` (default opts.split). */
  async load(sel: number[] | Int32Array | ImageItem[], split?: string): Promise<Float32Array> {
    const items = this.items(sel, split);
    const crops = await this.loadUint8(items);
    const { crop, mean, std } = this.preprocess;
    const hw = crop * crop;
    const out = new Float32Array(items.length * 3 * hw);
    const scale = [0, 1, 2].map((c) => 1 / (255 * std[c]));
    const shift = [0, 1, 2].map((c) => mean[c] / std[c]);
    for (let n = 0; n < items.length; n++) {
      const u = crops[n];
      const o = n * 3 * hw;
      if (!u) continue; // bad image, skipped: zeros = the mean colour
      for (let p = 0; p < hw; p++) {
        out[o + p] = u[3 * p] * scale[0] - shift[0];
        out[o + hw + p] = u[3 * p + 1] * scale[1] - shift[1];
        out[o + 2 * hw + p] = u[3 * p + 2] * scale[2] - shift[2];
      }
    }
    return out;
  }

  /** Decoded, resized, cropped RGB uint8 HWC crops (undefined for a skipped bad image). */
  async loadUint8(items: ImageItem[]): Promise<(Uint8Array | undefined)[]> {
    const out = new Array<Uint8Array | undefined>(items.length);
    const conc = Math.max(1, this.opts.concurrency ?? 8);
    let next = 0;
    const worker = async () => {
      while (next < items.length) {
        const k = next++;
        out[k] = await this.one(imagePath(this.dataset, items[k]));
      }
    };
    await Promise.all(Array.from({ length: Math.min(conc, items.length) }, worker));
    return out;
  }

  /** Decode every image of a split once (fills the memory and disk caches). */
  async preload(split?: string, onProgress?: (done: number, total: number) => void): Promise<void> {
    const name = split ?? this.opts.split ?? 'train';
    const imgs = this.dataset.splits[name]?.images ?? [];
    for (let i = 0; i < imgs.length; i += 64) {
      await this.loadUint8(imgs.slice(i, i + 64));
      onProgress?.(Math.min(imgs.length, i + 64), imgs.length);
    }
  }

  /** Put an already decoded crop (RGB uint8 HWC, crop x crop) into the memory cache, e.g. from a sprite sheet. */
  prime(path: string, rgb: Uint8Array): void {
    const c = this.preprocess.crop;
    if (rgb.length !== c * c * 3) throw new Error(`prime(${path}): expected ${c * c * 3} bytes, got ${rgb.length}`);
    this.memory.set(path, rgb);
  }

  /** Log how many images were skipped (call at the end of a run). */
  reportBadImages(): number {
    if (this.bad.size)
      this.logger.warn(`${this.bad.size} unreadable image(s) were replaced by the mean colour`, {
        first: this.badImages.slice(0, 5),
      });
    return this.bad.size;
  }

  private async one(path: string): Promise<Uint8Array | undefined> {
    const memKey = path;
    const m = this.memory.get(memKey);
    if (m) {
      this.decoded.memory++;
      return m;
    }
    if (this.bad.has(path)) return undefined;
    const { resize, crop } = this.preprocess;
    let cacheFile: string | undefined;
    try {
      const st = statSync(path);
      if (this.opts.cacheDir) {
        const key = sha256(`${CACHE_VERSION}\n${path}\n${st.mtimeMs}\n${st.size}\n${resize}\n${crop}`);
        cacheFile = join(this.opts.cacheDir, key.slice(0, 2), `${key}.rgb`);
        if (existsSync(cacheFile)) {
          const b = readFileSync(cacheFile);
          if (b.length === crop * crop * 3) {
            this.decoded.disk++;
            const u = new Uint8Array(b);
            if (this.opts.memoryCache) this.memory.set(memKey, u);
            return u;
          }
        }
      }
      const u = await decodeImage(path, resize, crop);
      this.decoded.decode++;
      if (cacheFile) atomicWriteFile(cacheFile, u);
      if (this.opts.memoryCache) this.memory.set(memKey, u);
      return u;
    } catch (e) {
      const why =
        (e as NodeJS.ErrnoException).code === 'ENOENT'
          ? 'file not found'
          : String((e as Error).message ?? e).split('\n')[0];
      if (!this.opts.skipBadImages) {
        throw new DistillError(
          `Could not read image ${path}: ${why}. Fix or remove the file, or pass --skip-bad-images to replace unreadable images.`,
        );
      }
      this.bad.add(path);
      this.logger.warn(`skipping unreadable image ${path}: ${why}`);
      return undefined;
    }
  }
}

/** Decode one file: shorter side -> `resize` (bilinear), centre crop `crop`, alpha over white, RGB uint8 HWC. */
export async function decodeImage(path: string, resize: number, crop: number): Promise<Uint8Array> {
  const img = sharp(path, { failOn: 'error' });
  const meta = await img.metadata();
  const w0 = meta.width,
    h0 = meta.height;
  if (!w0 || !h0) throw new Error('no image size in the file');
  const s = resize / Math.min(w0, h0);
  const w = Math.max(crop, Math.round(w0 * s)),
    h = Math.max(crop, Math.round(h0 * s));
  let p = img.flatten({ background: { r: 255, g: 255, b: 255 } });
  if (w !== w0 || h !== h0) p = p.resize(w, h, { kernel: 'linear', fit: 'fill' });
  const left = Math.round((w - crop) / 2),
    top = Math.round((h - crop) / 2);
  if (w !== crop || h !== crop) p = p.extract({ left, top, width: crop, height: crop });
  const { data, info } = await p.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || data.length !== crop * crop * 3)
    throw new Error(`unexpected decoded shape ${info.width}x${info.height}x${info.channels}`);
  return new Uint8Array(data); // a copy, independent of any pooled Buffer
}
