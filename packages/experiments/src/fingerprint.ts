import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { sha256, type Container } from '@distill/core';
import { EMOJI_TEACHER_DIR, GLYPHS_TEACHER_DIR, needsTeacher, type TrainConfig } from '@distill/training';

/**
 * What a stored run was computed from, beyond its config and seed: the code that trained it, the
 * teacher's files and the dataset. The run store keys every run by {config hash, seed (in the config),
 * code, teacher, dataset}; a run whose fingerprint differs from the current one is never reused
 * silently (it is retrained, or reused under --reuse-stale and marked so in every report).
 */
export interface RunFingerprint {
  /** sha256 over the sources of the packages a training run executes (see CODE_PACKAGES), and their versions. */
  code: string;
  /** sha256 over the teacher's model files ('none' for a method that uses no teacher). */
  teacher: string;
  /** The dataset's manifest hash (its splits, image paths and captions). */
  dataset: string;
}

export const FINGERPRINT_PARTS = ['code', 'teacher', 'dataset'] as const;
export type FingerprintPart = (typeof FINGERPRINT_PARTS)[number];

/** The packages the training worker executes (apps/cli and experiments only orchestrate). */
export const CODE_PACKAGES = [
  'autodiff',
  'core',
  'data',
  'teacher-adapters',
  'student-architectures',
  'losses',
  'balancer',
  'eval',
  'training',
] as const;

/** The part of the folder name a fingerprint contributes (12 hex digits of sha256 over its parts). */
export function fingerprintId(fp: RunFingerprint): string {
  return sha256(`${fp.code}\n${fp.teacher}\n${fp.dataset}`).slice(0, 12);
}

/** The parts in which `recorded` differs from `current` (every part when nothing was recorded). */
export function fingerprintDiff(
  recorded: Partial<RunFingerprint> | undefined,
  current: RunFingerprint,
): FingerprintPart[] {
  return FINGERPRINT_PARTS.filter((k) => recorded?.[k] !== current[k]);
}

const isSource = (f: string) =>
  (/\.(ts|mts|js|mjs|json)$/.test(f) && !/\.test(-util)?\.[mc]?[tj]s$/.test(f) && !/\.d\.ts$/.test(f)) || false;

function walk(dir: string, keep: (f: string) => boolean, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'node_modules' && !e.name.startsWith('.')) walk(p, keep, out);
    } else if (e.isFile() && keep(e.name)) out.push(p);
  }
  return out;
}

/** Files read once per process: (path, size, mtime) -> sha256 of the bytes. */
const fileHashes = new Map<string, string>();
function fileHash(p: string): string {
  const st = statSync(p);
  const k = `${p}\0${st.size}\0${st.mtimeMs}\0${st.ctimeMs}\0${st.ino}`;
  let h = fileHashes.get(k);
  if (!h) fileHashes.set(k, (h = createHash('sha256').update(readFileSync(p)).digest('hex')));
  return h;
}

/** sha256 over the files under each root (relative name + content hash, in name order). */
export function treeHash(roots: string[], keep: (f: string) => boolean = isSource): string {
  const h = createHash('sha256');
  for (const root of roots) {
    const base = resolve(root);
    if (!existsSync(base)) {
      h.update(`missing ${base}\n`);
      continue;
    }
    const files = statSync(base).isDirectory() ? walk(base, keep).sort() : [base];
    for (const f of files) h.update(`${relative(base, f) || '.'}\t${fileHash(f)}\n`);
  }
  return h.digest('hex');
}

/**
 * Each code package's folder of sources: src/ in this repository, else the installed dist/. A package
 * this one does not depend on directly is resolved from those that do (training, core, losses); one
 * that cannot be found counts by its name (a changed install still changes the hash of the others).
 */
export function codeRoots(): string[] {
  const bases = [createRequire(import.meta.url)];
  for (const via of ['@distill/training', '@distill/core', '@distill/losses']) {
    try {
      bases.push(createRequire(bases[0].resolve(`${via}/package.json`)));
    } catch {
      /* not installed beside this package */
    }
  }
  return CODE_PACKAGES.map((p) => {
    for (const req of bases) {
      try {
        const dir = dirname(req.resolve(`@distill/${p}/package.json`));
        return existsSync(join(dir, 'src')) ? join(dir, 'src') : join(dir, 'dist');
      } catch {
        /* try the next base */
      }
    }
    return `@distill/${p} (not found)`;
  });
}

let lastCodeMs: number | undefined;

/**
 * The code fingerprint: sha256 over every non-test source file of the packages a run executes (tests
 * never run in training; a comment changes it too, on purpose: the hash cannot tell). Each call walks
 * the folders and stats the files; a file's bytes are hashed again only when its size, mtime or inode
 * changed (cached per process), so a repeated call costs a directory walk (~0.7 MB of sources, some ms).
 */
export function codeFingerprint(roots: string[] = codeRoots()): string {
  const t0 = performance.now();
  const hash = treeHash(roots);
  lastCodeMs = performance.now() - t0;
  return hash;
}

/** How long the last code fingerprint took to compute (ms; for the log). */
export function codeFingerprintMs(): number | undefined {
  return lastCodeMs;
}

/** The folder (or file) that holds the teacher's model, where distill knows it. */
export function teacherFolder(cfg: Pick<TrainConfig, 'teacher'>): string | undefined {
  if (cfg.teacher.model) return cfg.teacher.model;
  if (cfg.teacher.name === 'emoji') return EMOJI_TEACHER_DIR;
  if (cfg.teacher.name === 'glyphs') return GLYPHS_TEACHER_DIR;
  return undefined;
}

/**
 * The teacher fingerprint: 'none' for a method without a teacher (a no-teacher run does not depend on
 * it); else sha256 over the teacher's model files (every file of its folder, or the file itself), or
 * its name when distill does not know where its files are (a plugin's teacher with no --teacher-model).
 */
export async function teacherFingerprint(cfg: TrainConfig, container: Container): Promise<string> {
  if (!(await needsTeacher(cfg, container))) return 'none';
  const folder = teacherFolder(cfg);
  if (!folder) return sha256(`teacher ${cfg.teacher.name}`);
  return treeHash([folder], () => true);
}

/** A run's fingerprint as the store keys it: this code, its teacher's files, its dataset's manifest. */
export async function runFingerprint(cfg: TrainConfig, container: Container): Promise<RunFingerprint> {
  const { datasetManifestHash } = await import('./evaluate.js');
  // a run's plugins are code it executes too (a path: its files' content; a package name: the name)
  const plugins = (cfg.plugins ?? []).map((p) => (existsSync(p) ? treeHash([p]) : `package ${p}`));
  const code = plugins.length ? sha256([codeFingerprint(), ...plugins].join('\n')) : codeFingerprint();
  return {
    code,
    teacher: await teacherFingerprint(cfg, container),
    dataset: await datasetManifestHash(cfg, container),
  };
}
