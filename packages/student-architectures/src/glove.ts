import { DistillError } from '@distill/core';
import { loadGlove } from '@distill/pretrained';
import { SPECIAL_TOKENS, type TokenizerJson } from './tokenizer.js';

/**
 * Word vectors (GloVe 6B 100-d subset, `@distill/pretrained`'s loadGlove): `vectors` is words x dim, row-major;
 * `index` maps a word to its row.
 */
export interface WordVectors {
  words: string[];
  dim: number;
  vectors: Float32Array;
  index: Map<string, number>;
}

/** The name `textInit` takes for GloVe initialisation of the word embeddings (`--text-init glove`). */
export const GLOVE_INIT = 'glove';

/** What a word-vector initialisation did, for the run's log and tests. */
export interface WordInitReport {
  /** Tokens of the vocabulary that got a word vector. */
  matched: number;
  /** The vocabulary's size. */
  vocab: number;
  /** Tokens that are whole words (not `##` pieces, not specials): the candidates. */
  wholeWords: number;
  /** The embedding width and the vectors' width. */
  width: number;
  dim: number;
  /** How the vectors reach the width: identity (same width; a factorised embedding's trained mapping does the rest), pca (fewer), pad (more). */
  projection: 'identity' | 'pca' | 'pad';
  /** Share of the vectors' variance the projection keeps (1 for identity and pad). */
  varianceKept: number;
}

/** The vocabulary as id -> token, from a tokenizer.json (WordPiece or BPE: both keep `model.vocab`, token -> id). */
export function vocabTokens(json: TokenizerJson): string[] {
  const vocab = json.model.vocab as Record<string, number> | undefined;
  if (!vocab || typeof vocab !== 'object')
    throw new DistillError(
      `The tokenizer (${json.model.type}) has no vocabulary map: --text-init glove needs a WordPiece or BPE tokenizer.json.`,
      2,
    );
  const out: string[] = [];
  for (const [t, i] of Object.entries(vocab)) out[i] = t;
  return out;
}

/** A token that names a whole word: not a special ([PAD] ...), not a continuing piece (`##ing`). */
export const isWholeWordToken = (t: string | undefined): t is string =>
  !!t && !t.startsWith('##') && !(SPECIAL_TOKENS as readonly string[]).includes(t) && !/^\[.*\]$/.test(t);

