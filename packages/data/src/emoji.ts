import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import {
  atomicWriteFile,
  atomicWriteJson,
  DistillError,
  Rng,
  sha256,
  type Dataset,
  type SplitData,
} from '@distill/base';
import { makeDataset } from './datasets.js';

/**
 * The embedded `emoji` benchmark, built from npm packages that ship with distill:
 * - `emoji-datasource-google` (images Apache-2.0) and `emoji-datasource-twitter` (images CC-BY-4.0):
 *   64 px PNG drawings of 1,911 emoji, with name, short_names, category, subcategory;
 * - `emojibase-data` (MIT): English label, tags, group/subgroup.
 *
 * Captions (lower-cased, whitespace-normalised, duplicates dropped, in this order):
 *   1. the Unicode name ("nerd face"); 2. the emojibase label; 3. each short name with _/- as spaces;
 *   4. "<subgroup> emoji: <label>" ("face glasses emoji: nerd face"); 5. the tags, 3 per caption
 *   ("brainy, clever, expert", then "face, geek, gifted", ...); 6. "<category> emoji: <name>"
 *   ("smileys & emotion emoji: nerd face"); 7. only while fewer than 5: "an emoji of <label>",
 *   "the <label> icon", "a small picture of <name>".
 *
 * Splits: the emoji (in emoji-datasource sort order) are permuted with `new Rng(EMOJI_SPLIT_SEED)`;
 * the first 200 are test, the next 200 val, the rest (1,511) train. Both drawings of an emoji are
 * always in its emoji's split.
 *
 * Images per split:
 * - `emoji` (default): train has BOTH drawings of each train emoji as two images, each with its own
 *   copy of the emoji's captions (so a train pair is (drawing, caption)); val and test use the GOOGLE
 *   drawing only, so every eval caption has exactly one correct image and Recall@K is the usual one.
 * - `emoji-xstyle`: train = google drawings of train emoji; val/test = TWITTER drawings of the
 *   val/test emoji (held-out emoji in an unseen drawing style). Swap with `trainVendor`.
 */
export type EmojiVendor = 'google' | 'twitter';
export const EMOJI_VENDORS: EmojiVendor[] = ['google', 'twitter'];
export const EMOJI_SPLIT_SEED = 20_241_122;
export const EMOJI_SPLIT_SIZES = { test: 200, val: 200 } as const;
export const EMOJI_LICENCES = {
  'emoji-datasource-google': 'images: Apache-2.0 (Google Noto Emoji); metadata: MIT',
  'emoji-datasource-twitter':
    'images: CC-BY-4.0 (Twitter Twemoji, (c) Twitter, Inc and other contributors); metadata: MIT',
  'emojibase-data': 'MIT',
} as const;

export interface EmojiEntry {
  /** Unicode code points, e.g. "1F913". */
  unified: string;
  name: string;
  category: string;
  subcategory: string;
  split: 'train' | 'val' | 'test';
  captions: string[];
  /** Absolute PNG path per vendor. */
  images: Record<EmojiVendor, string>;
  /** Relative file name inside img/<vendor>/64/. */
  file: string;
  /** Cell in the 64 px sprite sheets (img/<vendor>/sheets/64.png). */
  sheet: { x: number; y: number };
}

interface SourceEmoji {
  name: string;
  unified: string;
  non_qualified: string | null;
  image: string;
  short_names: string[];
  category: string;
  subcategory: string;
  sort_order: number;
  sheet_x: number;
  sheet_y: number;
  has_img_google: boolean;
  has_img_twitter: boolean;
}
interface BaseEmoji {
  hexcode: string;
  label: string;
  tags?: string[];
  subgroup?: number;
}

const require = createRequire(import.meta.url);
function packageDir(pkg: string): string {
  try {
    return dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    throw new DistillError(
      `The emoji dataset needs the npm package '${pkg}', which is not installed. Run npm install in the distill checkout.`,
    );
  }
}

