/**
 * An on-disk search index of a collection, embedded by one exported model. A folder of:
 *   index.json                   format, the model (its folder, the sha256 of its files), the sources, the images
 *                                (id = sha256 of the file's bytes, name, source, captions), the captions, every
 *                                file seen (size, mtime: a rerun skips what is done), the vector and graph files
 *                                with their sha256, and its own checksum
 *   vectors/<kind>-<row>-<n>.f32 the unit embeddings, appended one chunk per commit (never rewritten)
 *   <kind>-<rows>.usearch        usearch HNSW (cosine) over the first <rows> vectors, written when a build ends
 *   thumbs/<id[0:2]>/<id>.webp   thumbnails (<= 256 px)
 * Every file is new when written; index.json is replaced atomically last, so a failure at any point (ENOSPC,
 * kill) leaves the previous index whole and answering. Opening verifies every checksum. Queries embed with the
 * same model; another model (a different hash) is refused.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { acquireRunLock, atomicWriteFile, createProgress, DistillError, sha256, type RunLock } from '@distill/core';
import { Index, MetricKind, ScalarKind } from 'usearch';
import { decodeUpright, imageErrorReason, normalise, sidecarCaptions, thumbnail, walkImages } from './images.js';
import { OnnxModel, modelHash } from './model.js';

export const INDEX_FORMAT = 'distill-index-v2';

export interface IndexedImage {
  /** The first 16 hex digits of the sha256 of the file's bytes (unique across every folder added). */
  id: string;
  /** Its name in its source: the path relative to the folder, or the dataset's image id. */
  name: string;
  /** Row in `sources`. */
  source: number;
  /** Absolute path of the file on this machine (never sent by the server). */
  path: string;
  captions: string[];
  /** A thumbnail was written (thumbs/<id[0:2]>/<id>.webp). */
  thumb: boolean;
}

export interface IndexedText {
  text: string;
  /** Row in `images` of the image it describes. */
  image: number;
}

/** A file seen by a build: what became of it (a rerun skips it while its size and mtime are unchanged). */
export interface SeenFile {
  source: number;
  name: string;
  size: number;
  mtime: number;
  /** The image row it was indexed as (its own, or the row of an identical picture). */
  row?: number;
  /** Why it could not be read (skipped with --skip-bad-images). */
  skipped?: string;
}

interface FileRef {
  file: string;
  rows: number;
  sha256: string;
}

export interface IndexMeta {
  format: typeof INDEX_FORMAT;
  model: { dir: string; hash: string; name: string; dim: number };
  hnsw: { connectivity: number; expansionAdd: number; expansionSearch: number };
  sources: string[];
  images: IndexedImage[];
  texts: IndexedText[];
  files: SeenFile[];
  vectors: { images: FileRef[]; texts: FileRef[] };
  graphs: { images?: FileRef; texts?: FileRef };
  /** sha256 of this document without this field. */
  checksum?: string;
}

export const HNSW_DEFAULTS = { connectivity: 16, expansionAdd: 128, expansionSearch: 64 };

/** Items to add: images (name + file) and captions of those images (by position in `images`). */
export interface Collection {
  source: string;
  images: { id: string; path: string }[];
  captions: { text: string; image: number }[];
}

/** Every image under `folder` (recursively, sorted); `<name>.txt` beside an image gives its captions, one per line. */
export function folderCollection(folder: string): Collection {
  const files = walkImages(folder);
  if (files.length === 0)
    throw new DistillError(`${folder} holds no images (JPEG, PNG, WebP, GIF, SVG, AVIF, TIFF).`, 2);
  const captions: Collection['captions'] = [];
  files.forEach((f, i) => {
    for (const text of sidecarCaptions(f.path)) captions.push({ text, image: i });
  });
  return { source: `images:${resolve(folder)}`, images: files.map((f) => ({ id: f.name, path: f.path })), captions };
}

