import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, type Dataset, type Teacher } from '@distill/core';
import { loadEmoji } from '@distill/data';
import { afterAll, describe, expect, it } from 'vitest';
import { extractOrShard, extractTeacherFeatures } from './feature-cache.js';
import { chunkPlan, type TeacherFeatures } from './feature-files.js';
import { isShardPending, parseShard, shardManifestFile, type ShardPending } from './shards.js';

const tmp = mkdtempSync(join(tmpdir(), 'distill-shards-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const log = createLogger({ level: 'error' } as never);

/** The embedded emoji benchmark cut to 3 images per split (64-px sprites: no image files to read). */
function tinyEmoji(): Dataset {
  const d = loadEmoji();
  const splits = Object.fromEntries(
    Object.entries(d.splits).map(([k, s]) => [
      k,
      { images: s.images.slice(0, 3), captions: s.captions.filter((c) => c.image < 3) },
    ]),
  );
  return { ...d, splits };
}

/** A 3-dim teacher whose features depend on the pixels and the text; counts the rows it encodes. */
function fakeTeacher() {
  const calls = { rows: 0 };
  const t: Teacher = {
    name: 'fake',
    dim: 3,
    preprocess: { resize: 64, crop: 64, mean: [0, 0, 0], std: [1, 1, 1] },
    maxTextLength: 16,
    fingerprint: () => 'fake-shards-v1',
    encodeImages: async (px, n) => {
      calls.rows += n;
      const per = px.length / n;
      return Float32Array.from({ length: 3 * n }, (_, k) => Math.sin(px[((k / 3) | 0) * per + (k % 3) * 97] * 13 + k));
    },
    encodeTexts: async (texts) => {
      calls.rows += texts.length;
      return Float32Array.from({ length: 3 * texts.length }, (_, k) =>
        Math.cos(texts[(k / 3) | 0].charCodeAt(k % 3) * 0.37 + k),
      );
    },
  };
  return { t, calls };
}

const opts = (cacheDir: string) => ({ batchSize: 1, cacheDir });
const cacheFileOf = (dir: string) =>
  join(
    dir,
    'teacher-features',
    readdirSync(join(dir, 'teacher-features')).find((f) => f.endsWith('.safetensors'))!,
  );

describe('sharded teacher extraction', () => {
  it('three shards, computed separately, give a cache byte-identical to one unsharded extraction; each row is computed once', async () => {
    const ds = tinyEmoji();
    const chunks = chunkPlan(ds, 1);
    expect(chunks.length).toBeGreaterThan(6);
    const one = join(tmp, 'one');
    const whole = fakeTeacher();
    await extractTeacherFeatures(whole.t, ds, opts(one), log);

    const sharded = join(tmp, 'sharded');
    let rows = 0;
    const results: (TeacherFeatures | ShardPending)[] = [];
    for (const index of [2, 0, 1]) {
      const f = fakeTeacher();
      results.push(await extractOrShard(f.t, ds, { ...opts(sharded), shard: { index, count: 3 } }, log));
      rows += f.calls.rows;
    }
    expect(rows).toBe(whole.calls.rows);
    expect(results.slice(0, 2).map((r) => isShardPending(r) && r.missing)).toEqual([[0, 1], [1]]);
    const last = results[2];
    expect(isShardPending(last)).toBe(false);
    expect(readFileSync(cacheFileOf(sharded)).equals(readFileSync(cacheFileOf(one)))).toBe(true);
    expect(existsSync(`${cacheFileOf(sharded)}.parts`)).toBe(false);
    // the merged features are what the training reads back
    const back = await extractTeacherFeatures(fakeTeacher().t, ds, opts(sharded), log);
    expect(Array.from(back.splits.test.texts)).toEqual(Array.from((last as TeacherFeatures).splits.test.texts));
  });

  it('a missing shard is named and nothing is merged; a corrupt chunk names its shard and file, and is never merged; the shard recomputed, it merges', async () => {
    const ds = tinyEmoji();
    const dir = join(tmp, 'faults');
    await extractOrShard(fakeTeacher().t, ds, { ...opts(dir), shard: { index: 0, count: 2 } }, log);
    const merge = () =>
      extractOrShard(fakeTeacher().t, ds, { ...opts(dir), shard: { index: 0, count: 2, merge: true } }, log);
    const pending = await merge();
    expect(isShardPending(pending) && pending.missing).toEqual([1]);
    const file = (pending as ShardPending).file;
    expect(existsSync(file)).toBe(false);

    // shard 1 written, then one of its chunks flipped on disk before the merge
    const f1 = fakeTeacher();
    const parts = `${file}.parts`;
    const record = shardManifestFile(parts, 1, 2);
    // write shard 1 without letting it merge: compute it in a copy of the cache, then bring its files over
    const side = join(tmp, 'side');
    await extractOrShard(f1.t, ds, { ...opts(side), shard: { index: 1, count: 2 } }, log);
    const sideParts = `${join(side, 'teacher-features', file.split('/').pop()!)}.parts`;
    for (const n of readdirSync(sideParts)) writeFileSync(join(parts, n), readFileSync(join(sideParts, n)));
    const m = JSON.parse(readFileSync(record, 'utf8')) as { chunks: { name: string }[] };
    const victim = join(parts, m.chunks[1].name);
    const bytes = readFileSync(victim);
    bytes[bytes.length - 5] ^= 0x40;
    writeFileSync(victim, bytes);
    await expect(merge()).rejects.toThrow(
      `Shard 1/2 of ${file}: chunk ${victim} does not match the sha256 its shard recorded; nothing was merged. Recompute it: distill teacher extract <the same flags> --shard 1/2.`,
    );
    expect(existsSync(file)).toBe(false);

    // a record gone is a missing shard again
    rmSync(record);
    expect(isShardPending(await merge())).toBe(true);
    // the shard recomputed (the corrupt chunk fails its checksum and is computed again): merged, identical to one extraction
    const again = await extractOrShard(fakeTeacher().t, ds, { ...opts(dir), shard: { index: 1, count: 2 } }, log);
    expect(isShardPending(again)).toBe(false);
    const one = join(tmp, 'one-b');
    await extractTeacherFeatures(fakeTeacher().t, ds, opts(one), log);
    expect(readFileSync(file).equals(readFileSync(cacheFileOf(one)))).toBe(true);
  });

  it('--shard i/N is checked', () => {
    expect(parseShard('1/4')).toEqual({ index: 1, count: 4 });
    expect(() => parseShard('4/4')).toThrow("--shard expects i/N with 0 <= i < N (e.g. --shard 0/4), got '4/4'.");
    expect(() => parseShard('a/2')).toThrow('--shard expects i/N');
    expect(() => parseShard('0/0')).toThrow('--shard expects i/N');
  });
});
