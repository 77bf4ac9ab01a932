import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { atomicWriteJson, DistillError, readJsonFile, sha256, type Dataset, type Logger } from '@distill/core';
import {
  chunkPlan,
  readFeatureCache,
  readFeatureChunk,
  writeFeatureCache,
  type TeacherFeatures,
} from './feature-files.js';

/**
 * Sharded teacher extraction (`distill teacher extract --shard i/N`): the extraction's chunks are dealt
 * to N shards (chunk j to shard j mod N), each shard computes its chunks into <cache file>.parts/ (the
 * same chunk files an unsharded extraction writes and resumes from) and records them in
 * shard-<i>-of-<N>.json with each chunk's sha256 and row count. When every shard's record exists, the
 * chunks are verified (the sha256 recorded, the checkpoint checksum, the rows each must hold) and
 * concatenated into the cache file exactly as one unsharded extraction writes it; a missing shard, or
 * one whose chunk fails, is named and nothing is merged.
 */
export interface ShardSpec {
  index: number;
  count: number;
  /** Compute nothing: merge the shards' chunks (or name what is missing). */
  merge?: boolean;
}

/** A shard's work is written but the cache is not complete: the shards still missing. */
export interface ShardPending {
  pending: true;
  file: string;
  key: string;
  count: number;
  missing: number[];
}

export function isShardPending(x: TeacherFeatures | ShardPending): x is ShardPending {
  return (x as ShardPending).pending === true;
}

interface ShardManifest {
  key: string;
  index: number;
  count: number;
  dim: number;
  chunks: { name: string; rows: number; sha256: string }[];
}

export function shardManifestFile(parts: string, index: number, count: number): string {
  return join(parts, `shard-${index}-of-${count}.json`);
}

/** `i/N` -> { index, count }, or a DistillError saying what --shard expects. */
export function parseShard(v: string): ShardSpec {
  const m = /^(\d+)\/(\d+)$/.exec(v.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index >= count)
    throw new DistillError(`--shard expects i/N with 0 <= i < N (e.g. --shard 0/4), got '${v}'.`, 2);
  return { index, count };
}

export function writeShardManifest(
  parts: string,
  s: { key: string; index: number; count: number; dim: number; chunks: string[] },
): void {
  const chunks = s.chunks.map((f) => {
    return { name: f.slice(parts.length + 1), rows: rowsOf(f), sha256: sha256(readFileSync(f)) };
  });
  const m: ShardManifest = { key: s.key, index: s.index, count: s.count, dim: s.dim, chunks };
  atomicWriteJson(shardManifestFile(parts, s.index, s.count), m);
}

/** Rows of a chunk from its name (<split>.<kind>.<start>-<end>.safetensors). */
function rowsOf(file: string): number {
  const m = /\.(\d+)-(\d+)\.safetensors$/.exec(file);
  return m ? Number(m[2]) - Number(m[1]) : Number.NaN;
}

/**
 * Merge the shards of an extraction into its cache file when all of them exist: pending (with the
 * missing shards) otherwise. A shard whose record or chunk does not verify is a DistillError naming the
 * shard and the file; nothing is merged.
 */
