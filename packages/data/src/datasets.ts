import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { DistillError, sha256, type CaptionItem, type Dataset, type ImageItem, type SplitData } from '@distill/core';

/**
 * Loaders for the dataset formats users have. Every loader returns core's `Dataset`: per split, a list
 * of images and a list of captions, each caption pointing at its image (`CaptionItem.image`). All
 * captions are kept (an image may have any number).
 */
export interface DatasetOptions {
  /** Folder holding the annotations (and, by default, the images). */
  dataRoot?: string;
  /** Annotation file (or, for `jsonl`/`dsmd-list`, a folder of per-split files). */
  annotations?: string;
  /** Folder that relative image paths resolve against (defaults depend on the format). */
  imageRoot?: string;
  /** Where derived files go (image cache...). Not needed to load. */
  cacheDir?: string;
  /** Dataset name written into the result. */
  name?: string;
}

/** The hash of a dataset's content (splits, image paths, captions): part of every cache key. */
export function manifestHashOf(name: string, splits: Record<string, SplitData>): string {
  const parts: string[] = [name];
  for (const s of Object.keys(splits).sort()) {
    const d = splits[s];
    parts.push(`#${s}`, ...d.images.map((i) => `${i.id}\t${i.path}`), '##', ...d.captions.map((c) => `${c.image}\t${c.text}`));
  }
  return sha256(parts.join('\n'));
}

export function makeDataset(name: string, imageRoot: string, splits: Record<string, SplitData>): Dataset {
  return { name, imageRoot: resolve(imageRoot), manifestHash: manifestHashOf(name, splits), splits };
}

function need(path: string, what: string): string {
  if (!existsSync(path)) {
    throw new DistillError(
      `${what} not found: expected ${path}. Pass --data-root/--annotations to point at it. ` +
        'distill downloads no data: Flickr30K and MSCOCO images come from their owners (flickr30k-images/, COCO train2014+val2014/), ' +
        "the Karpathy split files (dataset_flickr30k.json, dataset_coco.json) from Karpathy's caption_datasets release. " +
        'Without data, `distill train` runs on the embedded emoji benchmark.',
    );
  }
  return path;
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new DistillError(`Could not parse ${path} as JSON: ${(e as Error).message}`);
  }
}

/** Builds a split from (imageKey, path, captions) in first-seen order, merging repeated keys. */
class SplitBuilder {
  readonly images: ImageItem[] = [];
  readonly captions: CaptionItem[] = [];
  private readonly index = new Map<string, number>();
  add(id: string, path: string, texts: string[]): void {
    let i = this.index.get(id);
    if (i === undefined) {
      i = this.images.length;
      this.index.set(id, i);
      this.images.push({ id, path });
    }
    for (const t of texts) this.captions.push({ text: t, image: i });
  }
  build(): SplitData {
    return { images: this.images, captions: this.captions };
  }
}

// ---------------------------------------------------------------- Karpathy split JSON
interface KarpathyImage {
  filename: string;
  filepath?: string;
  split: string;
  sentences: { raw: string }[];
  imgid?: number;
  cocoid?: number;
}

/**
 * Karpathy split JSON (`dataset_flickr30k.json`, `dataset_coco.json`): images[] with filename, filepath,
 * split (train/val/test/restval) and sentences[].raw. COCO's restval joins train.
 */
export function loadKarpathy(opts: DatasetOptions & { file?: string }): Dataset {
  const root = opts.dataRoot ? resolve(opts.dataRoot) : undefined;
  let file = opts.annotations ?? opts.file;
  if (!file) {
    if (!root) throw new DistillError('The karpathy dataset needs --annotations <dataset_*.json> or --data-root <folder holding it>.');
    const found = existsSync(root) ? readdirSync(root).filter((f) => /^dataset_.*\.json$/.test(f)) : [];
    if (found.length === 0) throw new DistillError(`No Karpathy split file (dataset_*.json) in ${root}. Expected e.g. ${join(root, 'dataset_flickr30k.json')}.`);
    file = join(root, found.sort()[0]);
  }
  need(file, 'Karpathy split file');
  const json = readJson(file) as { images?: KarpathyImage[]; dataset?: string };
  if (!Array.isArray(json.images)) throw new DistillError(`${file} is not a Karpathy split file: it has no "images" array.`);
  const base = root ?? dirname(resolve(file));
  let imageRoot = opts.imageRoot ?? base;
  const isFlickr = (json.dataset ?? basename(file)).includes('flickr');
  if (!opts.imageRoot && isFlickr && existsSync(join(base, 'flickr30k-images'))) imageRoot = join(base, 'flickr30k-images');
  const builders: Record<string, SplitBuilder> = {};
  for (const [k, im] of json.images.entries()) {
    if (!im || typeof im.filename !== 'string' || !Array.isArray(im.sentences)) {
      throw new DistillError(`${file}: images[${k}] lacks filename or sentences.`);
    }
    const split = im.split === 'restval' ? 'train' : im.split;
    const path = im.filepath ? join(im.filepath, im.filename) : im.filename;
    (builders[split] ??= new SplitBuilder()).add(path, path, im.sentences.map((s) => s.raw.trim()));
  }
  const splits = Object.fromEntries(Object.entries(builders).map(([k, b]) => [k, b.build()]));
  return makeDataset(opts.name ?? json.dataset ?? 'karpathy', imageRoot, splits);
}

