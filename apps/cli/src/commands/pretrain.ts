import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createLogger, DistillError, RunDirectory } from '@distill/core';
import { deepMerge, loadStudent, PRESETS, readConfigFile, resolveConfig, saveStudent, train, type DeepPartial, type TrainConfig, type TrainResult } from '@distill/training';
import type { CliCommand } from '../command.js';

/** The teacher preset of a dataset: `<dataset>-teacher` where one exists (emoji, glyphs), else emoji's. */
export function teacherPresetFor(dataset: string): string {
  return Object.hasOwn(PRESETS, `${dataset}-teacher`) ? `${dataset}-teacher` : 'emoji-teacher';
}

/** The flags of this command that change the teacher, as the command line that reproduces it. */
function commandLine(a: Record<string, unknown>): string {
  const parts = ['distill teacher pretrain'];
  for (const [key, flag] of [
    ['dataset', 'dataset'],
    ['dataRoot', 'data-root'],
    ['annotations', 'annotations'],
    ['imageRoot', 'image-root'],
    ['preset', 'preset'],
    ['config', 'config'],
    ['seed', 'seed'],
    ['epochs', 'epochs'],
    ['maxSteps', 'max-steps'],
  ] as const) {
    const v = a[key];
    if (v === undefined || (key === 'dataset' && v === 'emoji')) continue;
    parts.push(`--${flag} ${String(v)}`);
  }
  return parts.join(' ');
}

/**
 * `distill teacher pretrain`: trains a teacher for a dataset - a wider and deeper dual encoder than the
 * `tiny` student, trained contrastively (no teacher) on the dataset's train split - and writes it as a
 * saved distill student (student.json + model.safetensors + tokenizer.json) that `--teacher student
 * --teacher-model <folder>` loads. The embedded `emoji` and `glyphs` teachers were made with it; any
 * dataset works (`--dataset jsonl --annotations ...`), so a user with their own data can make a teacher.
 * Resumable: `--run-dir <dir> --resume` continues a killed run.
 */
export const pretrainCommand: CliCommand = {
  group: 'teacher',
  command: 'pretrain',
  describe: 'Train a teacher for a dataset (contrastive, no teacher) and save it as a teacher folder',
  builder: (y) =>
    y
      .option('dataset', { type: 'string', default: 'emoji', describe: 'dataset to train on (emoji, glyphs, karpathy, jsonl, ...)' })
      .option('data-root', { type: 'string', describe: 'folder with the dataset annotations and images' })
      .option('annotations', { type: 'string', describe: 'annotation file (Karpathy JSON, JSONL, DSMD list)' })
      .option('image-root', { type: 'string', describe: "folder the annotation file's image paths are relative to" })
      .option('preset', { type: 'string', describe: `teacher preset (default <dataset>-teacher where it exists, else emoji-teacher; emoji-teacher: ${resolveConfig({ preset: 'emoji-teacher' }).schedule.epochs} epochs, glyphs-teacher: ${resolveConfig({ preset: 'glyphs-teacher' }).schedule.epochs} epochs)` })
      .option('config', { type: 'string', describe: 'YAML or JSON file of config keys over the preset (student.overrides for the tower sizes, ...)' })
      .option('out', { type: 'string', describe: 'teacher folder to write (default teachers/<dataset>-teacher)' })
      .option('epochs', { type: 'number', describe: 'epochs (default: the preset\'s)' })
      .option('max-steps', { type: 'number', describe: 'stop after this many steps' })
      .option('seed', { type: 'number', default: 0 })
      .option('threads', { type: 'number', describe: 'onnxruntime threads (0 = all cores)' })
      .option('run-dir', { type: 'string', describe: 'training run folder (default runs/<dataset>-teacher-<time>)' })
      .option('resume', { type: 'boolean', default: false, describe: 'resume the run in --run-dir' }),
  async handler(args) {
    const log = createLogger();
    const dataset = args.dataset as string;
    const preset = (args.preset as string | undefined) ?? teacherPresetFor(dataset);
    if (args.resume && !args.runDir) throw new DistillError('--resume needs --run-dir <the killed run folder>.', 2);
    let overrides: DeepPartial<TrainConfig> = args.config ? readConfigFile(args.config as string) : {};
    overrides = deepMerge(overrides, {
      seed: args.seed as number,
      threads: args.threads as number | undefined,
      dataset: { name: dataset, dataRoot: args.dataRoot as string | undefined, annotations: args.annotations as string | undefined, imageRoot: args.imageRoot as string | undefined },
      schedule: { epochs: args.epochs as number | undefined },
      maxSteps: args.maxSteps as number | undefined,
      // a teacher is trained without one, and its report needs no latency or baseline
      losses: 'none',
      baseline: false,
    });
    const cfg = resolveConfig({ preset, overrides, overridesName: 'distill teacher pretrain' });
    const out = resolve((args.out as string | undefined) ?? join('teachers', `${dataset}-teacher`));
    const runDir = (args.runDir as string | undefined) ?? RunDirectory.createUnder('runs', `${dataset}-teacher`).root;
    if (args.resume && !existsSync(runDir)) throw new DistillError(`--resume: the run folder ${runDir} does not exist.`, 2);
    const r: TrainResult = await train(cfg, { runDir, resume: Boolean(args.resume), logger: log, label: 'teacher' });
    const { student, meta } = loadStudent(join(runDir, 'best'));
    // written beside the target and swapped in at the end
    const tmp = `${out}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    saveStudent(tmp, student, {
      ...meta.provenance,
      command: commandLine(args),
      seed: cfg.seed,
      config: cfg,
      steps: r.steps,
      trainSeconds: r.seconds,
      val: r.val.at(-1),
      test: r.test,
      parameters: r.parameters,
    });
    student.dispose();
    // renames in one folder: at every moment the old teacher is whole at <out> or <out>.old
    const old = `${out}.old`;
    rmSync(old, { recursive: true, force: true });
    if (existsSync(out)) renameSync(out, old);
    renameSync(tmp, out);
    rmSync(old, { recursive: true, force: true });
    process.stdout.write(JSON.stringify({ out, dataset, preset, test: r.test, parameters: r.parameters.total, steps: r.steps, seconds: r.seconds }, null, 2) + '\n');
  },
};
