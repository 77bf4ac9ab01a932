import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import sharp from 'sharp';
import {
  acquireRunLock,
  atomicWriteFile,
  atomicWriteJson,
  createLogger,
  createProgress,
  DistillError,
  Rng,
  sha256,
  type Dataset,
  type Logger,
  type SplitData,
} from '@distill/base';
import { makeDataset } from './datasets.js';
import {
  GLYPHS_EXCLUDED,
  glyphConcepts,
  glyphSources,
  type GlyphConceptSource,
  type GlyphImageSource,
  type GlyphSourceInfo,
} from './glyphs-sources.js';

export * from './glyphs-sources.js';

/**
 * The `glyphs` benchmark: ~11.7k concepts (1.9k emoji, 9.8k icons) drawn in 14 styles, 28.5k images of
 * 64 px, built once from npm packages into the distill cache (see glyphs-sources.ts for the inputs).
 *
 * Splits are by concept. Concepts are grouped (an emoji whose label slug is an icon's name shares its
 * group; an MDI variant is in its base icon's group: heart-outline with heart), the groups sorted by key are permuted with `new Rng(GLYPHS_SPLIT_SEED)`, and taken in that order
 * into test until it holds exactly 1,000 concepts, then val (1,000), the rest train. Val and test are
 * Flickr-style: one image per concept (its style drawn with a seeded Rng among the concept's styles) and
 * exactly 5 captions, a seeded choice among the concept's captions that no other concept of the same
 * split has, always with the name when it is unique (then shared ones, in caption order, if fewer than 5
 * are unique). Train has every image of
 * every train concept, each with all of its concept's captions (>= 5).
 *
 * `glyphs-xstyle`: the same rules over groups whose concepts all have >= 2 styles (own seed): the val/test
 * image of a concept is one of its styles, and its other styles are train images (with all captions), so
 * every test concept is seen in training, drawn differently. Every other concept is train.
 */
export const GLYPHS_SPLIT_SEED = 20_261_202;
export const GLYPHS_EVAL_SIZE = 1000;
export const GLYPHS_EVAL_CAPTIONS = 5;
/** In a build's `.partial` folder: one line `<file>\t<sha256>` per image written (what a resumed build verifies kept files against). */
const WRITTEN_JOURNAL = '.written';
/** Raster size: the emoji set's 64 px. */
export const GLYPHS_SIZE = 64;
/** Bumped whenever the build's output for the same inputs changes (part of the cache key). */
export const GLYPHS_BUILD_VERSION = 3;
/** Fixed raster settings (recorded in the manifest and the cache key). */
export const GLYPHS_RASTER = {
  size: GLYPHS_SIZE,
  svg: 'librsvg via sharp, width/height set to the size, viewBox kept (aspect kept, centred), density 72, currentColor drawn #000000, transparent background',
  png: 'emoji-datasource 64 px PNGs copied byte for byte; SVGs written as RGBA PNG, compressionLevel 9, no adaptive filtering, no palette',
  density: 72,
} as const;

export type GlyphSplit = 'train' | 'val' | 'test';
export interface GlyphImage {
  style: string;
  file: string;
  sha256: string;
}
/** One row of concepts.jsonl. */
export interface GlyphConcept {
  key: string;
  kind: 'emoji' | 'icon';
  name: string;
  group: string;
  captions: string[];
  images: GlyphImage[];
  /** `glyphs`: split, and for val/test the style shown and the 5 captions. */
  split: GlyphSplit;
  eval?: { style: string; captions: string[] };
  /** `glyphs-xstyle`: split, and for val/test the style shown (other styles are train images) and the 5 captions. */
  xsplit: GlyphSplit;
  xeval?: { style: string; captions: string[] };
}

