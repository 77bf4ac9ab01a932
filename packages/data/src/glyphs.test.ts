import { describe, it, expect, beforeAll } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import sharp from 'sharp';
import { DistillError, sha256 } from '@distill/base';
import {
  assignGlyphSplits,
  buildGlyphs,
  GLYPH_STYLES,
  glyphPackageDir,
  glyphSources,
  glyphSplitsOf,
  loadDataset,
  loadGlyphs,
  manifestHashOf,
  readGlyphConcepts,
  type GlyphConceptSource,
  type GlyphsManifest,
} from './index.js';

// A small build: the first 12 concepts (by key) of each of the 14 styles, val/test of 6 concepts each.
const SAMPLE = { sample: 12, evalSize: 6, progress: null } as const;
const tmp = (p: string) => mkdtempSync(join(tmpdir(), `glyphs-${p}-`));

describe('glyphs: a sample build', () => {
  let a: { dir: string; manifest: GlyphsManifest; built: boolean };
  beforeAll(async () => {
    a = await buildGlyphs({ ...SAMPLE, cacheDir: tmp('a') });
  }, 60_000);

  it('draws every source, each image 64x64, and records each source with its version and licence', async () => {
    const m = a.manifest;
    expect(a.built).toBe(true);
    expect(Object.keys(m.imagesPerStyle).sort()).toEqual(GLYPH_STYLES.map((s) => s.style).sort());
    expect(m.sources.map((s) => [s.package, s.licence])).toEqual([
      ['emojibase-data', 'MIT'],
      ['emoji-datasource-google', 'Apache-2.0'],
      ['emoji-datasource-twitter', 'CC-BY-4.0'],
      ['@iconify-json/noto', 'Apache-2.0'],
      ['@iconify-json/fluent-emoji-flat', 'MIT'],
      ['@iconify-json/openmoji', 'CC-BY-SA-4.0'],
      ['@iconify-json/emojione', 'CC-BY-4.0'],
      ['lucide-static', 'ISC'],
      ['@phosphor-icons/core', 'MIT'],
      ['@mdi/svg', 'Apache-2.0'],
    ]);
    for (const s of m.sources) expect(s.version).toMatch(/^\d+\.\d+\.\d+/);
    const table = readGlyphConcepts(a.dir);
    for (const style of ['google', 'noto', 'lucide', 'phosphor-duotone', 'mdi']) {
      const im = table.flatMap((c) => c.images).find((i) => i.style === style)!;
      const meta = await sharp(join(a.dir, im.file)).metadata();
      expect([style, meta.width, meta.height, meta.format]).toEqual([style, 64, 64, 'png']);
    }
    // a drawing is not blank: an SVG icon has dark pixels on its transparent background
    const mdi = table.flatMap((c) => c.images).find((i) => i.style === 'mdi')!;
    const { data } = await sharp(join(a.dir, mdi.file))
      .flatten({ background: '#ffffff' })
      .greyscale()
      .raw()
      .toBuffer({ resolveWithObject: true });
    expect(Math.min(...data)).toBeLessThan(64);
    expect(Math.max(...data)).toBe(255);
  });

  it('leaves out Tabler: no source, no file, and reading it is refused', () => {
    expect(a.manifest.excluded).toContain('@iconify-json/tabler');
    expect(JSON.stringify(a.manifest.sources)).not.toMatch(/tabler/i);
    expect(readFileSync(join(a.dir, 'concepts.jsonl'), 'utf8')).not.toMatch(/tabler/i);
    expect(() => glyphPackageDir('@iconify-json/tabler')).toThrow(DistillError);
    expect(() => glyphPackageDir('@tabler/icons')).toThrow(/reserved for an independent check/);
    expect(glyphSources().some((s) => /tabler/i.test(s.package))).toBe(false);
  });

  it('gives every train image >= 5 distinct captions and every val/test image exactly 5, one image per eval concept', async () => {
    for (const v of ['glyphs', 'glyphs-xstyle'] as const) {
      const d = await loadGlyphs(v, { ...SAMPLE, cacheDir: join(a.dir, '..', '..'), build: false });
      for (const [split, s] of Object.entries(d.splits)) {
        const per = new Map<number, string[]>();
        for (const c of s.captions) per.set(c.image, [...(per.get(c.image) ?? []), c.text]);
        expect(per.size).toBe(s.images.length);
        for (const caps of per.values()) {
          expect(new Set(caps).size).toBe(caps.length);
          if (split === 'train') expect(caps.length).toBeGreaterThanOrEqual(5);
          else expect(caps.length).toBe(5);
        }
        if (split !== 'train') expect(new Set(s.images.map((i) => i.id.split('/')[0])).size).toBe(6);
      }
      expect(d.splits.test.images).toHaveLength(6);
      expect(d.splits.val.images).toHaveLength(6);
      for (const i of d.splits.train.images) expect(existsSync(join(d.imageRoot, i.path))).toBe(true);
    }
  });

  it('splits by concept: no val/test concept in glyphs train; in glyphs-xstyle each test concept is trained on in other styles', async () => {
    const cacheDir = join(a.dir, '..', '..');
    const g = await loadGlyphs('glyphs', { ...SAMPLE, cacheDir, build: false });
    const x = await loadGlyphs('glyphs-xstyle', { ...SAMPLE, cacheDir, build: false });
    const concepts = (s: { images: { id: string }[] }) => new Set(s.images.map((i) => i.id.split('/')[0]));
    const groupOf = new Map(readGlyphConcepts(a.dir).map((c) => [c.key, c.group]));
    // an MDI variant is in its base icon's group: the family is never split between train and test
    expect([groupOf.get('icon:access-point-network-off'), groupOf.get('icon:access-point')]).toEqual([
      'access-point',
      'access-point',
    ]);
    const trainGroups = new Set([...concepts(g.splits.train)].map((k) => groupOf.get(k)));
    for (const s of ['val', 'test'])
      for (const k of concepts(g.splits[s])) expect(trainGroups.has(groupOf.get(k))).toBe(false);
    const xtrain = x.splits.train.images;
    for (const im of x.splits.test.images) {
      const [key, style] = im.id.split('/');
      const others = xtrain.filter((t) => t.id.split('/')[0] === key);
      expect(others.length).toBeGreaterThanOrEqual(1);
      expect(others.some((t) => t.id.endsWith(`/${style}`) || t.path === im.path)).toBe(false);
    }
    expect(x.manifestHash).not.toBe(g.manifestHash);
  });

  it('is deterministic: a second build elsewhere has the same hashes; a rebuild in place is a no-op', async () => {
    const b = await buildGlyphs({ ...SAMPLE, cacheDir: tmp('b') });
    expect(b.manifest.manifestHash).toBe(a.manifest.manifestHash);
    expect(b.manifest.pixelsSha256).toBe(a.manifest.pixelsSha256);
    expect(readFileSync(join(b.dir, 'concepts.jsonl'), 'utf8')).toBe(
      readFileSync(join(a.dir, 'concepts.jsonl'), 'utf8'),
    );
    const g = await loadGlyphs('glyphs', { ...SAMPLE, cacheDir: join(b.dir, '..', '..'), build: false });
    const ga = await loadGlyphs('glyphs', { ...SAMPLE, cacheDir: join(a.dir, '..', '..'), build: false });
    expect(g.manifestHash).toBe(ga.manifestHash); // image paths are relative to the build folder
    const mtime = statSync(join(a.dir, 'manifest.json')).mtimeMs;
    const again = await buildGlyphs({ ...SAMPLE, cacheDir: join(a.dir, '..', '..') });
    expect(again.built).toBe(false);
    expect(again.manifest).toEqual(a.manifest);
    expect(statSync(join(a.dir, 'manifest.json')).mtimeMs).toBe(mtime);
  });

  it('a killed build resumes from its partial folder to the same result; a damaged build says what to do', async () => {
    const cacheDir = tmp('resume');
    await expect(buildGlyphs({ ...SAMPLE, cacheDir, stopAfter: 40 })).rejects.toThrow(/run it again to resume/);
    const parent = join(cacheDir, 'glyphs');
    const partial = readdirSync(parent).find((f) => f.endsWith('.partial'))!;
    expect(partial).toBeDefined();
    const files = (d: string): number =>
      readdirSync(d, { withFileTypes: true }).reduce(
        (n, e) => n + (e.isDirectory() ? files(join(d, e.name)) : e.name.endsWith('.png') ? 1 : 0),
        0,
      );
    expect(files(join(parent, partial))).toBe(40);
    await expect(loadGlyphs('glyphs', { ...SAMPLE, cacheDir, build: false })).rejects.toThrow(
      /not built yet.*distill data build glyphs/,
    );
    // what a kill in the middle of a write leaves: a temp file beside the images (and no finished manifest)
    const stray = join(parent, partial, 'images', 'x.png.123.abc.tmp');
    writeFileSync(stray, 'half an image');
    let shown = '';
    const stream = new Writable({ write: (chunk, _enc, cb) => ((shown += String(chunk)), cb()) });
    const done = await buildGlyphs({ ...SAMPLE, cacheDir, progress: stream });
    expect(existsSync(join(done.dir, 'images', 'x.png.123.abc.tmp'))).toBe(false);
    expect(done.built).toBe(true);
    // the 40 images of the killed build count as done, the rest as new work
    expect(shown).toMatch(new RegExp(`glyphs: images ${done.manifest.images}/${done.manifest.images} \\(100%\\)`));
    expect(done.manifest.manifestHash).toBe(a.manifest.manifestHash);
    expect(done.manifest.pixelsSha256).toBe(a.manifest.pixelsSha256);
    expect(readdirSync(parent)).toEqual([partial.replace(/\.partial$/, '')]);
  });
});

