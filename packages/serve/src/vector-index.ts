/**
 * An on-disk search index of a collection, embedded by one exported model (usearch HNSW, cosine):
 *   index.json      format, the model (its folder and the sha256 of its files), the images (id, path,
 *                   captions) and the captions (text, image row)
 *   images.usearch  image embeddings, key = image row
 *   texts.usearch   caption embeddings, key = caption row
 * Queries embed with the same model; another model (a different hash) is refused.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, resolve } from 'node:path';
import { DistillError, atomicWriteJson, readJsonFile, type ImageItem } from '@distill/core';
import { ImageLoader } from '@distill/data';
import { Index, MetricKind, ScalarKind } from 'usearch';
import { OnnxModel, modelHash } from './model.js';

export const INDEX_FORMAT = 'distill-index-v1';

export interface IndexedImage {
  id: string;
  /** Absolute path of the image file. */
  path: string;
  captions: string[];
}

export interface IndexedText {
  text: string;
  /** Row in `images` of the image it describes (-1: none). */
  image: number;
}

export interface IndexMeta {
  format: typeof INDEX_FORMAT;
  model: { dir: string; hash: string; name: string; dim: number };
  hnsw: { connectivity: number; expansionAdd: number; expansionSearch: number };
  sources: string[];
  images: IndexedImage[];
  texts: IndexedText[];
}

export const HNSW_DEFAULTS = { connectivity: 16, expansionAdd: 128, expansionSearch: 64 };

/** Items to add: images (with their captions) and captions of those images. */
export interface Collection {
  source: string;
  images: ImageItem[];
  captions: { text: string; image: number }[];
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif', '.bmp', '.tif', '.tiff']);

/** Every image under `folder` (recursively, sorted); `<name>.txt` beside an image gives its captions, one per line. */
export function folderCollection(folder: string): Collection {
  if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new DistillError(`Image folder not found: ${folder}.`, 2);
  const root = resolve(folder);
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (IMAGE_EXT.has(extname(e.name).toLowerCase())) files.push(p);
    }
  };
  walk(root);
  if (files.length === 0) throw new DistillError(`${folder} holds no images (${[...IMAGE_EXT].join(', ')}).`, 2);
  const images = files.map((p) => ({ id: relative(root, p), path: p }));
  const captions: Collection['captions'] = [];
  images.forEach((im, i) => {
    const txt = im.path.slice(0, -extname(im.path).length) + '.txt';
    if (!existsSync(txt)) return;
    for (const line of readFileSync(txt, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean)) captions.push({ text: line, image: i });
  });
  return { source: `images:${root}`, images, captions };
}

function newHnsw(dim: number, h: IndexMeta['hnsw']): Index {
  return new Index({ dimensions: dim, metric: MetricKind.Cos, quantization: ScalarKind.F32, multi: false, connectivity: h.connectivity, expansion_add: h.expansionAdd, expansion_search: h.expansionSearch });
}

export interface SearchHit {
  rank: number;
  score: number;
  /** Image results: the image's id, path and captions. Caption results: the caption and its image. */
  id: string;
  path: string;
  captions?: string[];
  text?: string;
}

export interface SearchResult {
  query: { text?: string; image?: string };
  target: 'images' | 'texts';
  k: number;
  model: string;
  results: SearchHit[];
  /** Embedding + search time of this query (not part of the ranking). */
  ms: { embed: number; search: number };
}

export class VectorIndex {
  private constructor(
    readonly dir: string,
    readonly meta: IndexMeta,
    private readonly images: Index,
    private readonly texts: Index,
  ) {}

  get dim(): number {
    return this.meta.model.dim;
  }

  static exists(dir: string): boolean {
    return existsSync(join(dir, 'index.json'));
  }

  static open(dir: string): VectorIndex {
    if (!VectorIndex.exists(dir)) throw new DistillError(`No index at ${dir} (index.json missing). Build one with \`distill index build --model <exported-model> --dataset emoji --split test --out ${dir}\`.`, 2);
    const meta = readJsonFile<IndexMeta>(join(dir, 'index.json'));
    if (meta.format !== INDEX_FORMAT) throw new DistillError(`${join(dir, 'index.json')}: unknown index format '${String(meta.format)}'. Rebuild the index.`, 2);
    const load = (f: string, n: number) => {
      const idx = newHnsw(meta.model.dim, meta.hnsw);
      if (n > 0) {
        if (!existsSync(join(dir, f))) throw new DistillError(`${join(dir, f)} is missing: rebuild the index.`, 2);
        idx.load(join(dir, f));
        if (idx.size() !== n) throw new DistillError(`${join(dir, f)} holds ${idx.size()} vectors but index.json lists ${n}: the index is damaged, rebuild it.`, 2);
      }
      return idx;
    };
    return new VectorIndex(dir, meta, load('images.usearch', meta.images.length), load('texts.usearch', meta.texts.length));
  }

  static create(dir: string, model: OnnxModel, hnsw = HNSW_DEFAULTS): VectorIndex {
    const meta: IndexMeta = {
      format: INDEX_FORMAT,
      model: { dir: resolve(model.dir), hash: model.hash, name: model.spec.name, dim: model.dim },
      hnsw,
      sources: [],
      images: [],
      texts: [],
    };
    return new VectorIndex(dir, meta, newHnsw(model.dim, hnsw), newHnsw(model.dim, hnsw));
  }

