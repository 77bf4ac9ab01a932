import { createLogger, DistillError, initRuntime } from '@distill/core';
import { runOnnxTeacherParity } from '@distill/teacher-adapters';
import { deepMerge, obtainTeacherFeatures, obtainTeacherShard, prepareDataset, resolveConfig } from '@distill/training';
import type { CliCommand } from '../command.js';
import { clusterBuilder, featuresSummary, teacherExtractOnCluster } from './cluster.js';
import { configOverrides, declareFlags, groupFlags } from '../flags.js';

/** The table's flags of `distill teacher extract`: the teacher, the dataset and where an ONNX teacher runs. */
const EXTRACT_FLAGS = [...groupFlags('teacher'), ...groupFlags('dataset'), 'device'];

export const teacherCommands: CliCommand[] = [
  {
    group: 'teacher',
    command: 'extract',
    describe: 'Run a teacher over every image and caption of a dataset and cache its features (resumable)',
    builder: (y, ctx) =>
      declareFlags(
        clusterBuilder(y)
          .option('batch-size', {
            type: 'number',
            default: 64,
            describe: 'images (or captions) per teacher run (config key teacher.batchSize)',
          })
          .option('shard', {
            type: 'string',
            describe:
              'compute shard i/N of the extraction into the cache (e.g. 0/4); the cache is complete when every shard is (docs/distributed.md)',
          })
          .option('shards', {
            type: 'number',
            describe: 'with --executor slurm|k8s: how many tasks share the extraction',
          })
          .option('executor', {
            choices: ['local', 'slurm', 'k8s'],
            default: 'local',
            describe:
              'where the extraction runs: here, as a Slurm job array of --shards tasks, as a Kubernetes Indexed Job',
          }),
        ctx,
        EXTRACT_FLAGS,
        {
          defaults: { teacher: 'emoji', dataset: 'emoji' },
          notes: { teacher: 'any name with --teacher-model <saved student>', device: 'ONNX teachers only' },
        },
      ),
    async handler(args, ctx) {
      const log = createLogger();
      await initRuntime('auto', { logger: log });
      const flags = configOverrides(args, EXTRACT_FLAGS);
      const cfg = resolveConfig({
        container: ctx.container,
        overrides: deepMerge(flags, { teacher: { batchSize: args.batchSize as number } }),
      });
      const dataset = await prepareDataset(cfg.dataset, ctx.container);
      // --shard i/N, --executor slurm|k8s (cluster.ts)
      const other = await teacherExtractOnCluster(
        args,
        (shard) => obtainTeacherShard(cfg, dataset, shard, log, ctx.container),
        log,
      );
      const f = other ?? featuresSummary(await obtainTeacherFeatures(cfg, dataset, log, ctx.container));
      process.stdout.write(JSON.stringify(f, null, 2) + '\n');
    },
  },
  {
    group: 'parity',
    command: 'onnx-teacher <dir>',
    describe:
      'Run an exported teacher folder (image.onnx, text.onnx, reference.json) and print the max abs diff per output',
    builder: (y) =>
      y
        .positional('dir', { type: 'string', describe: 'folder with image.onnx, text.onnx and reference.json' })
        .option('preset', {
          type: 'string',
          default: 'clip',
          describe: 'teacher preset whose input/output names to use',
        }),
    async handler(args) {
      if (!args.dir) throw new DistillError('Name the teacher folder.', 2);
      process.stdout.write(
        JSON.stringify(await runOnnxTeacherParity(args.dir as string, args.preset as string)) + '\n',
      );
    },
  },
];