function newHnsw(dim: number, h: IndexMeta['hnsw']): Index {
  return new Index({
    dimensions: dim,
    metric: MetricKind.Cos,
    quantization: ScalarKind.F32,
    multi: false,
    connectivity: h.connectivity,
    expansion_add: h.expansionAdd,
    expansion_search: h.expansionSearch,
  });
}

export interface SearchHit {
  rank: number;
  /** Cosine similarity of the query's and the result's unit embeddings (-1..1). */
  score: number;
  /** The image's id (caption results: the id of the image it describes). */
  id: string;
  /** The image's name in its source (relative path or dataset id). */
  name: string;
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

export interface AddOptions {
  /** Images per encoder run (default 64). */
  batch?: number;
  /** Skip (and list) unreadable images instead of stopping. */
  skipBadImages?: boolean;
  /** Commit to disk after this many new images (default: 2048, or 30 s, whichever first). */
  commitEvery?: number;
  /** Progress stream (default stderr; a bar on a TTY, a line every 10 s otherwise); false: none. */
  progress?: NodeJS.WritableStream | false;
  /** Write thumbnails (default true). */
  thumbnails?: boolean;
  /** Stop after the next commit when it returns true (SIGINT/SIGTERM). */
  stop?: () => boolean;
}

export interface AddReport {
  images: number;
  texts: number;
  /** Files skipped because an earlier build already did them. */
  done: number;
  /** Files whose picture was already indexed under another name (their captions join it). */
  duplicates: { name: string; of: string }[];
  /** Names that another source already holds with a different picture: both are kept (different ids). */
  collisions: { name: string; source: string; other: string }[];
  /** Unreadable files of this source (this build's and earlier builds'), with why. */
  skipped: { name: string; path: string; why: string }[];
  stopped: boolean;
}

const CHECKSUM_OF = (m: IndexMeta) => sha256(JSON.stringify({ ...m, checksum: undefined }));
const pad = (n: number) => String(n).padStart(9, '0');

/** A damaged file of an index: one line, with what to do. */
function damaged(dir: string, file: string, why: string): DistillError {
  return new DistillError(
    `The index ${dir} is damaged: ${file} ${why}. Rebuild it (distill index build --out <new folder> with the same sources).`,
    2,
  );
}

class Vectors {
  data: Float32Array;
  rows = 0;
  constructor(readonly dim: number) {
    this.data = new Float32Array(dim * 64);
  }
  push(v: Float32Array): void {
    const need = (this.rows + v.length / this.dim) * this.dim;
    if (need > this.data.length) {
      const next = new Float32Array(Math.max(need, this.data.length * 2));
      next.set(this.data.subarray(0, this.rows * this.dim));
      this.data = next;
    }
    this.data.set(v, this.rows * this.dim);
    this.rows += v.length / this.dim;
  }
  slice(from: number, to = this.rows): Float32Array {
    return this.data.slice(from * this.dim, to * this.dim);
  }
}

export class VectorIndex {
  private readonly vec: { images: Vectors; texts: Vectors };
  private readonly hnsw: { images: Index; texts: Index };
  /** Rows in each HNSW. */
  private readonly inGraph = { images: 0, texts: 0 };
  private lock?: RunLock;

  private constructor(
    readonly dir: string,
    readonly meta: IndexMeta,
  ) {
    this.vec = { images: new Vectors(meta.model.dim), texts: new Vectors(meta.model.dim) };
    this.hnsw = { images: newHnsw(meta.model.dim, meta.hnsw), texts: newHnsw(meta.model.dim, meta.hnsw) };
  }

  get dim(): number {
    return this.meta.model.dim;
  }

  static exists(dir: string): boolean {
    return existsSync(join(dir, 'index.json'));
  }