  /** Throws unless `model` is the model this index was built with. */
  checkModel(model: { hash: string; dir: string }): void {
    if (model.hash !== this.meta.model.hash) {
      throw new DistillError(
        `The index ${this.dir} was built with the model ${this.meta.model.dir} (sha256 ${this.meta.model.hash.slice(0, 12)}), not ${model.dir} (sha256 ${model.hash.slice(0, 12)}): ` +
          'its vectors cannot be compared with another model\'s. Query with the model that built it, or rebuild the index with this one.',
        2,
      );
    }
  }

  /** The model this index was built with (its folder, checked against the recorded hash); `dir` overrides the folder. */
  async loadModel(dir?: string, opts: { threads?: number } = {}): Promise<OnnxModel> {
    const d = dir ?? this.meta.model.dir;
    if (!existsSync(d)) throw new DistillError(`The index's model folder ${d} is gone: pass --model <the exported model that built ${this.dir}>.`, 2);
    this.checkModel({ dir: d, hash: modelHash(d) });
    return OnnxModel.load(d, opts);
  }

  /** Embed and add a collection; images whose id is already indexed are skipped. Returns what was added. */
  async add(model: OnnxModel, c: Collection, opts: { batch?: number; onProgress?: (done: number, total: number) => void } = {}): Promise<{ images: number; texts: number }> {
    this.checkModel(model);
    const batch = opts.batch ?? 64;
    const known = new Set(this.meta.images.map((i) => i.id));
    const newRows = c.images.map((im, i) => (known.has(im.id) ? -1 : i)).filter((i) => i >= 0);
    const rowOf = new Map<number, number>(); // collection image -> index row
    const loader = new ImageLoader({ imageRoot: '/', splits: {} }, model.preprocess, { concurrency: 8 });
    const total = newRows.length;
    for (let s = 0; s < newRows.length; s += batch) {
      const rows = newRows.slice(s, s + batch);
      const items = rows.map((r) => c.images[r]);
      const px = await loader.load(items);
      const emb = await model.encodeImages(px, items.length);
      const keys = new BigUint64Array(items.length);
      items.forEach((it, j) => {
        const row = this.meta.images.length;
        keys[j] = BigInt(row);
        rowOf.set(rows[j], row);
        this.meta.images.push({ id: it.id, path: resolve(it.path), captions: [] });
      });
      this.images.add(keys, emb);
      opts.onProgress?.(Math.min(s + batch, total), total);
    }
    const caps = c.captions.filter((x) => rowOf.has(x.image));
    for (let s = 0; s < caps.length; s += 256) {
      const part = caps.slice(s, s + 256);
      const emb = await model.encodeTexts(part.map((x) => x.text));
      const keys = new BigUint64Array(part.length);
      part.forEach((x, j) => {
        const row = rowOf.get(x.image)!;
        keys[j] = BigInt(this.meta.texts.length);
        this.meta.texts.push({ text: x.text, image: row });
        this.meta.images[row].captions.push(x.text);
      });
      this.texts.add(keys, emb);
    }
    if (!this.meta.sources.includes(c.source)) this.meta.sources.push(c.source);
    return { images: newRows.length, texts: caps.length };
  }

  save(): void {
    mkdirSync(this.dir, { recursive: true });
    if (this.meta.images.length) this.images.save(join(this.dir, 'images.usearch'));
    if (this.meta.texts.length) this.texts.save(join(this.dir, 'texts.usearch'));
    atomicWriteJson(join(this.dir, 'index.json'), this.meta);
  }

  /** Nearest `k` of a normalised query vector among the images or the captions. */
  searchVector(q: Float32Array, k: number, target: 'images' | 'texts'): SearchHit[] {
    const idx = target === 'images' ? this.images : this.texts;
    const n = target === 'images' ? this.meta.images.length : this.meta.texts.length;
    if (n === 0) return [];
    const m = idx.search(q, Math.min(k, n), 0);
    return Array.from(m.keys, (key, i) => {
      const score = Math.round((1 - m.distances[i]) * 1e6) / 1e6;
      if (target === 'images') {
        const im = this.meta.images[Number(key)];
        return { rank: i + 1, score, id: im.id, path: im.path, captions: im.captions };
      }
      const t = this.meta.texts[Number(key)];
      const im = this.meta.images[t.image];
      return { rank: i + 1, score, id: im?.id ?? '', path: im?.path ?? '', text: t.text };
    });
  }

  /** Text -> images, or an image file -> captions (`target: 'texts'`) or -> images. */
  async search(model: OnnxModel, query: { text?: string; image?: string }, k: number, target?: 'images' | 'texts'): Promise<SearchResult> {
    if (!Number.isInteger(k) || k < 1) throw new DistillError(`k must be a positive integer, got ${k}.`, 2);
    if (!query.text === !query.image) throw new DistillError('Give exactly one query: a text (--text) or an image file (--image).', 2);
    const t0 = performance.now();
    let q: Float32Array;
    if (query.text !== undefined) {
      if (!query.text.trim()) throw new DistillError('The query text is empty.', 2);
      q = await model.encodeTexts([query.text]);
    } else {
      if (!existsSync(query.image!)) throw new DistillError(`Image not found: ${query.image}.`, 2);
      const loader = new ImageLoader({ imageRoot: '/', splits: {} }, model.preprocess);
      q = await model.encodeImages(await loader.load([{ id: 'query', path: resolve(query.image!) }]), 1);
    }
    const t1 = performance.now();
    const to = target ?? (query.text !== undefined ? 'images' : 'texts');
    const results = this.searchVector(q, k, to);
    const t2 = performance.now();
    return { query, target: to, k, model: this.meta.model.hash, results, ms: { embed: +(t1 - t0).toFixed(3), search: +(t2 - t1).toFixed(3) } };
  }
}
