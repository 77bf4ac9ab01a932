import { createLogger, DistillError, initRuntime } from '@distill/core';
import { runOnnxTeacherParity } from '@distill/teacher-adapters';
import { obtainTeacherFeatures, prepareDataset, resolveConfig } from '@distill/training';
import type { CliCommand } from '../command.js';
import { registeredNames } from './train.js';

export const teacherCommands: CliCommand[] = [
  {
    group: 'teacher',
    command: 'extract',
    describe: "Run a teacher over every image and caption of a dataset and cache its features (resumable)",
    builder: (y) =>
      y
        .option('teacher', { type: 'string', default: 'emoji', describe: `teacher: ${registeredNames('teacher')} (any name with --teacher-model <saved student>)` })
        .option('teacher-model', { type: 'string', describe: 'teacher folder' })
        .option('dataset', { type: 'string', default: 'emoji', describe: `dataset: ${registeredNames('dataset')}` })
        .option('data-root', { type: 'string' })
        .option('annotations', { type: 'string' })
        .option('image-root', { type: 'string', describe: 'folder the annotation file\'s image paths are relative to' })
        .option('batch-size', { type: 'number', default: 64 })
        .option('skip-bad-images', { type: 'boolean' })
        .option('train-subset', { type: 'number', describe: 'only the first N train images (and their captions)' })
        .option('eval-subset', { type: 'number', describe: 'only the first N val/test images' }),
    async handler(args) {
      const log = createLogger();
      await initRuntime('auto', { logger: log });
      const cfg = resolveConfig({
        overrides: {
          teacher: { name: args.teacher as string, model: args.teacherModel as string | undefined, batchSize: args.batchSize as number },
          dataset: { name: args.dataset as string, dataRoot: args.dataRoot as string | undefined, annotations: args.annotations as string | undefined, imageRoot: args.imageRoot as string | undefined, skipBadImages: args.skipBadImages as boolean | undefined, trainSubset: args.trainSubset as number | undefined, evalSubset: args.evalSubset as number | undefined },
        },
      });
      const f = await obtainTeacherFeatures(cfg, await prepareDataset(cfg.dataset), log);
      const counts = Object.fromEntries(Object.entries(f.splits).map(([k, v]) => [k, { images: v.images.length / f.dim, texts: v.texts.length / f.dim }]));
      process.stdout.write(JSON.stringify({ teacher: f.name, dim: f.dim, cache: f.file, key: f.fingerprint, splits: counts }, null, 2) + '\n');
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