// ---------------------------------------------------------------- DSMD official list
/**
 * The DSMD official list: `<root>/{train,val,test}.json`, each a JSON list of {filename, description},
 * one entry per caption (5 consecutive per image). Entries with the same filename form one image.
 * Images in `<root>/flickr30k-images` (or `<root>/images` for COCO) unless --image-root is given.
 */
export function loadDsmdList(opts: DatasetOptions): Dataset {
  const root = resolve(opts.dataRoot ?? (opts.annotations ? dirname(opts.annotations) : '.'));
  const files: [string, string][] = [];
  if (opts.annotations && existsSync(opts.annotations) && statSync(opts.annotations).isFile()) {
    files.push([basename(opts.annotations, '.json'), opts.annotations]);
  } else {
    const dir = opts.annotations ?? root;
    for (const s of ['train', 'val', 'test']) if (existsSync(join(dir, `${s}.json`))) files.push([s, join(dir, `${s}.json`)]);
    if (files.length === 0) throw new DistillError(`DSMD list files not found: expected ${join(dir, 'train.json')} (and val.json) with [{"filename", "description"}] entries.`);
  }
  const splits: Record<string, SplitData> = {};
  for (const [split, file] of files) {
    const list = readJson(file);
    if (!Array.isArray(list)) throw new DistillError(`${file}: expected a JSON list of {"filename", "description"}.`);
    const b = new SplitBuilder();
    for (const [k, e] of (list as { filename?: string; description?: string }[]).entries()) {
      if (typeof e?.filename !== 'string' || typeof e?.description !== 'string') {
        throw new DistillError(`${file}: entry ${k} lacks "filename" or "description".`);
      }
      b.add(e.filename, e.filename, [e.description.trim()]);
    }
    splits[split] = b.build();
  }
  const imageRoot =
    opts.imageRoot ?? [join(root, 'flickr30k-images'), join(root, 'images')].find((p) => existsSync(p)) ?? root;
  return makeDataset(opts.name ?? 'dsmd-list', imageRoot, splits);
}

// ---------------------------------------------------------------- JSONL
/**
 * JSONL: one image per line, {"image": "<path>", "captions": ["...", ...], "split"?: "train", "id"?: "..."}.
 * `annotations` is a file or a folder of `<split>.jsonl` files. A line without "split" goes to the
 * split named by its file (train/val/test/restval, restval -> train), else to `train`.
 * Relative image paths resolve against --image-root (default: the annotations' folder).
 */
export function loadJsonl(opts: DatasetOptions): Dataset {
  const ann = resolve(opts.annotations ?? opts.dataRoot ?? '.');
  need(ann, 'JSONL annotations');
  const files = statSync(ann).isDirectory()
    ? readdirSync(ann).filter((f) => f.endsWith('.jsonl')).sort().map((f) => join(ann, f))
    : [ann];
  if (files.length === 0) throw new DistillError(`No .jsonl files in ${ann}: expected e.g. ${join(ann, 'train.jsonl')} with {"image", "captions"} lines.`);
  const builders: Record<string, SplitBuilder> = {};
  for (const file of files) {
    const stem = basename(file, '.jsonl');
    const fileSplit = ['train', 'val', 'test'].includes(stem) ? stem : stem === 'restval' ? 'train' : 'train';
    const lines = readFileSync(file, 'utf8').split('\n');
    for (const [k, line] of lines.entries()) {
      if (!line.trim()) continue;
      let o: { image?: unknown; captions?: unknown; split?: unknown; id?: unknown };
      try {
        o = JSON.parse(line);
      } catch (e) {
        throw new DistillError(`${file}:${k + 1}: not valid JSON (${(e as Error).message}).`);
      }
      if (typeof o.image !== 'string' || !Array.isArray(o.captions) || o.captions.some((c) => typeof c !== 'string')) {
        throw new DistillError(`${file}:${k + 1}: expected {"image": "<path>", "captions": ["...", ...]}.`);
      }
      const split = typeof o.split === 'string' ? (o.split === 'restval' ? 'train' : o.split) : fileSplit;
      const id = typeof o.id === 'string' ? o.id : o.image;
      (builders[split] ??= new SplitBuilder()).add(id, o.image, (o.captions as string[]).map((c) => c.trim()));
    }
  }
  const imageRoot = opts.imageRoot ?? (statSync(ann).isDirectory() ? ann : dirname(ann));
  const splits = Object.fromEntries(Object.entries(builders).map(([k, b]) => [k, b.build()]));
  return makeDataset(opts.name ?? 'jsonl', imageRoot, splits);
}

/** Absolute path of an image of a dataset. */
export function imagePath(dataset: Pick<Dataset, 'imageRoot'>, item: ImageItem): string {
  return isAbsolute(item.path) ? item.path : join(dataset.imageRoot, item.path);
}

/** Image index per caption row of a split (the `textToImage` of an evaluation). */
export function textToImage(split: SplitData): Int32Array {
  return Int32Array.from(split.captions, (c) => c.image);
}

/** Counts per split, for logs and manifests. */
export function datasetSummary(d: Dataset): Record<string, { images: number; captions: number }> {
  return Object.fromEntries(Object.entries(d.splits).map(([k, s]) => [k, { images: s.images.length, captions: s.captions.length }]));
}
