/**
 * `distill site`: a static folder that searches an index entirely in the browser. The student's exported
 * encoders run in the page on onnxruntime-web (wasm), the student's tokenizer on @huggingface/tokenizers,
 * and a query is matched by an exact dot product over the images' unit vectors. Any static file server
 * serves it (no distill process):
 *   index.html            the search page of distill serve, over the in-browser backend
 *   site.json             the model's preprocessing and I/O names, the images (id, name, captions)
 *   vectors.f32           image embeddings [n, dim] float32 little-endian, row = position in site.json
 *   model/                image.onnx, text.onnx, tokenizer.json
 *   ort/, tokenizers.min.mjs   onnxruntime-web's wasm build and the tokenizer library, from npm
 *   thumbs/<id[0:2]>/<id>.webp
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { atomicWriteFile, DistillError } from '@distill/core';
import { thumbnail } from './images.js';
import type { OnnxModel } from './model.js';
import { pageHtml } from './page.js';
import type { VectorIndex } from './vector-index.js';

const require = createRequire(import.meta.url);

/** onnxruntime-web files the page loads (its wasm build: one module, its loader and the binary). */
const ORT_FILES = ['ort.wasm.min.mjs', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'];

const STATIC_BACKEND = `
import * as ort from './ort/ort.wasm.min.mjs';
import { Tokenizer } from './tokenizers.min.mjs';
ort.env.wasm.wasmPaths = new URL('./ort/', location.href).href;
ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
const get = async (f, as) => { const r = await fetch(f); if (!r.ok) throw new Error('Could not load ' + f + ' (' + r.status + ')'); return r[as](); };
const site = await get('site.json', 'json');
const D = site.model.dim, N = site.images.length;
const rowOf = new Map(site.images.map((im, i) => [im.id, i]));
let loaded;
function load() {
  loaded ??= (async () => {
    const [vec, tokJson, text, image] = await Promise.all([get('vectors.f32', 'arrayBuffer'), get('model/tokenizer.json', 'json'),
      ort.InferenceSession.create('model/text.onnx'), ort.InferenceSession.create('model/image.onnx')]);
    return { vectors: new Float32Array(vec), tok: new Tokenizer(tokJson, {}), text, image };
  })();
  return loaded;
}
const unit = (v) => { let s = 0; for (let i = 0; i < v.length; i++) s += v[i] * v[i]; s = Math.sqrt(s) || 1; return Float32Array.from(v, (x) => x / s); };
/** Exact top-k by dot product (the vectors are unit: cosine similarity). */
function topK(vectors, q, k, skip) {
  const best = []; // [score, row], descending
  for (let r = 0; r < N; r++) {
    if (r === skip) continue;
    let s = 0;
    const o = r * D;
    for (let d = 0; d < D; d++) s += vectors[o + d] * q[d];
    if (best.length < k) { best.push([s, r]); if (best.length === k) best.sort((a, b) => b[0] - a[0]); }
    else if (s > best[k - 1][0]) { let i = k - 1; while (i > 0 && best[i - 1][0] < s) { best[i] = best[i - 1]; i--; } best[i] = [s, r]; }
  }
  if (best.length < k) best.sort((a, b) => b[0] - a[0]);
  return best;
}
const hit = ([s, r], i) => { const im = site.images[r]; return { rank: i + 1, score: Math.round(s * 1e6) / 1e6, id: im.id, name: im.name, captions: im.captions, thumb: 'thumbs/' + im.id.slice(0, 2) + '/' + im.id + '.webp' }; };
/** As the model's cutText: white space runs as one space, at most 101 characters a token. */
function cut(t, L) { const lim = L * 101; if (t.length <= lim) return t; let o = '', sp = false; for (let i = 0; i < t.length && o.length < lim; i++) { const c = t[i]; if (' \\n\\t\\r\\f\\v'.includes(c)) { if (!sp) o += ' '; sp = true; } else { o += c; sp = false; } } return o; }
async function embedText(text) {
  const m = await load(), L = site.model.maxTextLength;
  let ids = m.tok.encode(cut(text, L), { add_special_tokens: true }).ids;
  if (ids.length > L) { const last = ids[ids.length - 1]; ids = ids.slice(0, L); if (last === site.model.sepId) ids[L - 1] = last; }
  const I = new BigInt64Array(L).fill(BigInt(site.model.padId)), M = new BigInt64Array(L);
  ids.forEach((v, i) => { I[i] = BigInt(v); M[i] = 1n; });
  const io = site.model.inputs;
  const out = await m.text.run({ [io.ids]: new ort.Tensor('int64', I, [1, L]), [io.mask]: new ort.Tensor('int64', M, [1, L]) });
  return unit(out[site.model.outputs.text].data);
}
async function embedImage(file) {
  const m = await load(), p = site.model.preprocess;
  const bmp = await createImageBitmap(file, { imageOrientation: 'from-image' });
  const s = p.resize / Math.min(bmp.width, bmp.height);
  const w = Math.max(p.crop, Math.round(bmp.width * s)), h = Math.max(p.crop, Math.round(bmp.height * s));
  const c = document.createElement('canvas'); c.width = p.crop; c.height = p.crop;
  const g = c.getContext('2d');
  g.fillStyle = '#fff'; g.fillRect(0, 0, p.crop, p.crop);
  g.imageSmoothingQuality = 'high';
  g.drawImage(bmp, -Math.round((w - p.crop) / 2), -Math.round((h - p.crop) / 2), w, h);
  const px = g.getImageData(0, 0, p.crop, p.crop).data, hw = p.crop * p.crop, x = new Float32Array(3 * hw);
  for (let i = 0; i < hw; i++) for (let ch = 0; ch < 3; ch++) x[ch * hw + i] = (px[4 * i + ch] / 255 - p.mean[ch]) / p.std[ch];
  const out = await m.image.run({ [site.model.inputs.pixels]: new ort.Tensor('float32', x, [1, 3, p.crop, p.crop]) });
  return unit(out[site.model.outputs.image].data);
}
async function timed(embed, k, skip) {
  const t0 = performance.now();
  const q = await embed();
  const { vectors } = await load();
  const t1 = performance.now();
  const results = topK(vectors, q, k, skip).map(hit);
  return { target: 'images', k, model: site.model.hash, results, ms: { embed: t1 - t0, search: performance.now() - t1 } };
}
const backend = {
  info: async () => ({ images: N, texts: site.texts, model: site.model, where: 'searching in this browser (onnxruntime-web, exact dot product)' }),
  search: (q, k) => timed(() => embedText(q), k, -1),
  similar: async (id, k) => {
    if (!rowOf.has(id)) throw new Error("no image '" + id + "' in the index");
    const r = rowOf.get(id);
    return timed(async () => (await load()).vectors.slice(r * D, (r + 1) * D), k, r);
  },
  image: async (id) => {
    const im = site.images[rowOf.get(id)];
    if (!im) throw new Error("no image '" + id + "' in the index");
    return { ...im, thumb: 'thumbs/' + id.slice(0, 2) + '/' + id + '.webp' };
  },
  searchImage: (file, k) => timed(() => embedImage(file).catch((e) => { throw new Error('This picture could not be read: ' + (e.message || e)); }), k, -1),
};
window.distillBackend = backend;
load().catch(() => {}); // start loading the model while the user types
`;

/** The folder holding onnxruntime-web's browser builds (from npm). */
function ortDist(): string {
  let dir: string;
  try {
    dir = dirname(require.resolve('onnxruntime-web'));
  } catch {
    throw new DistillError('onnxruntime-web is not installed: run `npm ci` (it is a dependency of @distill/serve).', 2);
  }
  const missing = ORT_FILES.filter((f) => !existsSync(join(dir, f)));
  if (missing.length)
    throw new DistillError(`onnxruntime-web at ${dir} lacks ${missing.join(', ')}: reinstall it (npm ci).`, 2);
  return dir;
}

export interface SiteReport {
  out: string;
  images: number;
  bytes: number;
}

/** Write the static search site of `index` (built by `model`) to `out` (a new or empty folder, or --force). */
export async function writeSite(
  index: VectorIndex,
  model: OnnxModel,
  out: string,
  opts: { force?: boolean } = {},
): Promise<SiteReport> {
  index.checkModel(model);
  if (existsSync(out)) {
    if (!statSync(out).isDirectory()) throw new DistillError(`--out ${out} is a file: give a folder.`, 2);
    if (readdirSync(out).length && !opts.force)
      throw new DistillError(`--out ${out} is not empty: give a new folder, or --force to write over it.`, 2);
  }
  mkdirSync(join(out, 'model'), { recursive: true });
  mkdirSync(join(out, 'ort'), { recursive: true });
  const dist = ortDist();
  for (const f of ORT_FILES) copyFileSync(join(dist, f), join(out, 'ort', f));
  copyFileSync(
    join(dirname(require.resolve('@huggingface/tokenizers')), 'tokenizers.min.mjs'),
    join(out, 'tokenizers.min.mjs'),
  );
  for (const f of ['image.onnx', 'text.onnx', 'tokenizer.json'])
    copyFileSync(join(model.dir, f), join(out, 'model', f));
  const m = index.meta;
  const spec = model.spec;
  const tok = JSON.parse(readFileSync(join(model.dir, 'tokenizer.json'), 'utf8')) as {
    model: { vocab?: Record<string, number> };
    added_tokens?: { id: number; content: string }[];
  };
  const special = (t: string) => tok.added_tokens?.find((x) => x.content === t)?.id ?? tok.model.vocab?.[t];
  const site = {
    format: 'distill-site-v1',
    model: {
      name: m.model.name,
      dim: m.model.dim,
      hash: m.model.hash,
      maxTextLength: spec.maxTextLength,
      padId: spec.padId ?? special('[PAD]') ?? 0,
      sepId: special('[SEP]'),
      preprocess: model.preprocess,
      inputs: spec.inputs,
      outputs: spec.outputs,
    },
    texts: m.texts.length,
    images: m.images.map((im) => ({ id: im.id, name: im.name, captions: im.captions })),
  };
  writeFileSync(join(out, 'site.json'), JSON.stringify(site));
  const v = index.vectors('images');
  writeFileSync(join(out, 'vectors.f32'), new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  for (const im of m.images) {
    const dst = join(out, 'thumbs', im.id.slice(0, 2), `${im.id}.webp`);
    const src = index.thumbPath(im);
    if (src && existsSync(src)) {
      mkdirSync(dirname(dst), { recursive: true });
      copyFileSync(src, dst);
    } else if (existsSync(im.path)) atomicWriteFile(dst, await thumbnail(readFileSync(im.path)));
  }
  writeFileSync(
    join(out, 'index.html'),
    pageHtml(STATIC_BACKEND, { module: true, title: 'distill search (in the browser)' }),
  );
  const size = (d: string): number =>
    readdirSync(d, { withFileTypes: true }).reduce(
      (s, e) => s + (e.isDirectory() ? size(join(d, e.name)) : statSync(join(d, e.name)).size),
      0,
    );
  return { out, images: m.images.length, bytes: size(out) };
}