export interface GlyphsManifest {
  dataset: 'glyphs';
  buildVersion: number;
  /** Cache key: build version, package versions, raster settings, sharp/libvips versions, sample. */
  key: string;
  /** Hash of the concept table (concepts, captions, files, splits) + package versions + raster settings: the same on every machine. */
  manifestHash: string;
  /** Hash of every image file's sha256 (sorted by file): equal where sharp/libvips rasterise alike. */
  pixelsSha256: string;
  sample?: number;
  concepts: { total: number; emoji: number; icon: number; multiStyle: number };
  images: number;
  imagesPerStyle: Record<string, number>;
  captionsPerImage: { min: number; max: number; mean: number };
  splits: Record<
    'glyphs' | 'glyphs-xstyle',
    Record<GlyphSplit, { concepts: number; images: number; captions: number }>
  >;
  splitRule: string;
  sources: GlyphSourceInfo[];
  excluded: string[];
  raster: typeof GLYPHS_RASTER;
  tools: { sharp: string; vips: string; rsvg: string; png: string };
  bytes: number;
  buildSeconds: number;
}

/** Where distill caches derived files: $DISTILL_CACHE_DIR, else .cache/distill under the current folder. */
export function distillCacheDir(): string {
  return process.env.DISTILL_CACHE_DIR ?? join(process.cwd(), '.cache', 'distill');
}

export interface GlyphsBuildOptions {
  /** Cache root (default distillCacheDir()); the build goes to <cacheDir>/glyphs/glyphs-<key>. */
  cacheDir?: string;
  /** Build into this folder instead of the cache. */
  out?: string;
  /** A small build: the first `sample` concepts of each style (tests). */
  sample?: number;
  /** Eval split size (default 1,000; smaller for a sample build). */
  evalSize?: number;
  /** Progress stream (default stderr); null for none. */
  progress?: NodeJS.WritableStream | null;
  /** Stop after writing this many images (tests of a killed build). */
  stopAfter?: number;
  log?: Logger;
}

function tools() {
  const v = sharp.versions as Record<string, string | undefined>;
  return { sharp: v.sharp ?? '?', vips: v.vips ?? '?', rsvg: v.rsvg ?? '?', png: v.png ?? '?' };
}

/** The build's cache key (cheap: reads only package.json files). */
export function glyphsKey(opts: Pick<GlyphsBuildOptions, 'sample' | 'evalSize'> = {}): {
  key: string;
  sources: GlyphSourceInfo[];
} {
  const sources = glyphSources();
  const key = sha256(
    JSON.stringify({
      v: GLYPHS_BUILD_VERSION,
      sources: sources.map((s) => [s.package, s.version]),
      raster: GLYPHS_RASTER,
      tools: tools(),
      sample: opts.sample ?? null,
      evalSize: opts.evalSize ?? GLYPHS_EVAL_SIZE,
    }),
  ).slice(0, 16);
  return { key, sources };
}

/** The folder a build with these options lives in. */
export function glyphsDir(opts: Pick<GlyphsBuildOptions, 'cacheDir' | 'out' | 'sample' | 'evalSize'> = {}): string {
  if (opts.out) return resolve(opts.out);
  return resolve(opts.cacheDir ?? distillCacheDir(), 'glyphs', `glyphs-${glyphsKey(opts).key}`);
}

/** The manifest of a finished build in `dir`, or undefined. */
export function readGlyphsManifest(dir: string): GlyphsManifest | undefined {
  const p = join(dir, 'manifest.json');
  if (!existsSync(p)) return undefined;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as GlyphsManifest;
  } catch {
    return undefined;
  }
}

/**
 * Assign splits and eval picks (pure: the concept table in, the same table with splits out).
 * See the module comment for the rules.
 */
