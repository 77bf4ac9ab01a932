import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, normalize, resolve } from 'node:path';
import {
  createLogger,
  DistillError,
  sha256,
  type CaptionItem,
  type Dataset,
  type ImageItem,
  type Logger,
  type SplitData,
} from '@distill/base';

/**
 * Loaders for the dataset formats users have. Every loader returns core's `Dataset`: per split, a list
 * of images and a list of captions, each caption pointing at its image (`CaptionItem.image`). All
 * captions are kept (an image may have any number).
 *
 * Datasets check themselves while loading (see the package README for the table):
 * - rejected (DistillError naming the file, entry and field): malformed entries, text that is not UTF-8,
 *   test images that also appear in train, an `imageRoot` that does not exist, one id naming two images;
 * - warned about with counts (on `log`): repeated image rows (merged, their repeated captions dropped),
 *   empty captions (dropped), images left without a caption, val images also in train or test, and an
 *   image root under which none of the first images exist.
 */
export interface DatasetOptions {
  /** Folder holding the annotations (and, by default, the images). */
  dataRoot?: string;
  /** Annotation file (or, for `jsonl`/`dsmd-list`, a folder of per-split files). Relative paths that do not exist from the cwd are tried under `dataRoot`. */
  annotations?: string;
  /** Folder that relative image paths resolve against (defaults depend on the format; `dataRoot` when given). */
  imageRoot?: string;
  /** Where derived files go (image cache...). Not needed to load. */
  cacheDir?: string;
  /** Dataset name written into the result. */
  name?: string;
  /** Where the dataset's warnings go (default: stderr, scope `data`). */
  log?: Logger;
}

/** The hash of a dataset's content (splits, image paths, captions): part of every cache key. */
export function manifestHashOf(name: string, splits: Record<string, SplitData>): string {
  const parts: string[] = [name];
  for (const s of Object.keys(splits).sort()) {
    const d = splits[s];
    // one push per row: spreading >100k rows into push() overflows the call stack (glyphs, COCO)
    parts.push(`#${s}`);
    for (const i of d.images) parts.push(`${i.id}\t${i.path}`);
    parts.push('##');
    for (const c of d.captions) parts.push(`${c.image}\t${c.text}`);
  }
  return sha256(parts.join('\n'));
}

let defaultLog: Logger | undefined;
function logOf(opts: { log?: Logger }): Logger {
  return opts.log ?? (defaultLog ??= createLogger({ scope: 'data' }));
}

const plural = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
const examples = (xs: string[]) => xs.slice(0, 3).join(', ') + (xs.length > 3 ? ', ...' : '');

/**
 * Refuses test images that also appear in train (the test figures would be inflated) and warns about
 * val images also in train or test. Images are the same when their normalised paths are.
 */
export function checkSplitOverlap(name: string, splits: Record<string, SplitData>, log?: Logger): void {
  const paths = (s: string) => new Set((splits[s]?.images ?? []).map((i) => normalize(i.path)));
  const both = (a: string, b: string) => {
    const pb = paths(b);
    return [...paths(a)].filter((p) => pb.has(p));
  };
  const leak = both('test', 'train');
  if (leak.length > 0) {
    throw new DistillError(
      `Dataset '${name}': ${plural(leak.length, 'test image')} also in train (${examples(leak)}): test results would be inflated. ` +
        'Remove them from the train split (or from test) and load again.',
    );
  }
  for (const other of ['train', 'test']) {
    const o = both('val', other);
    if (o.length > 0) {
      (log ?? logOf({})).warn(
        `dataset '${name}': ${plural(o.length, 'val image')} also in ${other} (${examples(o)}): val figures (best-checkpoint choice) are optimistic`,
        { count: o.length },
      );
    }
  }
}

export function makeDataset(name: string, imageRoot: string, splits: Record<string, SplitData>, log?: Logger): Dataset {
  checkSplitOverlap(name, splits, log);
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

/**
 * A file's text, which must be UTF-8 (a BOM is dropped). Other encodings are refused: decoding them
 * would turn captions into mojibake that trains and evaluates without a sign.
 */
export function readUtf8(path: string): string {
  const bytes = readFileSync(path);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const loose = new TextDecoder('utf-8').decode(bytes);
    const lines = loose.split('\n');
    const bad = lines.map((l, k) => (l.includes('\uFFFD') ? k : -1)).filter((k) => k >= 0);
    const first = bad[0] ?? 0;
    const col = lines[first].indexOf('\uFFFD');
    const byte = Buffer.byteLength(
      lines.slice(0, first).join('\n') + (first > 0 ? '\n' : '') + lines[first].slice(0, col),
    );
    throw new DistillError(
      `${path} is not UTF-8 text: ${plural(bad.length, 'line')} hold invalid bytes (first at line ${first + 1}, byte ${byte}). ` +
        'Re-encode it as UTF-8 (e.g. iconv -f latin1 -t utf-8 <file> > <file>.utf8) and load again.',
    );
  }
}

