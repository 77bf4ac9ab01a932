import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DistillError, type Container } from '@distill/core';
import { configHash, deepMerge, resolveConfig, type DeepPartial, type TrainConfig } from '@distill/training';
import YAML from 'yaml';
import { z } from 'zod';

/**
 * An experiment spec (torchdistill-style): a base config, per-scale settings, and the runs as
 * overrides of it; plus the paper's figures for each row and the claims the experiment tests.
 * One YAML file per experiment ships in specs/ (table2, table4 ... table10, arch, figure2, all).
 */
export type Scale = 'smoke' | 'full';
export const SCALES: readonly Scale[] = ['smoke', 'full'];

const overrides = z.record(z.string(), z.unknown());
const labels = z.union([z.string(), z.array(z.string()).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]));

export const SpecSchema = z.strictObject({
  name: z.string(),
  title: z.string(),
  description: z.string().optional(),
  /** Other specs this one runs in turn (the `all` experiment). */
  include: z.array(z.string()).optional(),
  /** The preset under each scale (default smoke -> smoke, full -> emoji). */
  preset: z.strictObject({ smoke: z.string().optional(), full: z.string().optional() }).optional(),
  /** Config keys over the preset, for every run. */
  base: overrides.optional(),
  /** Config keys per scale, over base. */
  scales: z.strictObject({ smoke: overrides.optional(), full: overrides.optional() }).optional(),
  plot: z
    .strictObject({ kind: z.enum(['bars', 'sweep', 'pca']), x: z.string().optional(), logX: z.boolean().optional() })
    .optional(),
  /** Add the teacher's own test recall (from its cached features) as a reference row, and each row's gap to it in standard deviations. */
  teacherRow: z.boolean().optional(),
  /** Measure each row's encoder latency (median ms at batch 1, seed 0's best student) after training. */
  latency: z.boolean().optional(),
  runs: z
    .array(
      z.strictObject({
        label: z.string(),
        set: overrides.optional(),
        /** The x value of a sweep point. */
        x: z.number().optional(),
        /** The paper's Flickr30K figures for this row (R@1/5/10 each way, RSUM). */
        paper: z
          .strictObject({
            i2t: z.array(z.number()).length(3).optional(),
            t2i: z.array(z.number()).length(3).optional(),
            rsum: z.number(),
          })
          .optional(),
      }),
    )
    .default([]),
  /**
   * The claims: `better` rows beat `worse` rows (effect = mean of better - mean of worse), or a general
   * linear contrast of rows (`contrast: { label: weight }`, e.g. a 2x2 interaction +1 -1 -1 +1, or a
   * distillation gain: distilled +1, the same student without a teacher -1). Rows are paired by seed.
   */
  findings: z
    .array(
      z
        .strictObject({
          claim: z.string(),
          better: labels.optional(),
          worse: labels.optional(),
          contrast: z.record(z.string(), z.number()).optional(),
        })
        .refine(
          (f) => (f.contrast ? !f.better && !f.worse && Object.keys(f.contrast).length > 0 : !!f.better && !!f.worse),
          {
            message: "a finding names either 'better' and 'worse' rows, or a 'contrast' (label: weight), not both",
          },
        ),
    )
    .default([]),
});
export type ExperimentSpec = z.output<typeof SpecSchema>;
export type SpecFinding = ExperimentSpec['findings'][number];

/** A finding's contrast weights by row label: better rows +1/|better|, worse rows -1/|worse|, or its own contrast. */
export function findingContrast(f: SpecFinding): Map<string, number> {
  if (f.contrast) return new Map(Object.entries(f.contrast));
  const m = new Map<string, number>();
  for (const l of f.better ?? []) m.set(l, (m.get(l) ?? 0) + 1 / f.better!.length);
  for (const l of f.worse ?? []) m.set(l, (m.get(l) ?? 0) - 1 / f.worse!.length);
  return m;
}

/** The row labels a finding compares. */
export function findingLabels(f: SpecFinding): string[] {
  return [...findingContrast(f).keys()];
}

/** The folder of the specs shipped with this package (src/../specs, dist/../specs). */
export function specsDir(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', 'specs');
}

export function shippedSpecNames(): string[] {
  return readdirSync(specsDir())
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => basename(f, '.yaml'))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