export function assignGlyphSplits(
  concepts: (GlyphConceptSource | GlyphConcept)[],
  evalSize = GLYPHS_EVAL_SIZE,
): { split: GlyphSplit; eval?: GlyphConcept['eval']; xsplit: GlyphSplit; xeval?: GlyphConcept['xeval'] }[] {
  const sorted = concepts
    .map((c, i) => ({ c, i }))
    .sort((a, b) => (a.c.key < b.c.key ? -1 : a.c.key > b.c.key ? 1 : 0));
  const groups = new Map<string, number[]>();
  for (const { c, i } of sorted) groups.set(c.group, [...(groups.get(c.group) ?? []), i]);
  const groupKeys = [...groups.keys()].sort();
  const out = concepts.map(() => ({ split: 'train' as GlyphSplit, xsplit: 'train' as GlyphSplit })) as ReturnType<
    typeof assignGlyphSplits
  >;

  const assign = (
    eligible: (g: number[]) => boolean,
    seed: number,
    field: 'split' | 'xsplit',
    evalField: 'eval' | 'xeval',
  ) => {
    const keys = groupKeys.filter((k) => eligible(groups.get(k)!));
    const order = new Rng(seed).permutation(keys.length);
    const count = { test: 0, val: 0 };
    for (const k of order) {
      const members = groups.get(keys[k])!;
      const s: GlyphSplit =
        count.test + members.length <= evalSize ? 'test' : count.val + members.length <= evalSize ? 'val' : 'train';
      if (s === 'train') continue;
      count[s] += members.length;
      for (const i of members) out[i][field] = s;
      if (count.test === evalSize && count.val === evalSize) break;
    }
    if (count.test < evalSize || count.val < evalSize) {
      throw new DistillError(
        `glyphs: only ${count.test} test and ${count.val} val concepts could be drawn (need ${evalSize} each): the build has too few concepts; use a larger sample.`,
      );
    }
    // eval picks: style and 5 captions, walking concepts in key order with one seeded Rng
    const rng = new Rng(seed + 1);
    for (const s of ['val', 'test'] as const) {
      const members = sorted.filter(({ i }) => out[i][field] === s);
      const seen = new Map<string, number>();
      for (const { c } of members) for (const t of c.captions) seen.set(t, (seen.get(t) ?? 0) + 1);
      for (const { c, i } of members) {
        const style = c.images[rng.int(c.images.length)].style;
        const unique = c.captions.filter((t) => seen.get(t) === 1);
        let pick: string[];
        if (unique.length >= GLYPHS_EVAL_CAPTIONS) {
          // the name (first caption) whenever it is unique, then a seeded choice among the other unique ones
          const first = unique[0] === c.captions[0] ? 1 : 0;
          const rest = unique.slice(first);
          const chosen = new Set(Array.from(rng.permutation(rest.length).slice(0, GLYPHS_EVAL_CAPTIONS - first)));
          pick = [...unique.slice(0, first), ...rest.filter((_, k) => chosen.has(k))];
        } else {
          pick = [...unique, ...c.captions.filter((t) => seen.get(t) !== 1)].slice(0, GLYPHS_EVAL_CAPTIONS);
          pick = c.captions.filter((t) => pick.includes(t));
        }
        out[i][evalField] = { style, captions: pick };
      }
    }
  };
  assign(() => true, GLYPHS_SPLIT_SEED, 'split', 'eval');
  assign((g) => g.every((i) => concepts[i].images.length >= 2), GLYPHS_SPLIT_SEED + 7, 'xsplit', 'xeval');
  return out;
}

/** Write a file so that a killed process leaves either nothing or the whole file (no fsync: a kill, not a power cut). */
function writeWhole(path: string, data: Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${randomBytes(3).toString('hex')}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

async function rasterise(img: GlyphImageSource): Promise<Uint8Array> {
  if (img.input.kind === 'png') return readFileSync(img.input.path);
  let p = sharp(Buffer.from(img.input.svg), { density: GLYPHS_RASTER.density, failOn: 'error' });
  const meta = await p.metadata();
  if (meta.width !== GLYPHS_SIZE || meta.height !== GLYPHS_SIZE) {
    p = p.resize(GLYPHS_SIZE, GLYPHS_SIZE, {
      fit: 'contain',
      background: { r: 0, g: 0, b: 0, alpha: 0 },
      kernel: 'linear',
    });
  }
  return p.ensureAlpha().png({ compressionLevel: 9, adaptiveFiltering: false, palette: false }).toBuffer();
}

/** Bytes of the files under `dir`; temp files a killed build left behind are removed on the way. */
function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) n += dirBytes(p);
    else if (e.name.endsWith('.tmp')) rmSync(p, { force: true });
    else if (e.name === WRITTEN_JOURNAL) continue;
    else n += statSync(p).size;
  }
  return n;
}