const norm = (s: string) =>
  s
    .toLowerCase()
    .replace(/[_\s]+/g, ' ')
    .trim();

let cached: EmojiEntry[] | undefined;

/** Every emoji with captions, split and both drawings (memoised; ~50 ms). */
export function emojiEntries(): EmojiEntry[] {
  if (cached) return cached;
  const dirs = { google: packageDir('emoji-datasource-google'), twitter: packageDir('emoji-datasource-twitter') };
  const base = packageDir('emojibase-data');
  const google = JSON.parse(readFileSync(join(dirs.google, 'emoji.json'), 'utf8')) as SourceEmoji[];
  const twitter = JSON.parse(readFileSync(join(dirs.twitter, 'emoji.json'), 'utf8')) as SourceEmoji[];
  const data = JSON.parse(readFileSync(join(base, 'en', 'data.json'), 'utf8')) as BaseEmoji[];
  const meta = JSON.parse(readFileSync(join(base, 'meta', 'groups.json'), 'utf8')) as {
    subgroups: Record<string, string>;
  };
  const byHex = new Map(data.map((e) => [e.hexcode, e]));
  const twitterHas = new Set(twitter.filter((e) => e.has_img_twitter).map((e) => e.unified));
  const list = google
    .filter((e) => e.has_img_google && twitterHas.has(e.unified))
    .sort((a, b) => a.sort_order - b.sort_order || a.unified.localeCompare(b.unified));
  const order = new Rng(EMOJI_SPLIT_SEED).permutation(list.length);
  const splitOf = new Array<EmojiEntry['split']>(list.length);
  order.forEach((idx, k) => {
    splitOf[idx] =
      k < EMOJI_SPLIT_SIZES.test ? 'test' : k < EMOJI_SPLIT_SIZES.test + EMOJI_SPLIT_SIZES.val ? 'val' : 'train';
  });
  cached = list.map((e, k) => {
    const b = [e.unified, e.non_qualified ?? '', e.unified.replace(/-FE0F/g, '')]
      .map((h) => byHex.get(h))
      .find(Boolean);
    const caps: string[] = [];
    const add = (s: string | undefined) => {
      const t = s ? norm(s) : '';
      if (t && !caps.includes(t)) caps.push(t);
    };
    const name = norm(e.name);
    const label = b?.label ?? name;
    add(name);
    add(label);
    for (const s of e.short_names) add(s.replace(/[-_]+/g, ' '));
    const subgroup = (b?.subgroup !== undefined ? meta.subgroups[String(b.subgroup)] : undefined) ?? e.subcategory;
    add(`${subgroup.replace(/-/g, ' ')} emoji: ${label}`);
    const tags = b?.tags ?? [];
    for (let i = 0; i < tags.length; i += 3) add(tags.slice(i, i + 3).join(', '));
    add(`${e.category} emoji: ${name}`);
    // Fallback templates, only while an emoji has fewer than 5 captions.
    for (const t of [`an emoji of ${label}`, `the ${label} icon`, `a small picture of ${name}`])
      if (caps.length < 5) add(t);
    return {
      unified: e.unified,
      name,
      category: e.category,
      subcategory: e.subcategory,
      split: splitOf[k],
      captions: caps,
      images: {
        google: join(dirs.google, 'img', 'google', '64', e.image),
        twitter: join(dirs.twitter, 'img', 'twitter', '64', e.image),
      },
      file: e.image,
      sheet: { x: e.sheet_x, y: e.sheet_y },
    };
  });
  return cached;
}

export interface EmojiDatasetConfig {
  /** Vendors whose drawings are train images. */
  trainVendors: EmojiVendor[];
  /** Vendor whose drawings are val/test images. */
  evalVendor: EmojiVendor;
  name: string;
}
export const EMOJI_DEFAULT: EmojiDatasetConfig = {
  name: 'emoji',
  trainVendors: ['google', 'twitter'],
  evalVendor: 'google',
};
export const EMOJI_XSTYLE: EmojiDatasetConfig = {
  name: 'emoji-xstyle',
  trainVendors: ['google'],
  evalVendor: 'twitter',
};