  /** Open and verify an index: index.json's checksum, every vector file's and graph file's sha256 and size. */
  static open(dir: string): VectorIndex {
    if (!VectorIndex.exists(dir))
      throw new DistillError(
        `No index at ${dir} (index.json missing). Build one with \`distill index build --model <exported-model> --images <folder> --out ${dir}\`.`,
        2,
      );
    const file = join(dir, 'index.json');
    let meta: IndexMeta;
    try {
      meta = JSON.parse(readFileSync(file, 'utf8')) as IndexMeta;
    } catch (e) {
      throw damaged(dir, 'index.json', `is not valid JSON (${(e as Error).message.split('\n')[0]})`);
    }
    if (!meta || typeof meta !== 'object') throw damaged(dir, 'index.json', 'is not an index document');
    if (meta.format !== INDEX_FORMAT) {
      const old = String(meta.format) === 'distill-index-v1';
      throw new DistillError(
        `${file}: ${old ? 'an index of an older distill (distill-index-v1)' : `unknown index format '${String(meta.format)}'`}. Rebuild the index with \`distill index build\` into a new folder.`,
        2,
      );
    }
    if (meta.checksum !== CHECKSUM_OF(meta))
      throw damaged(dir, 'index.json', 'does not match its checksum (edited or corrupted)');
    const idx = new VectorIndex(dir, meta);
    for (const kind of ['images', 'texts'] as const) {
      for (const ref of meta.vectors[kind]) {
        const buf = VectorIndex.readVerified(dir, ref, ref.rows * meta.model.dim * 4);
        idx.vec[kind].push(new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4).slice());
      }
      const n = kind === 'images' ? meta.images.length : meta.texts.length;
      if (idx.vec[kind].rows !== n)
        throw damaged(dir, 'index.json', `lists ${n} ${kind} but its vector files hold ${idx.vec[kind].rows}`);
      const g = meta.graphs[kind];
      if (g && g.rows > 0) {
        VectorIndex.readVerified(dir, g);
        idx.hnsw[kind].load(join(dir, g.file));
        if (idx.hnsw[kind].size() !== g.rows)
          throw damaged(dir, g.file, `holds ${idx.hnsw[kind].size()} vectors, not ${g.rows}`);
        idx.inGraph[kind] = g.rows;
      }
      idx.fillGraph(kind); // rows a killed build committed after the last graph
    }
    return idx;
  }

  private static readVerified(dir: string, ref: FileRef, size?: number): Buffer {
    const p = join(dir, ref.file);
    if (!existsSync(p)) throw damaged(dir, ref.file, 'is missing');
    const buf = readFileSync(p);
    if (size !== undefined && buf.length !== size)
      throw damaged(dir, ref.file, `has ${buf.length} bytes, not ${size} (truncated?)`);
    if (sha256(buf) !== ref.sha256) throw damaged(dir, ref.file, 'does not match its sha256 (corrupted)');
    return buf;
  }

  static create(dir: string, model: OnnxModel, hnsw = HNSW_DEFAULTS): VectorIndex {
    const meta: IndexMeta = {
      format: INDEX_FORMAT,
      model: { dir: resolve(model.dir), hash: model.hash, name: model.spec.name, dim: model.dim },
      hnsw,
      sources: [],
      images: [],
      texts: [],
      files: [],
      vectors: { images: [], texts: [] },
      graphs: {},
    };
    return new VectorIndex(dir, meta);
  }

  /** The unit embeddings of the images or the captions, [rows, dim] row-major. */
  vectors(kind: 'images' | 'texts'): Float32Array {
    return this.vec[kind].slice(0);
  }

  private fillGraph(kind: 'images' | 'texts'): void {
    const from = this.inGraph[kind],
      to = this.vec[kind].rows;
    if (to <= from) return;
    const keys = new BigUint64Array(to - from);
    for (let i = 0; i < keys.length; i++) keys[i] = BigInt(from + i);
    this.hnsw[kind].add(keys, this.vec[kind].slice(from, to), 1); // one thread: the same graph for the same rows
    this.inGraph[kind] = to;
  }