export async function mergeShards(
  o: {
    file: string;
    key: string;
    name: string;
    dataset: Dataset;
    batchSize: number;
    count: number;
    parameters?: number;
  },
  log: Logger,
): Promise<TeacherFeatures | ShardPending> {
  const done = () => {
    const c = readFeatureCache(o.file, o.key, o.dataset);
    return c.ok
      ? {
          name: o.name,
          dim: c.dim,
          fingerprint: o.key,
          train: c.splits.train,
          splits: c.splits,
          parameters: o.parameters,
          file: o.file,
        }
      : undefined;
  };
  if (existsSync(o.file)) {
    const f = done();
    if (f) return f;
  }
  const parts = `${o.file}.parts`;
  const missing = Array.from({ length: o.count }, (_, i) => i).filter(
    (i) => !existsSync(shardManifestFile(parts, i, o.count)),
  );
  if (missing.length) {
    log.info(
      `teacher ${o.name}: shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${o.count}`).join(', ')} not written yet (${parts}); the cache is complete when every shard is`,
    );
    return { pending: true, file: o.file, key: o.key, count: o.count, missing };
  }
  try {
    return merge(o, parts, log);
  } catch (e) {
    // another shard finishing at the same moment may have merged (and removed the parts) meanwhile
    const f = existsSync(o.file) ? done() : undefined;
    if (f) return f;
    throw e;
  }
}

function merge(o: Parameters<typeof mergeShards>[0], parts: string, log: Logger): TeacherFeatures {
  const plan = chunkPlan(o.dataset, o.batchSize);
  const data = new Map<string, Float32Array>();
  let dim: number | undefined;
  const redo = (i: number) => `Recompute it: distill teacher extract <the same flags> --shard ${i}/${o.count}.`;
  for (let i = 0; i < o.count; i++) {
    const mf = shardManifestFile(parts, i, o.count);
    let m: ShardManifest;
    try {
      m = readJsonFile<ShardManifest>(mf);
    } catch {
      throw new DistillError(
        `Shard ${i}/${o.count} of ${o.file}: its record ${mf} is unreadable; nothing was merged. ${redo(i)}`,
      );
    }
    if (m.key !== o.key || m.index !== i || m.count !== o.count)
      throw new DistillError(
        `Shard ${i}/${o.count} of ${o.file}: ${mf} was written for another extraction (key, index or count differ); nothing was merged. ${redo(i)}`,
      );
    const want = plan.filter((_, j) => j % o.count === i).map((c) => c.name);
    const have = m.chunks.map((c) => c.name);
    if (want.join('\n') !== have.join('\n'))
      throw new DistillError(
        `Shard ${i}/${o.count} of ${o.file}: ${mf} lists ${have.length} chunks, the extraction deals it ${want.length} (${want.find((w) => !have.includes(w)) ?? 'others'}); nothing was merged. ${redo(i)}`,
      );
    for (const c of m.chunks) {
      const f = join(parts, c.name);
      const bad = (why: string) =>
        new DistillError(`Shard ${i}/${o.count} of ${o.file}: chunk ${f} ${why}; nothing was merged. ${redo(i)}`);
      if (!existsSync(f)) throw bad('is missing');
      if (sha256(readFileSync(f)) !== c.sha256) throw bad(`does not match the sha256 its shard recorded`);
      const r = readFeatureChunk(f, c.rows, dim ?? m.dim);
      if (!r.ok) throw bad(`does not verify (${r.problem})`);
      dim = r.data.length / c.rows;
      data.set(c.name, r.data);
    }
  }
  const splits: TeacherFeatures['splits'] = {};
  for (const name of Object.keys(o.dataset.splits)) {
    const cat = (kind: 'images' | 'texts') =>
      concat(plan.filter((c) => c.split === name && c.kind === kind).map((c) => data.get(c.name)!));
    splits[name] = { images: cat('images'), texts: cat('texts') };
  }
  const d = dim ?? 0;
  writeFeatureCache(o.file, { key: o.key, name: o.name, dim: d, splits });
  rmSync(parts, { recursive: true, force: true });
  log.info(`teacher ${o.name}: ${o.count} shards verified and merged into ${o.file}`);
  return {
    name: o.name,
    dim: d,
    fingerprint: o.key,
    train: splits.train,
    splits,
    parameters: o.parameters,
    file: o.file,
  };
}

function concat(xs: Float32Array[]): Float32Array {
  const out = new Float32Array(xs.reduce((a, x) => a + x.length, 0));
  let off = 0;
  for (const x of xs) {
    out.set(x, off);
    off += x.length;
  }
  return out;
}
