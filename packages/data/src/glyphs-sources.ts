import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { DistillError } from '@distill/base';

/**
 * The inputs of the `glyphs` benchmark: npm packages that ship drawings plus names/annotations, read into
 * one list of concepts, each drawn in one or more styles. Nothing is downloaded; the packages are
 * dependencies (emoji-datasource-*, emojibase-data) or optionalDependencies (Iconify sets, lucide-static,
 * @phosphor-icons/core, @mdi/svg) of @distill/data.
 *
 * Concepts:
 * - emoji: every emojibase-data (en) emoji outside the `component` group (no skin-tone variants), matched
 *   by code point (FE0F dropped) to the Google and Twitter PNGs of emoji-datasource-* and to the SVGs of
 *   the Iconify noto, fluent-emoji-flat and openmoji sets (their chars.json); Iconify's emojione set has
 *   no chars.json and is matched by icon name (the other sets' names for a code point, then the slug of
 *   the emojibase label);
 * - icons: lucide-static, @phosphor-icons/core (each of its 6 weights a style) and @mdi/svg (not
 *   deprecated), merged by icon name: `heart` of lucide, phosphor and mdi is one concept in 8 styles.
 *   An MDI variant's split group is its base icon's name (heart-outline, heart-off, ... -> heart), so a
 *   family of variants is never split between train and test.
 *
 * Tabler (`@tabler/icons`, `@iconify-json/tabler`) is never read: it is reserved for an independent check
 * (`GLYPHS_EXCLUDED`; `glyphSources()` refuses any source whose package names it).
 */

/** Where one image of a concept comes from. */
export type GlyphInput = { kind: 'png'; path: string } | { kind: 'svg'; svg: string };

export interface GlyphImageSource {
  /** Style name, e.g. `noto`, `phosphor-duotone`. */
  style: string;
  /** Relative path of the rasterised file in the build folder: images/<style>/<slug>.png. */
  file: string;
  input: GlyphInput;
}

export interface GlyphConceptSource {
  /** `emoji:<hexcode>` or `icon:<name>`. */
  key: string;
  kind: 'emoji' | 'icon';
  /** Readable name (emoji: emojibase label; icon: name with spaces). */
  name: string;
  /** Split group: concepts with the same group are always in the same split (an emoji label = an icon name). */
  group: string;
  captions: string[];
  images: GlyphImageSource[];
}

export interface GlyphSourceInfo {
  package: string;
  version: string;
  licence: string;
  /** What the licence covers and whom to credit. */
  note: string;
  /** Styles this package provides (annotation-only packages: none). */
  styles: string[];
}

/** Packages kept out of every data set of the project (reserved for an independent check). */
export const GLYPHS_EXCLUDED = ['@tabler/icons', '@tabler/icons-webfont', '@iconify-json/tabler', 'tabler'] as const;

/** Style order (the order of a concept's images); each style names its package. */
export const GLYPH_STYLES = [
  { style: 'google', package: 'emoji-datasource-google' },
  { style: 'twitter', package: 'emoji-datasource-twitter' },
  { style: 'noto', package: '@iconify-json/noto' },
  { style: 'fluent-flat', package: '@iconify-json/fluent-emoji-flat' },
  { style: 'openmoji', package: '@iconify-json/openmoji' },
  { style: 'emojione', package: '@iconify-json/emojione' },
  { style: 'lucide', package: 'lucide-static' },
  { style: 'phosphor-thin', package: '@phosphor-icons/core' },
  { style: 'phosphor-light', package: '@phosphor-icons/core' },
  { style: 'phosphor-regular', package: '@phosphor-icons/core' },
  { style: 'phosphor-bold', package: '@phosphor-icons/core' },
  { style: 'phosphor-fill', package: '@phosphor-icons/core' },
  { style: 'phosphor-duotone', package: '@phosphor-icons/core' },
  { style: 'mdi', package: '@mdi/svg' },
] as const;
export const PHOSPHOR_WEIGHTS = ['thin', 'light', 'regular', 'bold', 'fill', 'duotone'] as const;