  /** Throws unless `model` is the model this index was built with. */
  checkModel(model: { hash: string; dir: string }): void {
    if (model.hash !== this.meta.model.hash) {
      throw new DistillError(
        `The index ${this.dir} was built with the model ${this.meta.model.dir} (sha256 ${this.meta.model.hash.slice(0, 12)}), not ${model.dir} (sha256 ${model.hash.slice(0, 12)}): ` +
          "its vectors cannot be compared with another model's. Query with the model that built it, or rebuild the index with this one.",
        2,
      );
    }
  }

  /** The model this index was built with (its folder, checked against the recorded hash); `dir` overrides the folder. */
  async loadModel(dir?: string, opts: { threads?: number } = {}): Promise<OnnxModel> {
    const d = dir ?? this.meta.model.dir;
    if (!existsSync(d))
      throw new DistillError(
        dir
          ? `Model folder not found: ${d}. Give the exported model folder that built ${this.dir} (distill export <run-dir> --out <folder>).`
          : `The index's model folder ${d} is gone: pass --model <the exported model that built ${this.dir}>.`,
        2,
      );
    this.checkModel({ dir: d, hash: modelHash(d) });
    return OnnxModel.load(d, opts);
  }

  /** Path of an image's thumbnail (undefined when it has none). */
  thumbPath(im: IndexedImage): string | undefined {
    return im.thumb ? join(this.dir, 'thumbs', im.id.slice(0, 2), `${im.id}.webp`) : undefined;
  }