function readJson(path: string): unknown {
  const text = readUtf8(path);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new DistillError(`Could not parse ${path} as JSON: ${(e as Error).message}`);
  }
}

/** `annotations` as given, or under `dataRoot` when it is relative and not found from the cwd. */
function annotationsPath(opts: DatasetOptions): string | undefined {
  const a = opts.annotations;
  if (!a || isAbsolute(a) || existsSync(a) || !opts.dataRoot) return a;
  const under = join(opts.dataRoot, a);
  return existsSync(under) ? under : a;
}

/** An explicit `imageRoot` must exist (a typo would otherwise fail image by image, or skip them all). */
function explicitImageRoot(opts: DatasetOptions): string | undefined {
  if (opts.imageRoot === undefined) return undefined;
  if (!existsSync(opts.imageRoot) || !statSync(opts.imageRoot).isDirectory()) {
    throw new DistillError(
      `Image root not found: ${resolve(opts.imageRoot)} is not a folder. Pass --image-root <folder the image paths are relative to>.`,
    );
  }
  return opts.imageRoot;
}

/** Warns when none of the first images of a split exist under the image root (wrong --image-root / --data-root). */
function probeImages(d: Dataset, log: Logger): void {
  for (const [split, s] of Object.entries(d.splits)) {
    const probe = s.images.slice(0, 5);
    if (probe.length > 0 && !probe.some((i) => existsSync(imagePath(d, i)))) {
      log.warn(
        `dataset '${d.name}': none of the first ${probe.length} ${split} images exist under ${d.imageRoot} (e.g. ${imagePath(d, probe[0])}); ` +
          'pass --image-root <folder> (or --data-root) if the images live elsewhere',
        { split, checked: probe.length },
      );
    }
  }
}

/** What a split builder merged or dropped, for the warnings. */
interface BuildStats {
  repeatedRows: number;
  repeatedCaptions: number;
  emptyCaptions: number;
  uncaptioned: number;
}

/**
 * Builds a split from (imageKey, path, captions) in first-seen order. A row that repeats an earlier
 * image is merged into it, minus captions that image already has (a repeated row used to double every
 * caption). Empty captions are dropped. Captions repeated within one row are kept (the data as given).
 */
class SplitBuilder {
  readonly images: ImageItem[] = [];
  readonly captions: CaptionItem[] = [];
  private readonly index = new Map<string, number>();
  private readonly texts: Set<string>[] = [];
  readonly stats: BuildStats = { repeatedRows: 0, repeatedCaptions: 0, emptyCaptions: 0, uncaptioned: 0 };
  add(id: string, path: string, texts: string[], where: () => string, sha?: string): void {
    let i = this.index.get(id);
    const repeat = i !== undefined;
    if (i === undefined) {
      i = this.images.length;
      this.index.set(id, i);
      this.images.push(sha ? { id, path, sha256: sha } : { id, path });
      this.texts.push(new Set());
    } else {
      if (this.images[i].path !== path) {
        throw new DistillError(
          `${where()}: id '${id}' names two images (${this.images[i].path} and ${path}). Give each image its own id.`,
        );
      }
      this.stats.repeatedRows++;
    }
    const seen = this.texts[i];
    const before = new Set(seen);
    for (const t of texts) {
      if (t === '') {
        this.stats.emptyCaptions++;
        continue;
      }
      if (repeat && before.has(t)) {
        this.stats.repeatedCaptions++;
        continue;
      }
      seen.add(t);
      this.captions.push({ text: t, image: i });
    }
  }
  build(): SplitData {
    this.stats.uncaptioned = this.texts.filter((t) => t.size === 0).length;
    return { images: this.images, captions: this.captions };
  }
}