/**
 * Build the glyphs benchmark (images, concepts.jsonl, manifest.json) once. A finished build with the same
 * inputs is a no-op (returns its manifest). Work goes to `<dir>.partial/` under a run lock (a second build
 * of the same folder stops with a message); images already there from a killed build are kept, and the
 * folder is renamed into place only when complete, so a reader sees a whole build or none.
 */
export async function buildGlyphs(
  opts: GlyphsBuildOptions = {},
): Promise<{ dir: string; manifest: GlyphsManifest; built: boolean }> {
  const t0 = performance.now();
  const { key, sources } = glyphsKey(opts);
  for (const s of sources)
    if (GLYPHS_EXCLUDED.some((x) => s.package.includes(x)))
      throw new DistillError(
        `glyphs: source '${s.package}' is excluded (Tabler is reserved for an independent check).`,
      );
  const dir = glyphsDir(opts);
  const done = readGlyphsManifest(dir);
  if (done && done.key === key) return { dir, manifest: done, built: false };
  if (done || (existsSync(dir) && readdirSync(dir).length > 0)) {
    throw new DistillError(
      `${dir} already holds something other than this glyphs build (key ${key}): remove it or pass another --out.`,
    );
  }
  const partial = `${dir}.partial`;
  const log = opts.log ?? createLogger({ scope: 'data' });
  const lock = acquireRunLock(partial, { command: 'distill data build glyphs', logger: opts.log });
  try {
    const evalSize = opts.evalSize ?? GLYPHS_EVAL_SIZE;
    const sourcesTable = glyphConcepts({ size: GLYPHS_SIZE, sample: opts.sample });
    const files = new Set<string>();
    for (const c of sourcesTable)
      for (const i of c.images) {
        if (files.has(i.file)) throw new Error(`glyphs: two images would be written to ${i.file}`);
        files.add(i.file);
      }
    const jobs = sourcesTable.flatMap((c) => c.images);
    // Every image written is recorded with its sha256 in <partial>/.written (appended after the file is
    // in place). An image a killed build left is kept only when its bytes match that record: a truncated,
    // swapped or unrecorded file is rasterised again, with a warning naming it.
    const journal = join(partial, WRITTEN_JOURNAL);
    const recorded = new Map<string, string>();
    if (existsSync(journal)) {
      for (const line of readFileSync(journal, 'utf8').split('\n')) {
        const [file, sha] = line.split('\t');
        if (file && sha?.length === 64) recorded.set(file, sha);
      }
    }
    mkdirSync(partial, { recursive: true });
    const resumed = existsSync(partial)
      ? jobs.filter((j) => recorded.has(j.file) && existsSync(join(partial, j.file))).length
      : 0;
    const progress =
      opts.progress === null
        ? undefined
        : createProgress({
            label: 'glyphs: images',
            total: jobs.length,
            initial: resumed,
            stream: opts.progress ?? process.stderr,
          });
    let next = 0,
      written = 0,
      started = 0;
    const hashes = new Map<string, string>();
    const redone: string[] = [];
    const worker = async () => {
      while (next < jobs.length) {
        const img = jobs[next++];
        const target = join(partial, img.file);
        let bytes: Uint8Array | undefined;
        let had = false;
        if (existsSync(target)) {
          // from a killed build of the same inputs: kept only if it is what that build wrote
          const old = readFileSync(target);
          const sha = sha256(old);
          if (recorded.get(img.file) === sha) {
            bytes = old;
            had = true;
            hashes.set(img.file, sha);
          } else {
            redone.push(target);
            log.warn(
              `glyphs: ${target} from the killed build ${recorded.has(img.file) ? 'differs from the file that build wrote (truncated or changed)' : 'was not recorded as written'}: rasterising it again`,
            );
          }
        }
        if (!bytes) {
          if (opts.stopAfter !== undefined && started >= opts.stopAfter) return;
          started++;
          try {
            bytes = await rasterise(img);
          } catch (e) {
            throw new DistillError(
              `glyphs: could not rasterise ${img.file} (${img.style}): ${String((e as Error).message).split('\n')[0]}. Reinstall the package (npm ci) and build again.`,
            );
          }
          writeWhole(target, bytes);
          const sha = sha256(bytes);
          appendFileSync(journal, `${img.file}\t${sha}\n`);
          hashes.set(img.file, sha);
          written++;
        }
        if (!had) progress?.tick();
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    if (hashes.size < jobs.length)
      throw new DistillError(`glyphs: build stopped after ${written} new images (stopAfter); run it again to resume.`);
    if (redone.length)
      log.warn(`glyphs: ${redone.length} file(s) left by the killed build did not verify and were rasterised again`);
    progress?.done();

    const splits = assignGlyphSplits(sourcesTable, evalSize);
    const table: GlyphConcept[] = sourcesTable.map((c, i) => ({
      key: c.key,
      kind: c.kind,
      name: c.name,
      group: c.group,
      captions: c.captions,
      images: c.images.map((im) => ({ style: im.style, file: im.file, sha256: hashes.get(im.file)! })),
      ...splits[i],
    }));
    const manifest = glyphsManifest(table, { key, sources, sample: opts.sample, bytes: 0, buildSeconds: 0 });
    atomicWriteFile(join(partial, 'concepts.jsonl'), table.map((c) => JSON.stringify(c)).join('\n') + '\n');
    manifest.bytes = dirBytes(partial);
    manifest.buildSeconds = Math.round((performance.now() - t0) / 100) / 10;
    atomicWriteJson(join(partial, 'manifest.json'), manifest);
    lock.release();
    mkdirSync(dirname(dir), { recursive: true });
    rmSync(join(partial, 'run.lock'), { force: true });
    if (existsSync(dir)) rmSync(dir, { recursive: true }); // empty (checked above)
    renameSync(partial, dir);
    rmSync(join(dir, WRITTEN_JOURNAL), { force: true }); // a finished build is checked against manifest's sha256 instead
    return { dir, manifest, built: true };
  } finally {
    lock.release();
  }
}

function glyphsManifest(
  table: GlyphConcept[],
  o: { key: string; sources: GlyphSourceInfo[]; sample?: number; bytes: number; buildSeconds: number },
): GlyphsManifest {
  const images = table.reduce((a, c) => a + c.images.length, 0);
  const perStyle: Record<string, number> = {};
  for (const c of table) for (const i of c.images) perStyle[i.style] = (perStyle[i.style] ?? 0) + 1;
  const caps = table.map((c) => c.captions.length);
  const ds = { glyphs: glyphSplitsOf(table, 'glyphs'), 'glyphs-xstyle': glyphSplitsOf(table, 'glyphs-xstyle') };
  const count = (v: 'glyphs' | 'glyphs-xstyle') =>
    Object.fromEntries(
      (['train', 'val', 'test'] as const).map((s) => [
        s,
        {
          concepts: table.filter((c) => (v === 'glyphs' ? c.split : c.xsplit) === s).length,
          images: ds[v][s].images.length,
          captions: ds[v][s].captions.length,
        },
      ]),
    ) as Record<GlyphSplit, { concepts: number; images: number; captions: number }>;
  const hashed = table.map((c) => ({ ...c, images: c.images.map(({ style, file }) => ({ style, file })) }));
  const manifestHash = sha256(
    JSON.stringify({
      v: GLYPHS_BUILD_VERSION,
      sources: o.sources.map((s) => [s.package, s.version]),
      raster: GLYPHS_RASTER,
      table: hashed,
    }),
  );
  const pixelsSha256 = sha256(
    table
      .flatMap((c) => c.images.map((i) => `${i.file}\t${i.sha256}`))
      .sort()
      .join('\n'),
  );
  return {
    dataset: 'glyphs',
    buildVersion: GLYPHS_BUILD_VERSION,
    key: o.key,
    manifestHash,
    pixelsSha256,
    ...(o.sample !== undefined ? { sample: o.sample } : {}),
    concepts: {
      total: table.length,
      emoji: table.filter((c) => c.kind === 'emoji').length,
      icon: table.filter((c) => c.kind === 'icon').length,
      multiStyle: table.filter((c) => c.images.length > 1).length,
    },
    images,
    imagesPerStyle: perStyle,
    captionsPerImage: {
      min: Math.min(...caps),
      max: Math.max(...caps),
      mean: Math.round((1000 * caps.reduce((a, b) => a + b, 0)) / caps.length) / 1000,
    },
    splits: { glyphs: count('glyphs'), 'glyphs-xstyle': count('glyphs-xstyle') },
    splitRule:
      `concepts grouped (an emoji label slug = an icon name; an MDI variant joins its base icon), groups sorted and permuted with distill Rng(${GLYPHS_SPLIT_SEED}) (xstyle: Rng(${GLYPHS_SPLIT_SEED + 7}) over groups whose concepts all have >= 2 styles); ` +
      `first groups to test until ${table.filter((c) => c.split === 'test').length} concepts, then val, rest train; val/test: one seeded style per concept and ${GLYPHS_EVAL_CAPTIONS} captions unique within the split where possible (the name, then a seeded choice); ` +
      'glyphs: only the chosen image of a val/test concept is used; xstyle: its other styles are train images',
    sources: o.sources,
    excluded: [...GLYPHS_EXCLUDED],
    raster: GLYPHS_RASTER,
    tools: tools(),
    bytes: o.bytes,
    buildSeconds: o.buildSeconds,
  };
}

/** The splits of a variant from the concept table; image paths are relative to the build folder. */
export function glyphSplitsOf(
  table: GlyphConcept[],
  variant: 'glyphs' | 'glyphs-xstyle',
): Record<GlyphSplit, SplitData> {
  const splits: Record<GlyphSplit, SplitData> = {
    train: { images: [], captions: [] },
    val: { images: [], captions: [] },
    test: { images: [], captions: [] },
  };
  const push = (s: GlyphSplit, c: GlyphConcept, im: GlyphImage, caps: string[]) => {
    const d = splits[s];
    const k = d.images.length;
    d.images.push({ id: `${c.key}/${im.style}`, path: im.file, sha256: im.sha256 });
    for (const text of caps) d.captions.push({ text, image: k });
  };
  for (const c of table) {
    const split = variant === 'glyphs' ? c.split : c.xsplit;
    const ev = variant === 'glyphs' ? c.eval : c.xeval;
    if (split === 'train') {
      for (const im of c.images) push('train', c, im, c.captions);
      continue;
    }
    if (!ev)
      throw new DistillError(
        `glyphs: concept ${c.key} is in ${split} without an eval pick: the build is damaged; remove it and build again.`,
      );
    for (const im of c.images) {
      if (im.style === ev.style) push(split, c, im, ev.captions);
      else if (variant === 'glyphs-xstyle') push('train', c, im, c.captions);
    }
  }
  return splits;
}

export interface GlyphsLoadOptions extends GlyphsBuildOptions {
  /** Build when the cache has no build yet (default true); false: a DistillError saying how to build. */
  build?: boolean;
}

/** The concept table of a finished build. */
export function readGlyphConcepts(dir: string): GlyphConcept[] {
  const p = join(dir, 'concepts.jsonl');
  if (!existsSync(p))
    throw new DistillError(
      `glyphs: ${p} is missing: the build is incomplete or damaged; remove ${dir} and run distill data build glyphs.`,
    );
  const out: GlyphConcept[] = [];
  for (const [k, line] of readFileSync(p, 'utf8').split('\n').entries()) {
    if (!line.trim()) continue;
    let c: GlyphConcept;
    try {
      c = JSON.parse(line) as GlyphConcept;
    } catch (e) {
      throw new DistillError(
        `${p}:${k + 1}: not valid JSON (${(e as Error).message}): the build is damaged; remove ${dir} and run distill data build glyphs.`,
      );
    }
    const ok =
      c &&
      typeof c === 'object' &&
      typeof c.key === 'string' &&
      Array.isArray(c.captions) &&
      Array.isArray(c.images) &&
      c.images.every(
        (i) => i && typeof i.file === 'string' && typeof i.style === 'string' && typeof i.sha256 === 'string',
      ) &&
      ['train', 'val', 'test'].includes(c.split) &&
      ['train', 'val', 'test'].includes(c.xsplit);
    if (!ok)
      throw new DistillError(
        `${p}:${k + 1}: not a glyphs concept (key, captions, images with file/style/sha256, split, xsplit): the build is damaged; remove ${dir} and run distill data build glyphs.`,
      );
    out.push(c);
  }
  return out;
}

/** The `glyphs` / `glyphs-xstyle` dataset, built into the cache on first use. */
export async function loadGlyphs(
  variant: 'glyphs' | 'glyphs-xstyle' = 'glyphs',
  options: GlyphsLoadOptions = {},
): Promise<Dataset & { glyphs: GlyphsManifest }> {
  const log = options.log ?? createLogger({ scope: 'data' });
  const opts = { ...glyphsSampleFromEnv(log), ...options, log };
  const dir = glyphsDir(opts);
  let manifest = readGlyphsManifest(dir);
  if (!manifest) {
    if (opts.build === false)
      throw new DistillError(`The glyphs benchmark is not built yet (expected ${dir}): run distill data build glyphs.`);
    log.info(`glyphs: building the benchmark once into ${dir} (about a minute on 2 cores)`);
    manifest = (await buildGlyphs(opts)).manifest;
  }
  const table = readGlyphConcepts(dir);
  const d = makeDataset(variant, dir, glyphSplitsOf(table, variant), log);
  return { ...d, glyphs: manifest };
}

/**
 * `DISTILL_GLYPHS_SAMPLE=N`: `--dataset glyphs` loads a small build (the first N concepts of each style,
 * val/test of N/2 concepts) instead of the full one: for tests and quick tries, never for figures.
 */
export function glyphsSampleFromEnv(log?: Logger): Pick<GlyphsBuildOptions, 'sample' | 'evalSize'> {
  const v = process.env.DISTILL_GLYPHS_SAMPLE;
  if (v === undefined || v === '') return {};
  const n = Number(v);
  if (!Number.isInteger(n) || n < 4)
    throw new DistillError(
      `DISTILL_GLYPHS_SAMPLE must be an integer >= 4 (got '${v}'): unset it for the full glyphs benchmark.`,
      2,
    );
  log?.warn(`glyphs: DISTILL_GLYPHS_SAMPLE=${n}: a small sample build, not the benchmark (unset it for figures)`);
  return { sample: n, evalSize: Math.floor(n / 2) };
}

/** What `distill data info glyphs` prints besides the split counts. */
export function glyphsInfo(m: GlyphsManifest, dir: string) {
  return {
    dir,
    manifestHash: m.manifestHash,
    images: m.images,
    concepts: m.concepts,
    captionsPerImage: m.captionsPerImage,
    evalCaptionsPerImage: GLYPHS_EVAL_CAPTIONS,
    splits: m.splits,
    imagesPerStyle: m.imagesPerStyle,
    sources: m.sources.map((s) => ({ package: s.package, version: s.version, licence: s.licence, styles: s.styles })),
    excluded: m.excluded,
    bytes: m.bytes,
    buildSeconds: m.buildSeconds,
  };
}
