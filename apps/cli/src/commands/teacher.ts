import { createLogger, DistillError, initRuntime } from '@distill/core';
import { runOnnxTeacherParity } from '@distill/teacher-adapters';
import { obtainTeacherFeatures, obtainTeacherShard, prepareDataset, resolveConfig } from '@distill/training';
import type { CliCommand } from '../command.js';
import { clusterBuilder, featuresSummary, teacherExtractOnCluster } from './cluster.js';
import { registeredNames } from './train.js';

export const teacherCommands: CliCommand[] = [
  {
    group: 'teacher',
    command: 'extract',
    describe: "Run a teacher over every image and caption of a dataset and cache its features (resumable)",
    builder: (y, ctx) =>
      clusterBuilder(y)
        .option('teacher', { type: 'string', default: 'emoji', describe: `teacher: ${registeredNames(ctx.container, 'teacher')} (any name with --teacher-model <saved student>)` })
        .option('teacher-model', { type: 'string', describe: 'teacher folder' })
        .option('dataset', { type: 'string', default: 'emoji', describe: `dataset: ${registeredNames(ctx.container, 'dataset')}` })
        .option('data-root', { type: 'string' })
        .option('annotations', { type: 'string' })
        .option('image-root', { type: 'string', describe: 'folder the annotation file\'s image paths are relative to' })
        .option('batch-size', { type: 'number', default: 64 })
        .option('skip-bad-images', { type: 'boolean' })
        .option('train-subset', { type: 'number', describe: 'only the first N train images (and their captions)' })
        .option('eval-subset', { type: 'number', describe: 'only the first N val/test images' })
        .option('device', { type: 'string', describe: 'device for an ONNX teacher (cpu, webgpu)' })
        .option('shard', { type: 'string', describe: 'compute shard i/N of the extraction into the cache (e.g. 0/4); the cache is complete when every shard is (docs/distributed.md)' })
        .option('shards', { type: 'number', describe: 'with --executor slurm|k8s: how many tasks share the extraction' })
        .option('executor', { choices: ['local', 'slurm', 'k8s'], default: 'local', describe: 'where the extraction runs: here, as a Slurm job array of --shards tasks, as a Kubernetes Indexed Job' }),
    async handler(args, ctx) {
      const log = createLogger();
      await initRuntime('auto', { logger: log });
      const cfg = resolveConfig({
        container: ctx.container,
        overrides: {
          ...(args.device !== undefined ? { device: args.device as 'cpu' } : {}),
          teacher: { name: args.teacher as string, model: args.teacherModel as string | undefined, batchSize: args.batchSize as number },
          dataset: { name: args.dataset as string, dataRoot: args.dataRoot as string | undefined, annotations: args.annotations as string | undefined, imageRoot: args.imageRoot as string | undefined, skipBadImages: args.skipBadImages as boolean | undefined, trainSubset: args.trainSubset as number | undefined, evalSubset: args.evalSubset as number | undefined },
        },
      });
      const dataset = await prepareDataset(cfg.dataset, ctx.container);
      // --shard i/N, --executor slurm|k8s (cluster.ts)
      const other = await teacherExtractOnCluster(args, (shard) => obtainTeacherShard(cfg, dataset, shard, log, ctx.container), log);
      const f = other ?? featuresSummary(await obtainTeacherFeatures(cfg, dataset, log, ctx.container));
      process.stdout.write(JSON.stringify(f, null, 2) + '\n');
    },
  },
  {
    group: 'parity',
    command: 'onnx-teacher <dir>',
    describe: 'Run an exported teacher folder (image.onnx, text.onnx, reference.json) and print the max abs diff per output',
    builder: (y) =>
      y
        .positional('dir', { type: 'string', describe: 'folder with image.onnx, text.onnx and reference.json' })
        .option('preset', { type: 'string', default: 'clip', describe: 'teacher preset whose input/output names to use' }),
    async handler(args) {
      if (!args.dir) throw new DistillError('Name the teacher folder.', 2);
      process.stdout.write(JSON.stringify(await runOnnxTeacherParity(args.dir as string, args.preset as string)) + '\n');
    },
  },
];