/** Splits of an emoji variant; image paths are relative to `pathOf` (absolute by default). */
export function emojiSplits(
  cfg: EmojiDatasetConfig,
  pathOf: (e: EmojiEntry, v: EmojiVendor) => string = (e, v) => e.images[v],
): Record<string, SplitData> {
  const splits: Record<string, SplitData> = {
    train: { images: [], captions: [] },
    val: { images: [], captions: [] },
    test: { images: [], captions: [] },
  };
  for (const e of emojiEntries()) {
    const s = splits[e.split];
    for (const v of e.split === 'train' ? cfg.trainVendors : [cfg.evalVendor]) {
      const i = s.images.length;
      s.images.push({ id: `${e.unified}/${v}`, path: pathOf(e, v) });
      for (const text of e.captions) s.captions.push({ text, image: i });
    }
  }
  return splits;
}

/** The `emoji` / `emoji-xstyle` dataset read straight from node_modules (no build step needed). */
export function loadEmoji(cfg: EmojiDatasetConfig = EMOJI_DEFAULT): Dataset {
  return makeDataset(cfg.name, '/', emojiSplits(cfg));
}

/** Counts for the manifest. */
export function emojiStats(entries = emojiEntries()) {
  const n = entries.length;
  const caps = entries.map((e) => e.captions.length);
  const atLeast5 = caps.filter((c) => c >= 5).length;
  return {
    emoji: n,
    drawingsPerEmoji: EMOJI_VENDORS.length,
    splits: Object.fromEntries(
      (['train', 'val', 'test'] as const).map((s) => [s, entries.filter((e) => e.split === s).length]),
    ),
    captionsPerEmoji: { min: Math.min(...caps), max: Math.max(...caps), mean: caps.reduce((a, b) => a + b, 0) / n },
    emojiWithAtLeast5Captions: atLeast5,
    fractionWithAtLeast5Captions: atLeast5 / n,
  };
}

/**
 * Write an emoji variant in the JSONL format: `<out>/images/<vendor>/<file>.png` (both drawings of every
 * emoji), `<out>/{train,val,test}.jsonl` ({"id","image","captions"} per image) and `<out>/manifest.json`.
 * Load it back with the `jsonl` dataset (`--annotations <out>`).
 */
export function writeEmojiJsonl(out: string, cfg: EmojiDatasetConfig = EMOJI_DEFAULT): Record<string, unknown> {
  const entries = emojiEntries();
  for (const v of EMOJI_VENDORS) mkdirSync(join(out, 'images', v), { recursive: true });
  // each image's sha256 goes into its JSONL line: a picture changed after the build is named when read
  const shas = new Map<string, string>();
  for (const e of entries) {
    for (const v of EMOJI_VENDORS) {
      const bytes = readFileSync(e.images[v]);
      // whole or absent after a kill (temp file + rename; no fsync: a kill, not a power cut)
      const target = join(out, 'images', v, e.file);
      writeFileSync(`${target}.${process.pid}.tmp`, bytes);
      renameSync(`${target}.${process.pid}.tmp`, target);
      shas.set(`images/${v}/${e.file}`, sha256(bytes));
    }
  }
  const splits = emojiSplits(cfg, (e, v) => `images/${v}/${e.file}`);
  const counts: Record<string, { images: number; captions: number }> = {};
  for (const [name, s] of Object.entries(splits)) {
    const caps: string[][] = s.images.map(() => []);
    for (const c of s.captions) caps[c.image].push(c.text);
    const lines = s.images.map((im, i) =>
      JSON.stringify({ id: im.id, image: im.path, captions: caps[i], sha256: shas.get(im.path) }),
    );
    atomicWriteFile(join(out, `${name}.jsonl`), lines.join('\n') + '\n');
    counts[name] = { images: s.images.length, captions: s.captions.length };
  }
  const manifest = {
    dataset: cfg.name,
    format: 'jsonl',
    ...emojiStats(entries),
    images: Object.fromEntries(EMOJI_VENDORS.map((v) => [v, entries.length])),
    variant: {
      trainVendors: cfg.trainVendors,
      evalVendor: cfg.evalVendor,
      rule: 'train images: every listed train vendor drawing (captions repeated per drawing); val/test images: the eval vendor drawing only',
    },
    splitRule: `emoji in emoji-datasource sort order, permuted with distill Rng(${EMOJI_SPLIT_SEED}); first ${EMOJI_SPLIT_SIZES.test} test, next ${EMOJI_SPLIT_SIZES.val} val, rest train`,
    counts,
    licences: EMOJI_LICENCES,
    sources: Object.fromEntries(
      ['emoji-datasource-google', 'emoji-datasource-twitter', 'emojibase-data'].map((p) => [
        p,
        (JSON.parse(readFileSync(join(packageDir(p), 'package.json'), 'utf8')) as { version: string }).version,
      ]),
    ),
  };
  atomicWriteJson(join(out, 'manifest.json'), manifest);
  return manifest;
}