  /**
   * Embed and add a collection in batches, committing to disk as it goes: a rerun (after a kill or an
   * error) skips every file already done (same source, name, size and mtime) and recomputes nothing.
   */
  async add(model: OnnxModel, c: Collection, opts: AddOptions = {}): Promise<AddReport> {
    this.checkModel(model);
    this.lock ??= acquireRunLock(this.dir, { command: 'index build' });
    const batch = Math.max(1, opts.batch ?? 64);
    const commitEvery = opts.commitEvery ?? 2048;
    const m = this.meta;
    let src = m.sources.indexOf(c.source);
    if (src < 0) src = m.sources.push(c.source) - 1;
    const rowById = new Map(m.images.map((im, i) => [im.id, i]));
    const seen = new Map(m.files.map((f, i) => [`${f.source}\0${f.name}`, i]));
    const nameElsewhere = new Map<string, number>();
    m.images.forEach((im) => im.source !== src && nameElsewhere.set(im.name, im.source));
    const captionsOf = new Map<number, string[]>();
    for (const x of c.captions) captionsOf.set(x.image, [...(captionsOf.get(x.image) ?? []), x.text]);
    const report: AddReport = {
      images: 0,
      texts: 0,
      done: 0,
      duplicates: [],
      collisions: [],
      skipped: [],
      stopped: false,
    };

    // what is left: files never seen, or changed (size/mtime) since
    const todo: number[] = [];
    c.images.forEach((im, i) => {
      const k = seen.get(`${src}\0${im.id}`);
      if (k !== undefined) {
        const f = m.files[k];
        try {
          const st = statSync(im.path);
          if (st.size === f.size && st.mtimeMs === f.mtime) {
            report.done++;
            return;
          }
        } catch {
          // unreadable now: let the batch report it
        }
      }
      todo.push(i);
    });
    const progress =
      opts.progress === false
        ? undefined
        : createProgress({
            label: 'embedding images',
            total: c.images.length,
            initial: report.done,
            stream: opts.progress,
          });
    if (progress && report.done)
      (opts.progress || process.stderr).write(
        `resuming: ${report.done} of ${c.images.length} images of ${c.source} already done\n`,
      );
    let sinceCommit = 0;
    let lastCommit = Date.now();
    const pre = model.preprocess;
    try {
      for (let s = 0; s < todo.length; s += batch) {
        const part = todo.slice(s, s + batch);
        // read, hash, decode and thumbnail each file (sharp works on libuv's threads)
        const got = await Promise.all(
          part.map(async (i) => {
            const im = c.images[i];
            let size = 0,
              mtime = 0;
            try {
              const st = statSync(im.path);
              [size, mtime] = [st.size, st.mtimeMs];
              const buf = readFileSync(im.path);
              const id = sha256(buf).slice(0, 16);
              if (rowById.has(id)) return { i, size, mtime, id };
              const crop = await decodeUpright(buf, pre.resize, pre.crop);
              const thumb = opts.thumbnails === false ? undefined : await thumbnail(buf);
              return { i, size, mtime, id, crop, thumb };
            } catch (e) {
              return { i, size, mtime, error: imageErrorReason(e) };
            }
          }),
        );
        const fresh: { i: number; id: string; crop: Uint8Array; thumb?: Buffer }[] = [];
        const batchIds = new Map<string, number>();
        for (const g of got) {
          const im = c.images[g.i];
          const key = `${src}\0${im.id}`;
          const record = (f: Omit<SeenFile, 'source' | 'name'>) => {
            const k = seen.get(key);
            const entry = { source: src, name: im.id, ...f };
            if (k === undefined) seen.set(key, m.files.push(entry) - 1);
            else m.files[k] = entry;
          };
          if ('error' in g && g.error !== undefined) {
            if (!opts.skipBadImages) {
              this.commit();
              throw new DistillError(
                `Could not read image ${im.path}: ${g.error}. Fix or remove it, or pass --skip-bad-images to skip unreadable images (they are listed in <out>/skipped-images.txt); ` +
                  `the ${m.images.length} images indexed so far are saved, and a rerun continues from there.`,
                2,
              );
            }
            record({ size: g.size, mtime: g.mtime, skipped: g.error });
            continue;
          }
          const { id } = g as { id: string };
          const row = rowById.get(id) ?? batchIds.get(id);
          if (row !== undefined) {
            // the same picture under another name: one image, the captions of both
            const rowIm = row < m.images.length ? m.images[row] : undefined;
            if (!(rowIm && rowIm.source === src && rowIm.name === im.id))
              report.duplicates.push({ name: im.id, of: rowIm?.name ?? c.images[fresh[row - m.images.length].i].id });
            record({ size: g.size, mtime: g.mtime, row });
            continue;
          }
          const other = nameElsewhere.get(im.id);
          if (other !== undefined) report.collisions.push({ name: im.id, source: c.source, other: m.sources[other] });
          batchIds.set(id, m.images.length + fresh.length);
          fresh.push({ i: g.i, id, crop: (g as { crop: Uint8Array }).crop, thumb: (g as { thumb?: Buffer }).thumb });
          record({ size: g.size, mtime: g.mtime, row: m.images.length + fresh.length - 1 });
        }
        if (fresh.length) {
          const emb = await model.encodeImages(
            normalise(
              fresh.map((f) => f.crop),
              pre,
            ),
            fresh.length,
          );
          for (const f of fresh) {
            if (f.thumb) atomicWriteFile(join(this.dir, 'thumbs', f.id.slice(0, 2), `${f.id}.webp`), f.thumb);
            rowById.set(f.id, m.images.length);
            m.images.push({
              id: f.id,
              name: c.images[f.i].id,
              source: src,
              path: resolve(c.images[f.i].path),
              captions: [],
              thumb: Boolean(f.thumb),
            });
          }
          this.vec.images.push(emb);
          this.fillGraph('images');
          report.images += fresh.length;
        }
        // captions of this batch's files (new images, and pictures already indexed under another name)
        const caps: { text: string; row: number }[] = [];
        for (const g of got) {
          if ('error' in g && g.error !== undefined) continue;
          const row = rowById.get((g as { id: string }).id)!;
          const have = new Set(m.images[row].captions);
          for (const text of captionsOf.get(g.i) ?? [])
            if (!have.has(text)) {
              have.add(text);
              caps.push({ text, row });
            }
        }
        for (let t = 0; t < caps.length; t += 256) {
          const chunk = caps.slice(t, t + 256);
          this.vec.texts.push(await model.encodeTexts(chunk.map((x) => x.text)));
          this.fillGraph('texts');
          for (const x of chunk) {
            m.texts.push({ text: x.text, image: x.row });
            m.images[x.row].captions.push(x.text);
          }
          report.texts += chunk.length;
        }
        progress?.tick(part.length);
        sinceCommit += part.length;
        if (sinceCommit >= commitEvery || Date.now() - lastCommit > 30_000) {
          this.commit();
          sinceCommit = 0;
          lastCommit = Date.now();
        }
        if (opts.stop?.() && s + batch < todo.length) {
          report.stopped = true;
          break;
        }
      }
    } finally {
      progress?.done();
    }
    for (const f of m.files)
      if (f.source === src && f.skipped)
        report.skipped.push({
          name: f.name,
          path: c.images.find((im) => im.id === f.name)?.path ?? f.name,
          why: f.skipped,
        });
    return report;
  }