/** Logs what building a split merged or dropped, with counts. */
function warnStats(source: string, split: string, s: BuildStats, log: Logger): void {
  if (s.repeatedRows > 0) {
    log.warn(
      `${source}: ${plural(s.repeatedRows, 'image row')} of split ${split} repeat an earlier row of the same image: merged, ${plural(s.repeatedCaptions, 'repeated caption')} dropped`,
      { split, repeatedRows: s.repeatedRows, repeatedCaptions: s.repeatedCaptions },
    );
  }
  if (s.emptyCaptions > 0)
    log.warn(`${source}: ${plural(s.emptyCaptions, 'empty caption')} in split ${split} dropped`, {
      split,
      emptyCaptions: s.emptyCaptions,
    });
  if (s.uncaptioned > 0) {
    log.warn(
      `${source}: ${plural(s.uncaptioned, 'image')} of split ${split} left without a caption (kept: they only act as distractors in retrieval)`,
      { split, uncaptioned: s.uncaptioned },
    );
  }
}

/** Builds every split and logs what the builders merged or dropped. */
function buildSplits(builders: Record<string, SplitBuilder>, source: string, log: Logger): Record<string, SplitData> {
  const splits = Object.fromEntries(Object.entries(builders).map(([k, b]) => [k, b.build()]));
  for (const [split, b] of Object.entries(builders)) warnStats(source, split, b.stats, log);
  return splits;
}

/** Loads the annotations, then checks the result (overlap, image root). */
function finish(name: string, imageRoot: string, splits: Record<string, SplitData>, log: Logger): Dataset {
  const d = makeDataset(name, imageRoot, splits, log);
  probeImages(d, log);
  return d;
}

// ---------------------------------------------------------------- Karpathy split JSON
const typeName = (v: unknown) =>
  v === undefined
    ? 'missing'
    : v === null
      ? 'null'
      : Array.isArray(v)
        ? 'an array'
        : typeof v === 'object'
          ? 'an object'
          : `${typeof v} ${JSON.stringify(v)}`.slice(0, 60);

/**
 * Karpathy split JSON (`dataset_flickr30k.json`, `dataset_coco.json`): images[] with filename, filepath,
 * split (train/val/test/restval) and sentences[].raw. COCO's restval joins train. Images resolve under
 * --image-root, else --data-root (its flickr30k-images/ for Flickr30K), else the file's folder.
 */
export function loadKarpathy(opts: DatasetOptions & { file?: string }): Dataset {
  const log = logOf(opts);
  const root = opts.dataRoot ? resolve(opts.dataRoot) : undefined;
  let file = annotationsPath(opts) ?? opts.file;
  if (!file) {
    if (!root)
      throw new DistillError(
        'The karpathy dataset needs --annotations <dataset_*.json> or --data-root <folder holding it>.',
      );
    const found = existsSync(root) ? readdirSync(root).filter((f) => /^dataset_.*\.json$/.test(f)) : [];
    if (found.length === 0)
      throw new DistillError(
        `No Karpathy split file (dataset_*.json) in ${root}. Expected e.g. ${join(root, 'dataset_flickr30k.json')}.`,
      );
    file = join(root, found.sort()[0]);
  }
  need(file, 'Karpathy split file');
  const json = readJson(file) as { images?: unknown[]; dataset?: string };
  if (!json || !Array.isArray(json.images))
    throw new DistillError(`${file} is not a Karpathy split file: it has no "images" array.`);
  const base = root ?? dirname(resolve(file));
  let imageRoot = explicitImageRoot(opts) ?? base;
  const isFlickr = (typeof json.dataset === 'string' ? json.dataset : basename(file)).includes('flickr');
  if (!opts.imageRoot && isFlickr && existsSync(join(base, 'flickr30k-images')))
    imageRoot = join(base, 'flickr30k-images');
  const bad = (k: number, what: string): never => {
    throw new DistillError(
      `${file}: images[${k}]${what}. Fix or remove that entry (each needs "filename", "split" and "sentences": [{"raw": "<caption>"}]).`,
    );
  };
  const builders: Record<string, SplitBuilder> = {};
  for (const [k, entry] of json.images.entries()) {
    if (!entry || typeof entry !== 'object' || Array.isArray(entry)) bad(k, ` is ${typeName(entry)}, not an object`);
    const im = entry as Record<string, unknown>;
    if (typeof im.filename !== 'string' || im.filename === '')
      bad(k, `.filename is ${im.filename === '' ? 'empty' : typeName(im.filename)}, not a file name`);
    if (im.filepath !== undefined && typeof im.filepath !== 'string')
      bad(k, `.filepath is ${typeName(im.filepath)}, not a folder name`);
    if (typeof im.split !== 'string') bad(k, `.split is ${typeName(im.split)}, not one of train/val/test/restval`);
    if (!Array.isArray(im.sentences)) bad(k, `.sentences is ${typeName(im.sentences)}, not a list`);
    const texts = (im.sentences as unknown[]).map((sen, j) => {
      const raw = sen && typeof sen === 'object' ? (sen as { raw?: unknown }).raw : undefined;
      if (typeof raw !== 'string')
        bad(
          k,
          `.sentences[${j}]${sen && typeof sen === 'object' ? `.raw is ${typeName(raw)}` : ` is ${typeName(sen)}`}, not a caption string`,
        );
      return (raw as string).trim();
    });
    const split = checkSplitName(
      im.split as string,
      `${file}: images[${k}]${typeof im.filename === 'string' ? ` (${im.filename})` : ''}.split`,
    );
    const path = im.filepath ? join(im.filepath as string, im.filename as string) : (im.filename as string);
    (builders[split] ??= new SplitBuilder()).add(path, path, texts, () => `${file}: images[${k}]`);
  }
  return finish(opts.name ?? json.dataset ?? 'karpathy', imageRoot, buildSplits(builders, file, log), log);
}