/**
 * Every emoji drawing of a vendor cut from its 64 px sprite sheet, decoded once (~0.2 ms per emoji instead of
 * ~2 ms per PNG): absolute PNG path -> 64x64 RGB uint8 HWC, alpha flattened on white (as ImageLoader does).
 * Sheet cells are 66 px: the 64 px drawing with a 1 px border.
 */
export async function emojiSpriteCrops(vendor: EmojiVendor): Promise<Map<string, Uint8Array>> {
  const entries = emojiEntries();
  const dir = packageDir(`emoji-datasource-${vendor}`);
  const { data, info } = await sharp(join(dir, 'img', vendor, 'sheets', '64.png'))
    .flatten({ background: { r: 255, g: 255, b: 255 } })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const W = info.width;
  const out = new Map<string, Uint8Array>();
  for (const e of entries) {
    const u = new Uint8Array(64 * 64 * 3);
    const x0 = e.sheet.x * 66 + 1,
      y0 = e.sheet.y * 66 + 1;
    for (let y = 0; y < 64; y++)
      u.set(data.subarray(((y0 + y) * W + x0) * 3, ((y0 + y) * W + x0 + 64) * 3), y * 64 * 3);
    out.set(e.images[vendor], u);
  }
  return out;
}

/**
 * Fill an ImageLoader's memory cache with every emoji drawing from the sprite sheets (the trainer's
 * preload for `emoji`/`emoji-xstyle`). Only for the native 64 px preprocessing (resize 64, crop 64);
 * returns the number of images primed (0 otherwise, and the loader decodes files as usual).
 */
export async function primeEmojiImages(loader: {
  preprocess: { resize: number; crop: number };
  prime(path: string, rgb: Uint8Array): void;
}): Promise<number> {
  if (loader.preprocess.resize !== 64 || loader.preprocess.crop !== 64) return 0;
  let n = 0;
  for (const v of EMOJI_VENDORS) {
    for (const [path, rgb] of await emojiSpriteCrops(v)) {
      loader.prime(path, rgb);
      n++;
    }
  }
  return n;
}

/** True for the embedded emoji data sets (`emoji`, `emoji-xstyle`), whose images come from the sprite sheets. */
export const isEmojiDataset = (dataset: { name: string }): boolean => dataset.name.startsWith('emoji');

/**
 * The one preload step every image reader of a dataset runs (trainer, teacher extraction, experiment
 * re-evaluation): the emoji data sets' drawings from the sprite sheets, nothing for other data sets.
 * Returns the number of images primed.
 */
export async function primeDatasetImages(
  dataset: { name: string },
  loader: Parameters<typeof primeEmojiImages>[0],
): Promise<number> {
  return isEmojiDataset(dataset) ? primeEmojiImages(loader) : 0;
}
