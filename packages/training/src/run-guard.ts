import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  acquireRunLock,
  atomicWriteJson,
  DistillError,
  sha256,
  type Container,
  type Logger,
  type RunLock,
} from '@distill/core';
import { resolveConfig, type DeepPartial, type TrainConfig } from './config.js';

/**
 * Run folders are records: config.json holds the resolved config and its hash, and a folder is only
 * reused (re-run or --resume) with a config of the same hash. The fields below may change between
 * runs of one folder because they do not change what is trained: onnxruntime's thread count (the
 * same computation; float rounding of multi-threaded reductions may differ in the last bits, so a
 * resume with another --threads is not guaranteed bit-identical) and whether the report measures
 * latency.
 */
export const SAFE_RESUME_FIELDS = ['threads', 'latency'] as const;

/** JSON with object keys sorted at every level (undefined members dropped, as JSON.stringify does). */
export function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : stableStringify(x))).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableStringify(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

function withoutSafeFields(cfg: TrainConfig, forHash = true): Record<string, unknown> {
  const c = { ...(cfg as unknown as Record<string, unknown>) };
  for (const k of SAFE_RESUME_FIELDS) delete c[k];
  // device 'cpu' (the default) is left out, so runs recorded before the field existed keep their hash;
  // another device is part of it (float rounding differs between devices)
  if (c.device === 'cpu') delete c.device;
  // likewise student.normalize true (the default; a config recorded before the key had it); false
  // (Table 6's ablation) is part of it. Differences show an absent key as its default, true.
  const st = c.student as Record<string, unknown> | undefined;
  if (st && (st.normalize === true || st.normalize === undefined)) {
    const rest = { ...st };
    if (forHash) delete rest.normalize;
    else rest.normalize = true;
    c.student = rest;
  }
  return c;
}

/** sha256 of the resolved config (sorted-key JSON), the safe fields left out. */
export function configHash(cfg: TrainConfig): string {
  return sha256(stableStringify(withoutSafeFields(cfg)));
}

/** The dotted keys whose values differ between two configs (safe fields left out). */
export function configDifferences(a: TrainConfig, b: TrainConfig): string[] {
  const out: string[] = [];
  const walk = (x: unknown, y: unknown, path: string) => {
    const isObj = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);
    if (isObj(x) && isObj(y)) {
      const xo = x as Record<string, unknown>;
      const yo = y as Record<string, unknown>;
      for (const k of [...new Set([...Object.keys(xo), ...Object.keys(yo)])].sort())
        walk(xo[k], yo[k], path ? `${path}.${k}` : k);
    } else if (stableStringify(x) !== stableStringify(y)) {
      const show = (v: unknown) => (v === undefined ? 'unset' : stableStringify(v));
      out.push(`${path} ${show(x)} -> ${show(y)}`);
    }
  };
  walk(withoutSafeFields(a, false), withoutSafeFields(b, false), '');
  return out;
}

/** What distill records in <run>/config.json (the fields read back here). */
export interface RecordedRun {
  config: TrainConfig;
  configHash?: string;
}

/**
 * Read <dir>/config.json as a distill run record. Undefined when the folder has none; a DistillError
 * when it has one that distill did not write (no resolved config with distill's fields).
 */
export function readRunRecord(dir: string): RecordedRun | undefined {
  const file = join(dir, 'config.json');
  if (!existsSync(file)) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    v = undefined;
  }
  const c = (v as { config?: Record<string, unknown> } | undefined)?.config;
  const obj = (x: unknown): x is Record<string, unknown> => !!x && typeof x === 'object' && !Array.isArray(x);
  const ok =
    obj(c) &&
    obj(c.dataset) &&
    typeof c.dataset.name === 'string' &&
    obj(c.student) &&
    typeof c.student.pair === 'string' &&
    obj(c.teacher) &&
    typeof c.losses === 'string' &&
    obj(c.optimizer) &&
    obj(c.schedule) &&
    typeof c.batchSize === 'number';
  if (!ok) {
    throw new DistillError(
      `${dir} is not a distill run folder: ${file} has no distill run config (config.dataset, config.student, config.losses, ...). ` +
        'Use --run-dir with a new or empty folder, or --resume with a folder distill created.',
      2,
    );
  }
  return v as RecordedRun;
}