// ---------------------------------------------------------------- DSMD official list
/**
 * The DSMD official list: `<root>/{train,val,test}.json`, each a JSON list of {filename, description},
 * one entry per caption (5 consecutive per image). Entries with the same filename form one image (a
 * repeated filename is the format, not a repeated row). Images in `<root>/flickr30k-images` (or
 * `<root>/images` for COCO) unless --image-root is given.
 */
export function loadDsmdList(opts: DatasetOptions): Dataset {
  const log = logOf(opts);
  const ann = annotationsPath(opts);
  const root = resolve(opts.dataRoot ?? (ann ? dirname(ann) : '.'));
  const files: [string, string][] = [];
  if (ann && existsSync(ann) && statSync(ann).isFile()) {
    files.push([basename(ann, '.json'), ann]);
  } else {
    const dir = ann ?? root;
    for (const s of ['train', 'val', 'test'])
      if (existsSync(join(dir, `${s}.json`))) files.push([s, join(dir, `${s}.json`)]);
    if (files.length === 0)
      throw new DistillError(
        `DSMD list files not found: expected ${join(dir, 'train.json')} (and val.json) with [{"filename", "description"}] entries.`,
      );
  }
  const splits: Record<string, SplitData> = {};
  for (const [split, file] of files) {
    const list = readJson(file);
    if (!Array.isArray(list)) throw new DistillError(`${file}: expected a JSON list of {"filename", "description"}.`);
    const images: ImageItem[] = [];
    const captions: CaptionItem[] = [];
    const byName = new Map<string, number>();
    const stats: BuildStats = { repeatedRows: 0, repeatedCaptions: 0, emptyCaptions: 0, uncaptioned: 0 };
    const captioned = new Set<number>();
    for (const [k, e] of (list as { filename?: unknown; description?: unknown }[]).entries()) {
      const field =
        typeof e?.filename !== 'string' || e.filename === ''
          ? 'filename'
          : typeof e?.description !== 'string'
            ? 'description'
            : undefined;
      if (field) {
        throw new DistillError(
          `${file}: entry ${k} has no string "${field}" (got ${typeName((e as Record<string, unknown>)?.[field])}). Each entry is {"filename": "<image>", "description": "<caption>"}.`,
        );
      }
      const name = e.filename as string;
      let i = byName.get(name);
      if (i === undefined) {
        i = images.length;
        byName.set(name, i);
        images.push({ id: name, path: name });
      }
      const text = (e.description as string).trim();
      if (text === '') {
        stats.emptyCaptions++;
        continue;
      }
      captioned.add(i);
      captions.push({ text, image: i });
    }
    stats.uncaptioned = images.length - captioned.size;
    warnStats(file, split, stats, log);
    splits[split] = { images, captions };
  }
  const imageRoot =
    explicitImageRoot(opts) ??
    [join(root, 'flickr30k-images'), join(root, 'images')].find((p) => existsSync(p)) ??
    root;
  return finish(opts.name ?? 'dsmd-list', imageRoot, splits, log);
}