  /**
   * Write what is new (vector chunks) and then index.json (atomically): a crash before the rename leaves
   * the previous index. `graphs: true` also writes the HNSW graphs (at the end of a build).
   */
  commit(opts: { graphs?: boolean } = {}): void {
    const m = this.meta;
    mkdirSync(join(this.dir, 'vectors'), { recursive: true });
    const next: IndexMeta = {
      ...m,
      vectors: { images: [...m.vectors.images], texts: [...m.vectors.texts] },
      graphs: { ...m.graphs },
    };
    for (const kind of ['images', 'texts'] as const) {
      const have = next.vectors[kind].reduce((s, r) => s + r.rows, 0);
      const rows = this.vec[kind].rows;
      if (rows > have) {
        const data = this.vec[kind].slice(have, rows);
        const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
        const file = `vectors/${kind}-${pad(have)}-${rows - have}.f32`;
        atomicWriteFile(join(this.dir, file), bytes);
        next.vectors[kind].push({ file, rows: rows - have, sha256: sha256(bytes) });
      }
      if (opts.graphs && rows > 0 && next.graphs[kind]?.rows !== rows) {
        this.fillGraph(kind);
        const file = `${kind}-${pad(rows)}.usearch`;
        const tmp = join(this.dir, `.${file}.tmp`);
        try {
          this.hnsw[kind].save(tmp);
        } catch (e) {
          rmSync(tmp, { force: true });
          throw new DistillError(
            `Could not write ${join(this.dir, file)}: ${(e as Error).message.split('\n')[0]}. If there is no space left on the device, free some; the index as it was is unchanged and answers.`,
            2,
          );
        }
        const buf = readFileSync(tmp);
        atomicWriteFile(join(this.dir, file), buf);
        rmSync(tmp, { force: true });
        next.graphs[kind] = { file, rows, sha256: sha256(buf) };
      }
    }
    next.checksum = CHECKSUM_OF(next);
    atomicWriteFile(join(this.dir, 'index.json'), JSON.stringify(next) + '\n');
    Object.assign(m, next);
    this.removeUnreferenced();
  }

  /** Commit with the HNSW graphs (the end of a build), and release the build lock. */
  save(): void {
    try {
      this.commit({ graphs: true });
    } finally {
      this.release();
    }
  }

  release(): void {
    this.lock?.release();
    this.lock = undefined;
  }

  /** Vector and graph files that index.json no longer names (a failed or superseded write). */
  private removeUnreferenced(): void {
    const keep = new Set([...this.meta.vectors.images, ...this.meta.vectors.texts].map((r) => r.file));
    for (const g of Object.values(this.meta.graphs)) if (g) keep.add(g.file);
    const sweep = (sub: string, re: RegExp) => {
      const d = join(this.dir, sub);
      if (!existsSync(d)) return;
      for (const f of readdirSync(d)) {
        const rel = sub ? `${sub}/${f}` : f;
        if (re.test(f) && !keep.has(rel)) rmSync(join(d, f), { force: true });
      }
    };
    sweep('', /^(images|texts)-\d+\.usearch$|^\.(images|texts)-\d+\.usearch\.tmp$/);
    sweep('vectors', /^(images|texts)-\d+-\d+\.f32$/);
  }