/** Eigen-decomposition of a symmetric n x n matrix (cyclic Jacobi): eigenvalues descending, eigenvectors as the columns of `vectors` (row-major n x n). */
export function symmetricEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const m = Float64Array.from(a);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += m[p * n + q] ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (m[q * n + q] - m[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const mkp = m[k * n + p];
          const mkq = m[k * n + q];
          m[k * n + p] = c * mkp - s * mkq;
          m[k * n + q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < n; k++) {
          const mpk = m[p * n + k];
          const mqk = m[q * n + k];
          m[p * n + k] = c * mpk - s * mqk;
          m[q * n + k] = s * mpk + c * mqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => m[j * n + j] - m[i * n + i]);
  const values = Float64Array.from(order, (i) => m[i * n + i]);
  const vectors = new Float64Array(n * n);
  for (let r = 0; r < n; r++) order.forEach((col, j) => (vectors[r * n + j] = v[r * n + col]));
  return { values, vectors };
}

/**
 * A word-embedding table [vocab, width] that starts from word vectors: each whole-word token found in `wv`
 * gets its vector, the others (sub-word pieces, specials, words the vectors lack) keep `random` (the
 * usual init). The matched vectors are centred, projected to `width` (width < dim: onto their top
 * `width` principal components, a fixed projection; width > dim: zero-padded; equal: as they are) and
 * scaled so their values have the standard deviation `std` of the random rows, so the two kinds of row
 * start at the same scale.
 */
export function wordEmbeddingInit(
  vocab: readonly (string | undefined)[],
  wv: WordVectors,
  width: number,
  random: Float32Array,
  std: number,
): { values: Float32Array; report: WordInitReport } {
  if (random.length !== vocab.length * width)
    throw new Error(`wordEmbeddingInit: ${random.length} random values for a [${vocab.length}, ${width}] table`);
  const d = wv.dim;
  const ids: number[] = [];
  const rows: number[] = [];
  let wholeWords = 0;
  vocab.forEach((t, id) => {
    if (!isWholeWordToken(t)) return;
    wholeWords++;
    const r = wv.index.get(t);
    if (r !== undefined) {
      ids.push(id);
      rows.push(r);
    }
  });
  const values = Float32Array.from(random);
  const projection: WordInitReport['projection'] = width === d ? 'identity' : width < d ? 'pca' : 'pad';
  const report: WordInitReport = {
    matched: ids.length,
    vocab: vocab.length,
    wholeWords,
    width,
    dim: d,
    projection,
    varianceKept: 1,
  };
  if (!ids.length) return { values, report };
  const m = ids.length;
  const mean = new Float64Array(d);
  for (const r of rows) for (let j = 0; j < d; j++) mean[j] += wv.vectors[r * d + j] / m;
  const centred = new Float64Array(m * d);
  rows.forEach((r, i) => {
    for (let j = 0; j < d; j++) centred[i * d + j] = wv.vectors[r * d + j] - mean[j];
  });
  // basis [d, k]: identity, or the top-width principal directions
  const k = Math.min(width, d);
  let basis: Float64Array | undefined;
  if (width < d) {
    const cov = new Float64Array(d * d);
    for (let i = 0; i < m; i++) {
      const o = i * d;
      for (let a = 0; a < d; a++) {
        const xa = centred[o + a];
        if (xa === 0) continue;
        for (let b = a; b < d; b++) cov[a * d + b] += xa * centred[o + b];
      }
    }
    for (let a = 0; a < d; a++) for (let b = a + 1; b < d; b++) cov[b * d + a] = cov[a * d + b];
    const { values: ev, vectors } = symmetricEigen(cov, d);
    const total = ev.reduce((s, x) => s + Math.max(x, 0), 0);
    report.varianceKept = total > 0 ? ev.slice(0, k).reduce((s, x) => s + Math.max(x, 0), 0) / total : 1;
    basis = new Float64Array(d * k);
    for (let a = 0; a < d; a++) for (let j = 0; j < k; j++) basis[a * k + j] = vectors[a * d + j];
  }
  const proj = new Float64Array(m * k);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < k; j++) {
      if (!basis) proj[i * k + j] = centred[i * d + j];
      else {
        let s = 0;
        for (let a = 0; a < d; a++) s += centred[i * d + a] * basis[a * k + j];
        proj[i * k + j] = s;
      }
    }
  }
  // one scale for the whole block: the values' std becomes `std` (zero padding counted as values)
  let ss = 0;
  for (let i = 0; i < proj.length; i++) ss += proj[i] * proj[i];
  const scale = ss > 0 ? std / Math.sqrt(ss / (m * width)) : 0;
  ids.forEach((id, i) => {
    const o = id * width;
    for (let j = 0; j < width; j++) values[o + j] = j < k ? proj[i * k + j] * scale : 0;
  });
  return { values, report };
}

/** One line for the run's log. */
export function wordInitLine(r: WordInitReport): string {
  const how =
    r.projection === 'pca'
      ? `PCA ${r.dim} -> ${r.width} (keeps ${(100 * r.varianceKept).toFixed(1)}% of the variance)`
      : r.projection === 'pad'
        ? `zero-padded ${r.dim} -> ${r.width}`
        : `${r.dim}-d as they are`;
  return `GloVe vectors for ${r.matched} of ${r.vocab} tokens (${((100 * r.matched) / r.vocab).toFixed(1)}%; ${r.wholeWords} whole-word tokens), ${how}; the rest random`;
}

/** The GloVe subset shipped as an asset (`@distill/pretrained`'s loadGlove: loaded once per process). */
export function loadDefaultWordVectors(): WordVectors {
  return loadGlove();
}