describe('glyphs splits (rules, on a made-up table)', () => {
  const concept = (key: string, group: string, styles: number): GlyphConceptSource => ({
    key,
    kind: 'icon',
    name: key,
    group,
    captions: [
      key,
      `${key} icon`,
      `an icon of ${key}`,
      `the ${key} symbol`,
      `${group} icon: ${key}`,
      'shared tag',
      `${key} glyph`,
      `a drawing of ${key}`,
      `${key} sign`,
    ],
    images: Array.from({ length: styles }, (_, s) => ({
      style: `s${s}`,
      file: `images/s${s}/${key}.png`,
      input: { kind: 'svg' as const, svg: '' },
    })),
  });
  const table = Array.from({ length: 60 }, (_, i) =>
    concept(`c${String(i).padStart(2, '0')}`, `g${Math.floor(i / 2)}`, 1 + (i % 3)),
  );

  it('keeps a group in one split, fills val/test exactly, and picks 5 captions unique within the split', () => {
    const s = assignGlyphSplits(table, 10);
    for (const f of ['split', 'xsplit'] as const) {
      expect(s.filter((x) => x[f] === 'test')).toHaveLength(10);
      expect(s.filter((x) => x[f] === 'val')).toHaveLength(10);
      for (let i = 0; i < table.length; i += 2) expect(s[i][f]).toBe(s[i + 1][f]);
    }
    for (const x of s.filter((x) => x.split !== 'train')) {
      expect(x.eval!.captions).toHaveLength(5);
      expect(x.eval!.captions).not.toContain('shared tag');
      expect(x.eval!.captions[0]).toBe(table[s.indexOf(x)].key); // the name, always (it is unique)
    }
    // xstyle: only groups whose concepts all have >= 2 styles (c0 has 1 style, so group g0 never)
    expect(s[0].xsplit).toBe('train');
    expect(assignGlyphSplits(table, 10)).toEqual(s);
  });

  it('refuses a table too small for the eval size, and builds Flickr-style splits from the table', () => {
    expect(() => assignGlyphSplits(table.slice(0, 10), 10)).toThrow(/only \d+ test and \d+ val concepts/);
    const s = assignGlyphSplits(table, 10);
    const rows = table.map((c, i) => ({
      ...c,
      images: c.images.map((im) => ({ style: im.style, file: im.file, sha256: '' })),
      ...s[i],
    }));
    const g = glyphSplitsOf(rows, 'glyphs');
    expect(g.test.images).toHaveLength(10);
    expect(g.test.captions).toHaveLength(50);
    const x = glyphSplitsOf(rows, 'glyphs-xstyle');
    const all = rows.reduce((n, c) => n + c.images.length, 0);
    expect(x.train.images.length + x.val.images.length + x.test.images.length).toBe(all);
  });
});