  /** Nearest `k` of a unit query vector among the images or the captions. */
  searchVector(q: Float32Array, k: number, target: 'images' | 'texts'): SearchHit[] {
    const idx = this.hnsw[target];
    const n = this.inGraph[target];
    if (n === 0) return [];
    const m = idx.search(q, Math.min(k, n), 0);
    return Array.from(m.keys, (key, i) => {
      const score = Math.round((1 - m.distances[i]) * 1e6) / 1e6;
      if (target === 'images') {
        const im = this.meta.images[Number(key)];
        return { rank: i + 1, score, id: im.id, name: im.name, captions: im.captions };
      }
      const t = this.meta.texts[Number(key)];
      const im = this.meta.images[t.image];
      return { rank: i + 1, score, id: im.id, name: im.name, text: t.text };
    });
  }

  /** The image of an id. */
  image(id: string): IndexedImage | undefined {
    this.byId ??= new Map(this.meta.images.map((im, i) => [im.id, i]));
    const row = this.byId.get(id);
    return row === undefined ? undefined : this.meta.images[row];
  }
  private byId?: Map<string, number>;

  /** The unit embedding of an indexed image (for "more like this"). */
  imageVector(id: string): Float32Array | undefined {
    this.byId ??= new Map(this.meta.images.map((im, i) => [im.id, i]));
    const row = this.byId.get(id);
    return row === undefined ? undefined : this.vec.images.slice(row, row + 1);
  }

  /** Text -> images, or an image file -> captions (`target: 'texts'`) or -> images. */
  async search(
    model: OnnxModel,
    query: { text?: string; image?: string; imageBytes?: Buffer },
    k: number,
    target?: 'images' | 'texts',
  ): Promise<SearchResult> {
    if (!Number.isInteger(k) || k < 1) throw new DistillError(`k must be a positive integer, got ${k}.`, 2);
    if ([query.text, query.image, query.imageBytes].filter((x) => x !== undefined).length !== 1)
      throw new DistillError('Give exactly one query: a text (--text) or an image file (--image).', 2);
    const t0 = performance.now();
    let q: Float32Array;
    if (query.text !== undefined) {
      if (!query.text.trim()) throw new DistillError('The query text is empty.', 2);
      q = await model.encodeTexts([query.text]);
    } else {
      let buf = query.imageBytes;
      if (!buf) {
        if (!existsSync(query.image!)) throw new DistillError(`Image not found: ${query.image}.`, 2);
        buf = readFileSync(query.image!);
      }
      let crop: Uint8Array;
      try {
        crop = await decodeUpright(buf, model.preprocess.resize, model.preprocess.crop);
      } catch (e) {
        throw new DistillError(
          `${query.image ?? 'The upload'} is not an image distill can read (JPEG, PNG, WebP, GIF, SVG, AVIF, TIFF): ${imageErrorReason(e)}.`,
          2,
        );
      }
      q = await model.encodeImages(normalise([crop], model.preprocess), 1);
    }
    const t1 = performance.now();
    const to = target ?? (query.text !== undefined ? 'images' : 'texts');
    const results = this.searchVector(q, k, to);
    const t2 = performance.now();
    const shown = query.imageBytes
      ? { image: '(upload)' }
      : query.text !== undefined
        ? { text: query.text }
        : { image: query.image };
    return {
      query: shown,
      target: to,
      k,
      model: this.meta.model.hash,
      results,
      ms: { embed: +(t1 - t0).toFixed(3), search: +(t2 - t1).toFixed(3) },
    };
  }
}
