import { availableParallelism } from 'node:os';
import { createLogger, DistillError } from '@distill/core';
import {
  runExperiments,
  SCALES,
  shippedSpecNames,
  type ExperimentOptions,
  type RunFlags,
  type Scale,
} from '@distill/experiments';
import { clusterBuilder, experimentOnCluster } from './cluster.js';
import type { CliCommand } from '../command.js';
import { configOverrides, declareFlags, groupFlags } from '../flags.js';

/** The table's flags of `distill experiment`: they set every run (--threads is per training process, not config). */
export const EXPERIMENT_FLAGS = [
  ...groupFlags('dataset'),
  ...groupFlags('teacher'),
  'size',
  ...groupFlags('device'),
  'preset',
];

/** The flags that set every run of an experiment -> config overrides (their config keys from the flag table). */
export function experimentFlags(a: Record<string, unknown>): RunFlags {
  return configOverrides(
    a,
    EXPERIMENT_FLAGS.filter((n) => n !== 'threads'),
  );
}

export const experimentCommand: CliCommand = {
  command: 'experiment <name>',
  describe:
    "Run one of the paper's tables or findings (seeds, intervals, verdicts): table2, table4 ... table10, arch, figure2, all, or a spec file",
  builder: (y, ctx) =>
    declareFlags(
      clusterBuilder(y)
        .usage(
          'distill experiment <name> [options]\n\n' +
            `Experiments: ${shippedSpecNames().join(', ')}; or the path of your own spec (YAML: base config + runs as overrides).\n` +
            'Each run trains once into a run store keyed by its config, seed, code, teacher and dataset; a rerun reuses finished runs\n' +
            '(never one whose code, teacher or dataset changed: that one retrains, unless --reuse-stale) and resumes killed ones.\n' +
            'Example: distill experiment table2 --scale smoke --seeds 1 --out results/table2',
        )
        .positional('name', { type: 'string', describe: 'experiment name or spec path' })
        .option('seeds', {
          type: 'string',
          default: '3',
          describe:
            "seeds per row (0..N-1), or 'auto': start at --min-seeds and add seeds to the rows of undecided claims up to --max-seeds",
        })
        .option('min-seeds', {
          type: 'number',
          default: 3,
          describe: 'with --seeds auto: the seeds every row starts with',
        })
        .option('max-seeds', { type: 'number', default: 10, describe: 'with --seeds auto: the most seeds a row gets' })
        .option('reuse-stale', {
          type: 'boolean',
          default: false,
          describe:
            'reuse finished runs whose code, teacher or dataset differ from now (marked STALE in every report) instead of retraining them',
        })
        .option('workers', {
          type: 'number',
          describe: `training processes at a time (default ${availableParallelism()}: the cores, one onnxruntime thread each)`,
        })
        .option('scale', {
          choices: [...SCALES],
          default: 'full',
          describe: "smoke: a subset and 2 epochs (minutes); full: the emoji main job's budget per run",
        })
        .option('out', {
          type: 'string',
          describe: 'folder for results.json, results.md and the plots (default results/<name>-<scale>)',
        })
        .option('store', {
          type: 'string',
          describe: 'run store shared by experiments (default $DISTILL_CACHE_DIR/runs or .cache/distill/runs)',
        })
        .option('only', {
          type: 'string',
          describe: 'only these rows (comma-separated labels), e.g. --only vit-bert for one pair of arch',
        })
        .option('replicates', { type: 'number', default: 1000, describe: 'bootstrap replicates per claim' })
        .group(
          ['task', 'plan', 'json', 'executor', 'collect', 'store-id', 'plan-id'],
          'Tasks and executors (docs/distributed.md):',
        )
        .option('task', {
          type: 'number',
          describe: 'train only task <i> of the plan into the store (what a cluster scheduler runs)',
        })
        .option('plan', { type: 'boolean', describe: 'list the tasks of the plan (with --json: as JSON) and exit' })
        .option('json', { type: 'boolean', describe: 'with --plan: JSON' })
        .option('collect', {
          type: 'boolean',
          describe: 'report from the store only: a run without a result is named, never trained here',
        })
        .option('store-id', { type: 'string', hidden: true })
        .option('plan-id', { type: 'string', hidden: true })
        .option('executor', {
          choices: ['local', 'slurm', 'k8s'],
          default: 'local',
          describe: 'where the runs train: processes here, a Slurm job array, a Kubernetes Indexed Job',
        }),
      ctx,
      EXPERIMENT_FLAGS,
      {
        notes: {
          dataset: 'every run; default emoji',
          teacher: 'every run; default emoji',
          size: 'every run; default tiny',
          threads: 'per training process; default: the cores / --workers',
          preset:
            "every run at full scale; default the spec's, else emoji; e.g. glyphs: the main job's benchmark and teacher",
        },
      },
    ),
  async handler(args, ctx) {
    const name = String(args.name);
    const scale = args.scale as Scale;
    const out =
      (args.out as string | undefined) ??
      `results/${name.replace(/^.*[\\/]/, '').replace(/\.(ya?ml|json)$/, '')}-${scale}`;
    const raw = Array.isArray(args.seeds) ? args.seeds.at(-1) : args.seeds;
    const seeds = String(raw) === 'auto' ? ('auto' as const) : Number(raw);
    if (seeds !== 'auto' && (!Number.isInteger(seeds) || seeds < 1))
      throw new DistillError(`--seeds expects a whole number >= 1 or 'auto', got '${String(raw)}'.`, 2);
    const workers = args.workers === undefined ? undefined : Number(args.workers);
    const log = createLogger();
    const opts: ExperimentOptions = {
      container: ctx.container,
      scale,
      seeds,
      minSeeds: Number(args.minSeeds),
      maxSeeds: Number(args.maxSeeds),
      reuseStale: Boolean(args.reuseStale),
      preset: args.preset === undefined ? undefined : String(args.preset),
      workers,
      threads: args.threads === undefined ? undefined : Number(args.threads),
      out,
      store: args.store as string | undefined,
      flags: experimentFlags(args),
      logger: log,
      replicates: Number(args.replicates),
      only:
        args.only === undefined
          ? undefined
          : String(args.only)
              .split(',')
              .map((l) => l.trim())
              .filter(Boolean),
      collect: Boolean(args.collect),
    };
    // --plan, --task, --executor slurm|k8s (cluster.ts); undefined: the local executor
    const other = await experimentOnCluster(name, args, opts);
    if (other !== undefined) return other.code;
    const { results, table } = await runExperiments(name, opts);
    process.stdout.write(
      `\nruns: ${results[0]?.reuse ?? 'none'}\nresults: ${out}/results.md (${results.length} table${results.length > 1 ? 's' : ''})\n\n${table}\n`,
    );
    return 0;
  },
};