// ---------------------------------------------------------------- JSONL
/**
 * JSONL: one image per line, {"image": "<path>", "captions": ["...", ...], "split"?: "train", "id"?: "...", "sha256"?: "<hex>"}
 * ("sha256": the image file's, checked when the images are hashed for the teacher-feature cache).
 * `annotations` is a file or a folder of `<split>.jsonl` files. A line without "split" goes to the
 * split named by its file (train/val/test/restval, restval -> train), else to `train`.
 * Relative image paths resolve against --image-root, else --data-root when --annotations points
 * elsewhere, else the annotations' folder.
 */
export function loadJsonl(opts: DatasetOptions): Dataset {
  const log = logOf(opts);
  const ann = resolve(annotationsPath(opts) ?? opts.dataRoot ?? '.');
  need(ann, 'JSONL annotations');
  const files = statSync(ann).isDirectory()
    ? readdirSync(ann)
        .filter((f) => f.endsWith('.jsonl'))
        .sort()
        .map((f) => join(ann, f))
    : [ann];
  if (files.length === 0)
    throw new DistillError(
      `No .jsonl files in ${ann}: expected e.g. ${join(ann, 'train.jsonl')} with {"image", "captions"} lines.`,
    );
  const builders: Record<string, SplitBuilder> = {};
  for (const file of files) {
    const stem = basename(file, '.jsonl');
    const fileSplit = ['train', 'val', 'test'].includes(stem) ? stem : 'train';
    const lines = readUtf8(file).split('\n');
    for (const [k, line] of lines.entries()) {
      if (!line.trim()) continue;
      let o: { image?: unknown; captions?: unknown; split?: unknown; id?: unknown; sha256?: unknown };
      try {
        o = JSON.parse(line);
      } catch (e) {
        throw new DistillError(`${file}:${k + 1}: not valid JSON (${(e as Error).message}).`);
      }
      if (
        !o ||
        typeof o !== 'object' ||
        typeof o.image !== 'string' ||
        !Array.isArray(o.captions) ||
        o.captions.some((c) => typeof c !== 'string')
      ) {
        throw new DistillError(`${file}:${k + 1}: expected {"image": "<path>", "captions": ["...", ...]}.`);
      }
      const split = typeof o.split === 'string' ? checkSplitName(o.split, `${file}:${k + 1}`) : fileSplit;
      const id = typeof o.id === 'string' ? o.id : o.image;
      // an optional "sha256" of the image file (written by distill data build emoji): checked when the images are hashed
      if (o.sha256 !== undefined && (typeof o.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(o.sha256))) {
        throw new DistillError(
          `${file}:${k + 1}: "sha256" must be the image file's sha256 (64 hex digits), got ${JSON.stringify(o.sha256).slice(0, 80)}.`,
        );
      }
      (builders[split] ??= new SplitBuilder()).add(
        id,
        o.image,
        (o.captions as string[]).map((c) => c.trim()),
        () => `${file}:${k + 1}`,
        o.sha256 as string | undefined,
      );
    }
  }
  const imageRoot =
    explicitImageRoot(opts) ??
    (opts.annotations && opts.dataRoot ? opts.dataRoot : statSync(ann).isDirectory() ? ann : dirname(ann));
  return finish(opts.name ?? 'jsonl', imageRoot, buildSplits(builders, ann, log), log);
}

/** The split names an annotation file may use (restval joins train). */
export const SPLIT_NAMES = ['train', 'val', 'test', 'restval'] as const;

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return d[b.length];
}

/**
 * A split value from an annotation file, checked: one of train/val/test/restval (restval -> train).
 * Anything else is refused naming the file and entry and the nearest valid name (a typo such as "tarin"
 * would otherwise become a fourth split, and its images would silently leave training).
 */
export function checkSplitName(value: string, where: string): 'train' | 'val' | 'test' {
  if ((SPLIT_NAMES as readonly string[]).includes(value))
    return value === 'restval' ? 'train' : (value as 'train' | 'val' | 'test');
  const nearest = [...SPLIT_NAMES].sort(
    (x, y) => editDistance(value.toLowerCase(), x) - editDistance(value.toLowerCase(), y),
  )[0];
  throw new DistillError(
    `${where}: split "${value}" is not one of ${SPLIT_NAMES.join(', ')}; did you mean "${nearest}"? Fix the entry.`,
  );
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
  return Object.fromEntries(
    Object.entries(d.splits).map(([k, s]) => [k, { images: s.images.length, captions: s.captions.length }]),
  );
}