/** Packages read, in manifest order (emojibase-data: annotations only). */
export const GLYPH_PACKAGES = [
  'emojibase-data',
  'emoji-datasource-google',
  'emoji-datasource-twitter',
  '@iconify-json/noto',
  '@iconify-json/fluent-emoji-flat',
  '@iconify-json/openmoji',
  '@iconify-json/emojione',
  'lucide-static',
  '@phosphor-icons/core',
  '@mdi/svg',
] as const;

const NOTES: Record<string, string> = {
  'emojibase-data': 'annotations (labels, tags, groups, shortcodes); Unicode CLDR data',
  'emoji-datasource-google': 'images: Apache-2.0 (Google Noto Emoji); metadata MIT',
  'emoji-datasource-twitter':
    'images: CC-BY-4.0 (Twitter Twemoji, (c) Twitter, Inc and other contributors); metadata MIT',
  'lucide-static': 'ISC (Lucide Contributors; parts MIT, Feather (c) Cole Bemis)',
  '@phosphor-icons/core': 'MIT (Phosphor Icons, Tobias Fried and Helena Zhang)',
  '@mdi/svg': 'Apache-2.0 (Pictogrammers, Material Design Icons)',
};
const LICENCES: Record<string, string> = {
  // emoji-datasource's package.json says MIT for its code; the drawings carry the vendor's licence.
  'emoji-datasource-google': 'Apache-2.0',
  'emoji-datasource-twitter': 'CC-BY-4.0',
};

const require = createRequire(import.meta.url);

