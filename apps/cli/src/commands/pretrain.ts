import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createLogger, DistillError, initRuntime, RunDirectory } from '@distill/core';
import { loadDataset } from '@distill/data';
import { deepMerge, exportHeadsTeacher, HEADS_TEACHER_DEFAULTS, loadStudent, PRESETS, readConfigFile, requireMultipleOf32, resolveConfig, saveStudent, train, trainHeads, trunkFeatures, type DeepPartial, type HeadsTeacherConfig, type TrainConfig, type TrainResult } from '@distill/training';
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
      .option('resume', { type: 'boolean', default: false, describe: 'resume the run in --run-dir' })
      .option('kind', { type: 'string', choices: ['student', 'heads'], default: 'student', describe: 'student: a dual encoder trained from scratch (teachers v1, v2); heads: frozen pretrained MobileNetV2 + GloVe under trained heads, written as an ONNX teacher folder (teacher v3)' })
      .option('image-size', { type: 'number', describe: `heads: the MobileNetV2 input size, a multiple of 32 (default ${HEADS_TEACHER_DEFAULTS.imageSize})` })
      .option('layer', { type: 'string', describe: `heads: the MobileNetV2 feature layer, block_0..block_16, last or head_0 (default ${HEADS_TEACHER_DEFAULTS.layer})` })
      .option('pixel-range', { type: 'string', choices: ['unit', 'signed'], describe: `heads: pixels in [0, 1] (unit, as nsfwjs) or [-1, 1] (signed) (default ${HEADS_TEACHER_DEFAULTS.pixelRange})` })
      .option('image-head', { type: 'string', choices: ['linear', 'mlp'], describe: `heads: the image head (default ${HEADS_TEACHER_DEFAULTS.imageHead})` })
      .option('text-encoder', { type: 'string', choices: ['mean', 'attention'], describe: `heads: the text encoder over the word vectors (default ${HEADS_TEACHER_DEFAULTS.textEncoder})` }),
  async handler(args) {
    const log = createLogger();
    if (args.kind === 'heads') return pretrainHeads(args, log);
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

/** `--kind heads`: teacher v3 (frozen MobileNetV2 features + frozen GloVe under trained heads) as an ONNX teacher folder. */
async function pretrainHeads(args: Record<string, unknown>, log: ReturnType<typeof createLogger>): Promise<void> {
  const dataset = args.dataset as string;
  const cfg: HeadsTeacherConfig = {
    ...HEADS_TEACHER_DEFAULTS,
    ...(args.config ? (readConfigFile(args.config as string) as Partial<HeadsTeacherConfig>) : {}),
    ...Object.fromEntries(
      Object.entries({ imageSize: args.imageSize, layer: args.layer, pixelRange: args.pixelRange, imageHead: args.imageHead, textEncoder: args.textEncoder, epochs: args.epochs, seed: args.seed }).filter(([, v]) => v !== undefined),
    ),
  } as HeadsTeacherConfig;
  requireMultipleOf32(cfg.imageSize);
  await initRuntime('wasm', { quiet: true });
  const ds = await loadDataset(dataset, { dataRoot: args.dataRoot as string | undefined, annotations: args.annotations as string | undefined, imageRoot: args.imageRoot as string | undefined, log });
  for (const s of ['train', 'val']) if (!ds.splits[s]) throw new DistillError(`--kind heads needs a '${s}' split; dataset ${dataset} has ${Object.keys(ds.splits).join(', ')}.`, 2);
  const t0 = Date.now();
  const all = await trunkFeatures(ds, { imageSize: cfg.imageSize, layers: [cfg.layer], pixelRange: cfg.pixelRange, threads: args.threads as number | undefined, logger: log });
  const featureSeconds = (Date.now() - t0) / 1000;
  const feats = Object.fromEntries(Object.entries(all).map(([s, f]) => [s, f[cfg.layer]]));
  const r = await trainHeads(ds, feats, cfg, { logger: log });
  const out = resolve((args.out as string | undefined) ?? join('teachers', `${dataset}-teacher-v3`));
  const parts = ['distill teacher pretrain --kind heads'];
  if (dataset !== 'emoji') parts.push(`--dataset ${dataset}`);
  for (const [k, flag] of [['imageSize', 'image-size'], ['layer', 'layer'], ['pixelRange', 'pixel-range'], ['imageHead', 'image-head'], ['textEncoder', 'text-encoder'], ['epochs', 'epochs'], ['seed', 'seed']] as const) {
    if (args[k] !== undefined) parts.push(`--${flag} ${String(args[k])}`);
  }
  const e = exportHeadsTeacher(out, cfg, r.params, {
    name: `${dataset}-v3`, command: parts.join(' '), seed: cfg.seed, featureSeconds, trainSeconds: r.seconds, steps: r.steps, parameters: r.parameters,
    bestEpoch: r.best.epoch, val: r.best.val, test: r.test, text: r.text,
  });
  process.stdout.write(JSON.stringify({ out, dataset, kind: 'heads', config: cfg, val: r.best.val, test: r.test, bestEpoch: r.best.epoch, trainedParameters: r.parameters, featureSeconds, trainSeconds: r.seconds, bytes: e.bytes }, null, 2) + '\n');
}