/** A shipped spec by name, or a user's spec file by path (anything with a slash or a .yaml/.yml/.json ending). */
export function loadSpec(nameOrPath: string): ExperimentSpec {
  const isPath = /[\\/]/.test(nameOrPath) || /\.(ya?ml|json)$/.test(nameOrPath);
  const file = isPath ? nameOrPath : join(specsDir(), `${nameOrPath}.yaml`);
  if (!existsSync(file)) {
    if (isPath)
      throw new DistillError(
        `Experiment spec not found: ${file}. Pass a YAML file or one of: ${shippedSpecNames().join(', ')}.`,
        2,
      );
    throw new DistillError(
      `Unknown experiment '${nameOrPath}'. Available: ${shippedSpecNames().join(', ')}, or the path of your own spec (YAML).`,
      2,
    );
  }
  let raw: unknown;
  try {
    const text = readFileSync(file, 'utf8');
    raw = file.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
  } catch (e) {
    throw new DistillError(`Could not parse experiment spec ${file}: ${(e as Error).message.split('\n')[0]}`, 2);
  }
  const r = SpecSchema.safeParse(raw);
  if (!r.success) {
    const msg = r.error.issues
      .slice(0, 4)
      .map((i) => `${i.path.join('.') || 'the spec'}: ${i.message}`)
      .join('; ');
    throw new DistillError(`Invalid experiment spec ${file}: ${msg}.`, 2);
  }
  const spec = r.data;
  if (!spec.include && spec.runs.length === 0)
    throw new DistillError(`Experiment spec ${file} has no runs: list them under 'runs' (label + set).`, 2);
  const seen = new Set<string>();
  for (const run of spec.runs) {
    if (seen.has(run.label))
      throw new DistillError(
        `Experiment spec ${file}: the label '${run.label}' is used twice; give each run its own label.`,
        2,
      );
    seen.add(run.label);
  }
  for (const f of spec.findings)
    for (const l of findingLabels(f))
      if (!seen.has(l))
        throw new DistillError(
          `Experiment spec ${file}: the finding '${f.claim}' names '${l}', which is not a run label (${[...seen].join(', ')}).`,
          2,
        );
  return spec;
}

/** The specs an experiment name stands for (`all` and other specs with `include` expand). */
export function expandSpecs(nameOrPath: string): ExperimentSpec[] {
  const spec = loadSpec(nameOrPath);
  if (!spec.include) return [spec];
  return spec.include.flatMap((n) => expandSpecs(n));
}

/** What the command line sets for every run (--dataset, --teacher, --teacher-model, --size, ...). */
export type RunFlags = DeepPartial<TrainConfig>;

export interface PlannedRun {
  label: string;
  seed: number;
  config: TrainConfig;
  /** configHash of the resolved config (the seed included): the run's folder name in the store. */
  hash: string;
}

export interface PlannedRow {
  label: string;
  x?: number;
  paper?: ExperimentSpec['runs'][number]['paper'];
  runs: PlannedRun[];
}

/**
 * Every row of a spec at a scale, with one resolved config per seed (0 .. seeds-1, or 0 .. seedsFor[label]-1):
 * defaults <- preset <- spec base <- spec scale <- run's set <- flags <- seed.
 */
export function planRows(
  spec: ExperimentSpec,
  opts: {
    container: Container;
    scale: Scale;
    seeds: number;
    flags?: RunFlags;
    threads?: number;
    seedsFor?: Record<string, number>;
    preset?: string;
  },
): PlannedRow[] {
  const preset = opts.preset ?? spec.preset?.[opts.scale] ?? (opts.scale === 'smoke' ? 'smoke' : 'emoji');
  if (opts.flags?.student?.preset) {
    const sized = spec.runs
      .filter((r) => (r.set as { student?: { preset?: unknown } } | undefined)?.student?.preset !== undefined)
      .map((r) => r.label);
    if (sized.length)
      throw new DistillError(
        `--size ${opts.flags.student.preset} would override the sizes experiment '${spec.name}' sets per row (${sized.join(', ')}); drop --size.`,
        2,
      );
  }
  return spec.runs.map((run) => {
    let layer: DeepPartial<TrainConfig> = {};
    for (const l of [spec.base, spec.scales?.[opts.scale], run.set, opts.flags]) if (l) layer = deepMerge(layer, l);
    const runs = Array.from({ length: opts.seedsFor?.[run.label] ?? opts.seeds }, (_, seed) => {
      let config: TrainConfig;
      try {
        config = resolveConfig({
          container: opts.container,
          preset,
          overrides: deepMerge(layer, { seed, baseline: false, ...(opts.threads ? { threads: opts.threads } : {}) }),
          overridesName: `experiment '${spec.name}', row '${run.label}'`,
        });
      } catch (e) {
        if (e instanceof DistillError)
          throw new DistillError(`${e.message.replace(/\.$/, '')} (experiment '${spec.name}', row '${run.label}').`, 2);
        throw e;
      }
      return { label: run.label, seed, config, hash: configHash(config) };
    });
    return { label: run.label, x: run.x, paper: run.paper, runs };
  });
}