/** Folder of an installed package, or a DistillError saying how to get it. */
export function glyphPackageDir(pkg: string): string {
  if (GLYPHS_EXCLUDED.some((x) => pkg === x || pkg.includes('tabler'))) {
    throw new DistillError(`The glyphs benchmark never reads '${pkg}': Tabler is reserved for an independent check.`);
  }
  // Some packages' `exports` hide package.json: look for the folder on Node's module paths instead.
  for (const base of require.resolve.paths(pkg) ?? []) {
    if (existsSync(join(base, pkg, 'package.json'))) return join(base, pkg);
  }
  {
    throw new DistillError(
      `The glyphs dataset needs the npm package '${pkg}' (an optional dependency of @distill/data), which is not installed. ` +
        'Run npm install (without --omit=optional) in the distill checkout.',
    );
  }
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

/** Version, licence and styles of every package read (in GLYPH_PACKAGES order). */
export function glyphSources(): GlyphSourceInfo[] {
  return GLYPH_PACKAGES.map((pkg) => {
    const dir = glyphPackageDir(pkg);
    const pj = readJson<{ version: string; license?: string }>(join(dir, 'package.json'));
    let licence = LICENCES[pkg] ?? pj.license ?? 'unknown';
    let note = NOTES[pkg] ?? '';
    if (pkg.startsWith('@iconify-json/')) {
      const info = readJson<{
        name: string;
        license: { spdx?: string; title: string; url?: string };
        author: { name: string; url?: string };
      }>(join(dir, 'info.json'));
      licence = info.license.spdx ?? info.license.title;
      note = `${info.name} by ${info.author.name}${info.author.url ? ` (${info.author.url})` : ''}; licence ${info.license.url ?? info.license.title}; via Iconify`;
    }
    return {
      package: pkg,
      version: pj.version,
      licence,
      note,
      styles: GLYPH_STYLES.filter((s) => s.package === pkg).map((s) => s.style),
    };
  });
}

/** Lower case, `_`/`-`/runs of spaces as one space. */
export const normCaption = (s: string) =>
  s
    .toLowerCase()
    .replace(/[_\s]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
const words = (s: string) => normCaption(s.replace(/-/g, ' '));
/** A file-name slug: lower-case letters, digits and `-`. */
export const slug = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
/** Code points as emojibase writes them, FE0F (variation selector) dropped: the join key across emoji sets. */
export const normHex = (h: string) =>
  h
    .toUpperCase()
    .split(/[-_ ]/)
    .filter((x) => x && x !== 'FE0F')
    .join('-');

class Captions {
  readonly list: string[] = [];
  add(s: string | undefined): void {
    const t = s ? normCaption(s) : '';
    if (t && !this.list.includes(t)) this.list.push(t);
  }
  /** Tags 3 per caption ("brainy, clever, expert"). */
  tags(tags: string[]): void {
    for (let i = 0; i < tags.length; i += 3) this.add(tags.slice(i, i + 3).join(', '));
  }
  /** Simple templates of the name, only while fewer than 5 captions. */
  fill(templates: string[]): void {
    for (const t of templates) if (this.list.length < 5) this.add(t);
  }
}

interface IconifySet {
  prefix: string;
  icons: Record<
    string,
    { body: string; width?: number; height?: number; left?: number; top?: number; hidden?: boolean }
  >;
  aliases?: Record<string, { parent: string; [k: string]: unknown }>;
  width?: number;
  height?: number;
  left?: number;
  top?: number;
}

/** An Iconify icon (or a plain alias of one) as a standalone SVG; undefined for aliases with transforms. */
function iconifySvg(set: IconifySet, name: string, size: number): string | undefined {
  let icon = set.icons[name];
  if (!icon) {
    const a = set.aliases?.[name];
    if (!a || Object.keys(a).some((k) => k !== 'parent')) return undefined;
    icon = set.icons[a.parent];
    if (!icon) return undefined;
  }
  const w = icon.width ?? set.width ?? 16,
    h = icon.height ?? set.height ?? 16;
  const l = icon.left ?? set.left ?? 0,
    t = icon.top ?? set.top ?? 0;
  return `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${size}" height="${size}" viewBox="${l} ${t} ${w} ${h}">${icon.body}</svg>`;
}

/** A standalone SVG file resized to `size` px, `currentColor` drawn black. */
function svgFile(path: string, size: number): string {
  let s = readFileSync(path, 'utf8')
    .replace(/<!--[\s\S]*?-->/g, '')
    .trim();
  s = s.replace(/currentColor/g, '#000000');
  // The root element's own width/height (if any) are replaced by the raster size; the viewBox stays.
  s = s.replace(
    /<svg\b([^>]*)>/,
    (_m, attrs: string) => `<svg${attrs.replace(/\s(width|height)="[^"]*"/g, '')} width="${size}" height="${size}">`,
  );
  return s;
}

export interface GlyphSourceOptions {
  /** Raster size in px (the emoji set's 64). */
  size: number;
  /** Keep only the first `sample` concepts (sorted by key) of each kind per source: a small build for tests. */
  sample?: number;
}

/**
 * Every concept with its captions and images (inputs, not yet rasterised), sorted by key; images in
 * GLYPH_STYLES order. Deterministic: it depends only on the installed packages' files.
 */
export function glyphConcepts(opts: GlyphSourceOptions): GlyphConceptSource[] {
  const size = opts.size;
  const emoji = emojiConcepts(size);
  const icons = iconConcepts(size);
  const take = (xs: GlyphConceptSource[]) => (opts.sample === undefined ? xs : sampleEachStyle(xs, opts.sample));
  return [...take(emoji), ...take(icons)].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** The first `n` concepts of each style (sorted by key): every source is in a sample build. */
function sampleEachStyle(xs: GlyphConceptSource[], n: number): GlyphConceptSource[] {
  const sorted = [...xs].sort((a, b) => (a.key < b.key ? -1 : 1));
  const keep = new Set<GlyphConceptSource>();
  const styles = new Set(xs.flatMap((c) => c.images.map((i) => i.style)));
  for (const st of styles) {
    let k = 0;
    for (const c of sorted) {
      if (k >= n) break;
      if (c.images.some((i) => i.style === st)) {
        keep.add(c);
        k++;
      }
    }
  }
  return sorted.filter((c) => keep.has(c));
}

interface BaseEmoji {
  label: string;
  hexcode: string;
  tags?: string[];
  group?: number;
  subgroup?: number;
}
interface DatasourceEmoji {
  unified: string;
  name: string | null;
  image: string;
  short_names: string[];
  category: string;
  has_img_google?: boolean;
  has_img_twitter?: boolean;
}

function emojiConcepts(size: number): GlyphConceptSource[] {
  const base = glyphPackageDir('emojibase-data');
  const data = readJson<BaseEmoji[]>(join(base, 'en', 'data.json')).filter(
    (e) => e.group !== undefined && e.group !== 2,
  );
  const meta = readJson<{ groups: Record<string, string>; subgroups: Record<string, string> }>(
    join(base, 'meta', 'groups.json'),
  );
  const shortcodes = ['emojibase', 'cldr', 'github', 'iamcal'].map((f) =>
    readJson<Record<string, string | string[]>>(join(base, 'en', 'shortcodes', `${f}.json`)),
  );
  const scByHex = new Map<string, string[]>();
  for (const sc of shortcodes)
    for (const [h, v] of Object.entries(sc))
      scByHex.set(normHex(h), [...(scByHex.get(normHex(h)) ?? []), ...(Array.isArray(v) ? v : [v])]);
  const keys = new Set(data.map((e) => normHex(e.hexcode)));

  // images per code point, per style
  const images = new Map<string, Map<string, GlyphInput>>();
  const put = (hex: string, style: string, input: GlyphInput) => {
    if (!keys.has(hex)) return;
    const m = images.get(hex) ?? new Map<string, GlyphInput>();
    if (!m.has(style)) m.set(style, input);
    images.set(hex, m);
  };
  const names = new Map<string, string>(); // datasource Unicode names
  for (const v of ['google', 'twitter'] as const) {
    const dir = glyphPackageDir(`emoji-datasource-${v}`);
    for (const e of readJson<DatasourceEmoji[]>(join(dir, 'emoji.json'))) {
      const hex = normHex(e.unified);
      if (e.name && !names.has(hex)) names.set(hex, e.name);
      const path = join(dir, 'img', v, '64', e.image);
      if (e[`has_img_${v}`] && existsSync(path)) put(hex, v, { kind: 'png', path });
    }
  }
  const hexByIconName = new Map<string, string>();
  for (const [style, set] of [
    ['noto', 'noto'],
    ['fluent-flat', 'fluent-emoji-flat'],
    ['openmoji', 'openmoji'],
  ] as const) {
    const dir = glyphPackageDir(`@iconify-json/${set}`);
    const icons = readJson<IconifySet>(join(dir, 'icons.json'));
    const chars = readJson<Record<string, string>>(join(dir, 'chars.json'));
    for (const h of Object.keys(chars).sort()) {
      const hex = normHex(h);
      if (!hexByIconName.has(chars[h])) hexByIconName.set(chars[h], hex);
      const svg = iconifySvg(icons, chars[h], size);
      if (svg) put(hex, style, { kind: 'svg', svg });
    }
  }
  for (const e of data) if (!hexByIconName.has(slug(e.label))) hexByIconName.set(slug(e.label), normHex(e.hexcode));
  {
    const icons = readJson<IconifySet>(join(glyphPackageDir('@iconify-json/emojione'), 'icons.json'));
    for (const name of [...Object.keys(icons.icons), ...Object.keys(icons.aliases ?? {})].sort()) {
      const hex = hexByIconName.get(name);
      const svg = hex ? iconifySvg(icons, name, size) : undefined;
      if (hex && svg) put(hex, 'emojione', { kind: 'svg', svg });
    }
  }

  const out: GlyphConceptSource[] = [];
  for (const e of data) {
    const hex = normHex(e.hexcode);
    const imgs = images.get(hex);
    if (!imgs || imgs.size === 0) continue;
    const c = new Captions();
    const label = normCaption(e.label);
    const uname = names.get(hex);
    c.add(label);
    c.add(uname);
    for (const s of scByHex.get(hex) ?? []) c.add(s.replace(/[-_]+/g, ' '));
    const subgroup = e.subgroup !== undefined ? meta.subgroups[String(e.subgroup)] : undefined;
    const group = e.group !== undefined ? meta.groups[String(e.group)] : undefined;
    if (subgroup) c.add(`${words(subgroup)} emoji: ${label}`);
    c.tags(e.tags ?? []);
    if (group) c.add(`${words(group)} emoji: ${label}`);
    c.fill([`an emoji of ${label}`, `the ${label} icon`, `a small picture of ${label}`]);
    const file = hex.toLowerCase();
    out.push({
      key: `emoji:${hex}`,
      kind: 'emoji',
      name: label,
      group: slug(e.label),
      captions: c.list,
      images: GLYPH_STYLES.filter((s) => imgs.has(s.style)).map((s) => ({
        style: s.style,
        file: `images/${s.style}/${file}.png`,
        input: imgs.get(s.style)!,
      })),
    });
  }
  return out;
}

interface PhosphorIcon {
  name: string;
  categories: string[];
  figma_category?: string;
  tags: string[];
}
interface MdiIcon {
  id: string;
  baseIconId?: string;
  name: string;
  aliases: string[];
  tags: string[];
  deprecated?: boolean;
}

function iconConcepts(size: number): GlyphConceptSource[] {
  interface Acc {
    name: string;
    aliases: string[];
    tags: string[];
    categories: string[];
    /** MDI's base icon (heart-outline -> heart): the split group of the whole family. */
    base?: string;
    images: Map<string, GlyphInput>;
  }
  const acc = new Map<string, Acc>();
  const get = (name: string): Acc => {
    let a = acc.get(name);
    if (!a) acc.set(name, (a = { name, aliases: [], tags: [], categories: [], images: new Map() }));
    return a;
  };
  const cleanTag = (t: string) => (/^\*.*\*$/.test(t.trim()) ? '' : t.trim());

  // lucide-static: icons/<name>.svg, tags.json {name: tags[]}
  {
    const dir = glyphPackageDir('lucide-static');
    const tags = readJson<Record<string, string[]>>(join(dir, 'tags.json'));
    for (const f of readdirSync(join(dir, 'icons'))
      .filter((f) => f.endsWith('.svg'))
      .sort()) {
      const name = f.slice(0, -4);
      const a = get(name);
      a.tags.push(...(tags[name] ?? []).map(cleanTag));
      a.images.set('lucide', { kind: 'svg', svg: svgFile(join(dir, 'icons', f), size) });
    }
  }
  // @phosphor-icons/core: the catalogue (name, categories, tags) and assets/<weight>/<name>[-<weight>].svg
  {
    const dir = glyphPackageDir('@phosphor-icons/core');
    const { icons } = require(join(dir, 'dist', 'index.umd.js')) as { icons: PhosphorIcon[] };
    for (const ic of [...icons].sort((x, y) => (x.name < y.name ? -1 : 1))) {
      const a = get(ic.name);
      a.tags.push(...ic.tags.map(cleanTag));
      a.categories.push(...ic.categories, ...(ic.figma_category ? [ic.figma_category] : []));
      for (const w of PHOSPHOR_WEIGHTS) {
        const p = join(dir, 'assets', w, w === 'regular' ? `${ic.name}.svg` : `${ic.name}-${w}.svg`);
        if (existsSync(p)) a.images.set(`phosphor-${w}`, { kind: 'svg', svg: svgFile(p, size) });
      }
    }
  }
  // @mdi/svg: meta.json (name, aliases, tags = categories), svg/<name>.svg
  {
    const dir = glyphPackageDir('@mdi/svg');
    const meta = readJson<MdiIcon[]>(join(dir, 'meta.json'));
    const nameOf = new Map(meta.map((m) => [m.id, m.name]));
    for (const ic of [...meta].sort((x, y) => (x.name < y.name ? -1 : 1))) {
      if (ic.deprecated) continue;
      const p = join(dir, 'svg', `${ic.name}.svg`);
      if (!existsSync(p)) continue;
      const a = get(ic.name);
      a.aliases.push(...ic.aliases);
      a.base = ic.baseIconId ? nameOf.get(ic.baseIconId) : undefined;
      a.categories.push(...ic.tags);
      a.images.set('mdi', { kind: 'svg', svg: svgFile(p, size) });
    }
  }

  const out: GlyphConceptSource[] = [];
  for (const a of acc.values()) {
    if (a.images.size === 0) continue;
    const name = words(a.name);
    const c = new Captions();
    c.add(name);
    c.add(`${name} icon`);
    for (const al of a.aliases) c.add(words(al));
    c.tags([...new Set(a.tags.filter(Boolean).map(normCaption))]);
    for (const cat of [...new Set(a.categories.map(normCaption))]) c.add(`${cat} icon: ${name}`);
    c.fill([`an icon of ${name}`, `the ${name} symbol`, `the ${name} pictogram`, `a simple drawing of ${name}`]);
    out.push({
      key: `icon:${a.name}`,
      kind: 'icon',
      name,
      group: slug(a.base ?? a.name),
      captions: c.list,
      images: GLYPH_STYLES.filter((s) => a.images.has(s.style)).map((s) => ({
        style: s.style,
        file: `images/${s.style}/${slug(a.name)}.png`,
        input: a.images.get(s.style)!,
      })),
    });
  }
  return out;
}