/**
 * Check that `cfg` may run in `dir`. Without resume: a folder holding a run of another config is
 * refused (its results would be reported under the new config). With resume: the folder must be a
 * distill run, and `cfg` must have the recorded hash (only SAFE_RESUME_FIELDS may differ).
 */
export function checkRunFolder(dir: string, cfg: TrainConfig, resume: boolean): void {
  const rec = readRunRecord(dir);
  if (!rec) {
    if (resume)
      throw new DistillError(
        `Cannot resume: ${join(dir, 'config.json')} not found. Is ${dir} a distill run folder?`,
        2,
      );
    return;
  }
  const recorded = rec.configHash ?? configHash(rec.config);
  if (recorded === configHash(cfg)) return;
  // a plugin whose content changed (same file, other code): named, before any other difference
  const was = rec.config.pluginHashes ?? {};
  const now = cfg.pluginHashes ?? {};
  const edited = Object.keys(was).filter((f) => now[f] !== undefined && now[f] !== was[f]);
  if (edited.length) {
    throw new DistillError(
      `${resume ? `Cannot resume ${dir}` : `${dir} holds a run made with another version of a plugin`}: the plugin ${edited.join(', ')} changed since the run started ` +
        `(content sha256 ${was[edited[0]].slice(0, 12)} -> ${now[edited[0]].slice(0, 12)}). Restore the plugin as it was, or start a new run with a new --run-dir.`,
      2,
    );
  }
  const diff = configDifferences(rec.config, cfg);
  const what = diff.length
    ? `differs in ${diff.slice(0, 4).join(', ')}${diff.length > 4 ? `, and ${diff.length - 4} more` : ''}`
    : 'differs';
  if (resume) {
    throw new DistillError(
      `Cannot resume ${dir}: the config ${what} from the recorded one. --resume continues the recorded config; ` +
        `only ${SAFE_RESUME_FIELDS.join(', ')} may change. Drop those flags, or start a new run with a new --run-dir.`,
      2,
    );
  }
  throw new DistillError(
    `${dir} holds a run with another config (yours ${what}). Use a new --run-dir, or --resume ${dir} to continue that run with its recorded config.`,
    2,
  );
}

/**
 * The config of `distill train --resume <dir>`: the recorded config, with the flags given on top; when
 * a preset or config file is given as well, the config they resolve to. Either way it must have the
 * recorded hash (checkRunFolder), so flags that would change the run are refused, not ignored.
 */
export function resumeConfig(
  dir: string,
  given: {
    container: Container;
    preset?: string;
    file?: DeepPartial<TrainConfig>;
    overrides?: DeepPartial<TrainConfig>;
  },
): TrainConfig {
  const rec = readRunRecord(dir);
  if (!rec)
    throw new DistillError(`Cannot resume: ${join(dir, 'config.json')} not found. Is ${dir} a distill run folder?`, 2);
  const cfg =
    given.preset || given.file
      ? resolveConfig(given)
      : resolveConfig({
          container: given.container,
          preset: 'emoji',
          file: rec.config as DeepPartial<TrainConfig>,
          overrides: given.overrides,
        });
  checkRunFolder(dir, cfg, true);
  return cfg;
}

/**
 * The one guard of every command that trains into a run folder (`distill train`, `distill teacher
 * pretrain`, the experiment store's runs): take the folder's run lock (a second run of the folder stops
 * with the first one's pid), then check the folder against `cfg` (checkRunFolder: another config's run is
 * refused, `--resume` with flags that change the config is refused). With `record`, a folder without
 * config.json gets one now (the resolved config, its hash, the command), so the next run of the folder is
 * checked against it. Returns the lock: release it when done (it is released on exit too).
 */
export function openRunFolder(
  dir: string,
  cfg: TrainConfig,
  opts: { resume?: boolean; command?: string; logger?: Logger; record?: Record<string, unknown> },
): RunLock {
  const lock = acquireRunLock(dir, { logger: opts.logger, command: opts.command });
  try {
    checkRunFolder(dir, cfg, Boolean(opts.resume));
    if (opts.record && !existsSync(join(dir, 'config.json'))) {
      atomicWriteJson(join(dir, 'config.json'), {
        config: cfg,
        configHash: configHash(cfg),
        command: opts.command,
        ...opts.record,
        created: new Date().toISOString(),
      });
    }
  } catch (e) {
    lock.release();
    throw e;
  }
  return lock;
}
