import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DistillError, readSafetensors } from '@distill/base';

/** GloVe word vectors: `vectors` is words.length x dim, row-major; `index` maps a word to its row. */
export interface GloveVectors {
  words: string[];
  dim: number;
  vectors: Float32Array;
  index: Map<string, number>;
}

/** The assets folder of this package (src/ and dist/ alike sit one level below the package root). */
export const ASSETS_DIR = fileURLToPath(new URL('../assets/', import.meta.url));
export const GLOVE_FILE = `${ASSETS_DIR}glove-100d.safetensors`;
export const GLOVE_WORDS_FILE = `${ASSETS_DIR}glove-100d.words.txt`;

let cached: GloveVectors | undefined;

/**
 * The GloVe 6B 100-d subset shipped in this package (PROVENANCE.md: every word of the emoji and glyphs
 * captions that GloVe has, plus GloVe's 30,000 most frequent words; lowercase, one token each as BERT's
 * basic tokeniser splits text). Stored as float16, returned as float32. Loaded once per process.
 */
export function loadGlove(): GloveVectors {
  if (cached) return cached;
  let words: string[];
  let t;
  try {
    words = readFileSync(GLOVE_WORDS_FILE, 'utf8')
      .split('\n')
      .filter((w) => w.length > 0);
    t = readSafetensors(GLOVE_FILE).get('vectors');
  } catch (e) {
    if (e instanceof DistillError) throw e;
    throw new DistillError(
      `The GloVe asset of @distill/pretrained is missing or unreadable (${(e as Error).message}). Reinstall @distill/pretrained, or re-run tools/convert-pretrained (PROVENANCE.md).`,
    );
  }
  if (!t || t.shape.length !== 2 || t.shape[0] !== words.length) {
    throw new DistillError(
      `The GloVe asset of @distill/pretrained is inconsistent (${words.length} words, vectors ${JSON.stringify(t?.shape)}). Re-run tools/convert-pretrained (PROVENANCE.md).`,
    );
  }
  const index = new Map<string, number>();
  words.forEach((w, i) => index.set(w, i));
  cached = { words, dim: t.shape[1], vectors: t.data, index };
  return cached;
}

/** The cosine similarity of two words' vectors (undefined when either is not in the subset). */
export function gloveSimilarity(g: GloveVectors, a: string, b: string): number | undefined {
  const i = g.index.get(a);
  const j = g.index.get(b);
  if (i === undefined || j === undefined) return undefined;
  let dot = 0,
    na = 0,
    nb = 0;
  for (let k = 0; k < g.dim; k++) {
    const x = g.vectors[i * g.dim + k],
      y = g.vectors[j * g.dim + k];
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return dot / Math.sqrt(na * nb);
}