describe('glyphs in the dataset registry', () => {
  it('lists glyphs and glyphs-xstyle, and refuses data flags (it reads no files of yours)', async () => {
    await expect(loadDataset('glyphs', { dataRoot: '/data/f30k' })).rejects.toThrow(
      /built in and reads no files, but --data-root was given/,
    );
  });

  it('loads a sample build through loadDataset with DISTILL_GLYPHS_SAMPLE and the cache dir', async () => {
    const cacheDir = tmp('registry');
    process.env.DISTILL_GLYPHS_SAMPLE = '12';
    try {
      const d = await loadDataset('glyphs', { cacheDir });
      expect(d.splits.test.images).toHaveLength(6);
      expect(d.name).toBe('glyphs');
      process.env.DISTILL_GLYPHS_SAMPLE = '2';
      await expect(loadDataset('glyphs', { cacheDir })).rejects.toThrow(
        /DISTILL_GLYPHS_SAMPLE must be an integer >= 4/,
      );
    } finally {
      delete process.env.DISTILL_GLYPHS_SAMPLE;
    }
  });
});

describe('manifestHashOf at glyphs scale', () => {
  it('hashes splits of 300k captions (no call-stack overflow) with the same rows as before', () => {
    const big = {
      images: Array.from({ length: 30_000 }, (_, i) => ({ id: `i${i}`, path: `p${i}.png` })),
      captions: Array.from({ length: 300_000 }, (_, k) => ({ text: `t${k}`, image: k % 30_000 })),
    };
    expect(manifestHashOf('big', { train: big })).toMatch(/^[0-9a-f]{64}$/);
    const small = {
      images: [{ id: 'a', path: 'a.png' }],
      captions: [
        { text: 'x', image: 0 },
        { text: 'y', image: 0 },
      ],
    };
    expect(manifestHashOf('n', { test: small, train: small })).toBe(
      sha256(['n', '#test', 'a\ta.png', '##', '0\tx', '0\ty', '#train', 'a\ta.png', '##', '0\tx', '0\ty'].join('\n')),
    );
  });
});
