import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger, DistillError, readJsonFile, registryByKind, RunDirectory, type Container, type RegistryKind } from '@distill/core';
import {
  loadPlugins,
  MAIN_JOB_PRESET,
  pluginHashes,
  PRESETS,
  readConfigFile,
  readRunRecord,
  resolveConfig,
  resumeConfig,
  runExperiment,
  STUDENT_SIZES,
  TRAIN_BACKENDS,
  TRAIN_DEVICES,
  type DeepPartial,
  type TrainConfig,
} from '@distill/training';
import type { CliCommand } from '../command.js';

const SIZE_HELP = 'student size: tiny, small, base (config key student.preset)';

/** The names registered for `kind` (built-ins and loaded plugins), for help texts; pattern entries last. */
export function registeredNames(container: Container, kind: RegistryKind): string {
  return registryByKind(container, kind).names().join(', ');
}

/** CLI flags -> config overrides (only the flags the user gave). */
export function overridesFromArgs(a: Record<string, unknown>): { preset?: string; overrides: DeepPartial<TrainConfig> } {
  const o: DeepPartial<TrainConfig> = {};
  const flag = (key: string) => `--${key.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`)}`;
  const set = (path: string, key: string) => {
    const v = a[key];
    if (v === undefined) return;
    if (Array.isArray(v)) throw new DistillError(`${flag(key)} was given ${v.length} times (${v.join(', ')}); give it once.`, 2);
    if (typeof v === 'number' && !Number.isFinite(v)) throw new DistillError(`${flag(key)} expects a number.`, 2);
    const keys = path.split('.');
    let cur = o as Record<string, unknown>;
    for (const k of keys.slice(0, -1)) cur = (cur[k] ??= {}) as Record<string, unknown>;
    cur[keys.at(-1)!] = v;
  };
  // --preset is an experiment preset (emoji, smoke, paper); the student size has its own flag, --size.
  const p = a.preset;
  const sizes = (Array.isArray(p) ? p : [p]).filter((x) => STUDENT_SIZES.includes(x as never));
  const useSize = sizes.length ? ` The student size has its own flag: use --size ${sizes[0]}.` : '';
  if (Array.isArray(p)) throw new DistillError(`--preset was given ${p.length} times (${p.join(', ')}); give it once.${useSize}`, 2);
  const preset = p as string | undefined;
  if (preset !== undefined && !Object.hasOwn(PRESETS, preset)) {
    throw new DistillError(`--preset takes an experiment preset (${Object.keys(PRESETS).join(', ')}), got '${preset}'.${useSize}`, 2);
  }
  set('student.preset', 'size');
  set('seed', 'seed');
  set('backend', 'backend');
  set('threads', 'threads');
  set('device', 'device');
  set('dataset.name', 'dataset');
  set('dataset.dataRoot', 'dataRoot');
  set('dataset.annotations', 'annotations');
  set('dataset.imageRoot', 'imageRoot');
  set('dataset.skipBadImages', 'skipBadImages');
  set('teacher.name', 'teacher');
  set('teacher.model', 'teacherModel');
  set('student.pair', 'student');
  set('student.imageInit', 'imageInit');
  set('student.textInit', 'textInit');
  set('student.normalize', 'normalize');
  set('losses', 'losses');
  set('balancer', 'balancer');
  set('lossOptions.temperature', 'temperature');
  set('lossOptions.queueSize', 'queueSize');
  set('lossOptions.margin', 'margin');
  set('lossOptions.hardNegative', 'hardNegative');
  set('optimizer.lr', 'lr');
  set('optimizer.weightDecay', 'weightDecay');
  set('schedule.epochs', 'epochs');
  set('schedule.decayEpoch', 'decayEpoch');
  set('batchSize', 'batchSize');
  set('checkpointEvery', 'checkpointEvery');
  set('maxSteps', 'maxSteps');
  set('baseline', 'baseline');
  set('latency', 'latency');
  return { preset, overrides: o };
}

export const trainCommand: CliCommand = {
  command: 'train',
  describe: 'Distil a teacher into a student (default: the main job on the glyphs benchmark, teacher v2, vit-bert tiny)',
  builder: (y, ctx) =>
    y
      .usage(
        'distill train [options]\n\n' +
          'With no options: the main job (preset glyphs: the glyphs benchmark, its embedded teacher v2, vit-bert tiny, plus the no-teacher baseline; 13 min cold on 2 cores).\n' +
          'The small, fast set: distill train --preset emoji (2 min).\n' +
          'Paper setting: distill train --preset paper --teacher beit3 --teacher-model <dir> --student vit-bert --size base --dataset flickr30k --data-root <dir>',
      )
      .option('config', { type: 'string', describe: 'experiment file (YAML or JSON); flags override it' })
      .option('preset', { type: 'string', describe: `experiment preset: ${Object.keys(PRESETS).join(', ')} (default ${MAIN_JOB_PRESET}: the main job)` })
      .option('size', { choices: [...STUDENT_SIZES], describe: SIZE_HELP })
      .option('teacher', { type: 'string', describe: `teacher: ${registeredNames(ctx.container, 'teacher')} (default: the preset's; glyphs teacher v2 for the main job, emoji for --preset emoji)` })
      .option('teacher-model', { type: 'string', describe: 'teacher folder (ONNX export, feature store, or saved distill student)' })
      .option('student', { type: 'string', describe: `student pair: ${registeredNames(ctx.container, 'student')}` })
      .option('image-init', { type: 'string', describe: "Hugging Face folder to start the image tower from, or 'mobilenetv2' (with --student mobilenet-bert): MobileNetV2's converted ImageNet weights" })
      .option('text-init', { type: 'string', describe: "Hugging Face folder to start the text tower from (its tokenizer.json is used), or 'glove': the word embeddings of the tokenizer's whole-word tokens start from GloVe 100-d vectors (PCA-projected to the tower's width)" })
      .option('normalize', {
        type: 'boolean',
        describe: "L2-normalise the student's features the losses see (default true; --no-normalize: Table 6's ablation). Training only: evaluation, retrieval and export always normalise (cosine retrieval)",
      })
      .option('dataset', { type: 'string', describe: `dataset: ${registeredNames(ctx.container, 'dataset')} (default: the preset's; glyphs for the main job)` })
      .option('data-root', { type: 'string', describe: 'folder with the dataset annotations and images' })
      .option('annotations', { type: 'string', describe: 'annotation file (Karpathy JSON, JSONL, DSMD list)' })
      .option('image-root', { type: 'string', describe: 'folder the annotation file\'s image paths are relative to' })
      .option('skip-bad-images', { type: 'boolean', describe: 'warn and count unreadable images instead of stopping' })
      .option('losses', { type: 'string', describe: `loss method: ${registeredNames(ctx.container, 'loss')} (a list of DSMD components like cd,hnd)` })
      .option('balancer', { type: 'string', describe: `balancer: ${registeredNames(ctx.container, 'balancer')} (default: the method's own)` })
      .option('temperature', { type: 'number', describe: 'contrastive temperature (paper 0.05)' })
      .option('queue-size', { type: 'number', describe: 'feature queue size K (paper 8192)' })
      .option('margin', { type: 'number', describe: 'hinge margin' })
      .option('hard-negative', { choices: ['sum', 'max'], describe: 'hinge over all negatives (official) or the hardest (paper)' })
      .option('epochs', { type: 'number' })
      .option('decay-epoch', { type: 'number', describe: 'epoch at which the lr is multiplied by 0.1' })
      .option('batch-size', { type: 'number' })
      .option('lr', { type: 'number' })
      .option('weight-decay', { type: 'number' })
      .option('seed', { type: 'number' })
      .option('max-steps', { type: 'number', describe: 'stop after this many steps (0 = no limit)' })
      .option('checkpoint-every', { type: 'number', describe: 'checkpoint every N steps (and every epoch)' })
      .option('baseline', { type: 'boolean', describe: 'also train the no-teacher student of the same size and budget' })
      .option('latency', { type: 'boolean', describe: 'measure encoder latency for the report' })
      .option('backend', { choices: TRAIN_BACKENDS, describe: 'compute backend (auto: tensorflow > onnx > wasm > cpu; onnx = the student and its losses on onnxruntime-node; losses with no graph form (dcd, kd, ...) on tfjs)' })
      .option('threads', { type: 'number', describe: 'onnxruntime threads for --backend onnx (0 = all cores)' })
      .option('device', {
        choices: TRAIN_DEVICES,
        describe: 'where the onnx engine runs (default cpu): webgpu = onnxruntime WebGPU (Vulkan; on a machine without a GPU, lavapipe: slow, a correctness check); auto = webgpu on a hardware adapter, else cpu',
      })
      .option('run-dir', { type: 'string', describe: 'run folder (default: a new folder under runs/)' })
      .option('resume', { type: 'string', describe: 'continue the killed run in this folder' })
      .option('seeds', { type: 'number', describe: 'train at seeds seed..seed+N-1 (parallel processes, a shared run store) and report mean and std per metric' })
      .option('print-config', { type: 'boolean', describe: 'print the resolved config and exit (creates no folder, loads no teacher or data)' }),
  async handler(args, ctx) {
    const log = createLogger();
    let cfg: TrainConfig;
    let runDir: string;
    const resume = args.resume as string | undefined;
    if (resume) {
      // The recorded config; flags given with --resume must not change it (only safe ones like --threads).
      // Its plugins are loaded first: it names their entries.
      const recorded = readRunRecord(resume)?.config as Partial<TrainConfig> | undefined;
      const extra = (recorded?.plugins ?? []).filter((p) => !ctx.plugins.includes(p));
      await loadPlugins(ctx.container, extra);
      const { preset, overrides } = overridesFromArgs(args);
      if (ctx.plugins.length) overrides.plugins = ctx.plugins;
      // the plugins' content now: a plugin edited since the run started is refused, naming it
      if (recorded?.pluginHashes) overrides.pluginHashes = pluginHashes([...new Set([...(recorded.plugins ?? []), ...ctx.plugins])]);
      cfg = resumeConfig(resume, { container: ctx.container, preset, file: args.config ? readConfigFile(args.config as string) : undefined, overrides });
      runDir = resume;
    } else {
      const { preset, overrides } = overridesFromArgs(args);
      if (ctx.plugins.length) {
        overrides.plugins = ctx.plugins; // recorded: the baseline process and --resume load them too
        overrides.pluginHashes = pluginHashes(ctx.plugins); // and their content, checked by --resume
      }
      cfg = resolveConfig({ container: ctx.container, preset: preset ?? MAIN_JOB_PRESET, file: args.config ? readConfigFile(args.config as string) : undefined, fileName: args.config as string | undefined, overrides });
      runDir = (args.runDir as string | undefined) ?? '';
    }
    if (args.printConfig) {
      // Only the resolved config: no run folder, no teacher, no data.
      process.stdout.write(JSON.stringify(cfg, null, 2) + '\n');
      return 0;
    }
    if (args.seeds !== undefined && !resume) {
      // several seeds: a one-row experiment (@distill/experiments), mean and std per metric
      const { runSeeds } = await import('@distill/experiments');
      const out = runDir || RunDirectory.createUnder('runs', `${cfg.dataset.name}-${cfg.student.pair}-seeds`).root;
      const { table } = await runSeeds(cfg, { container: ctx.container, seeds: Number(args.seeds), out, logger: log });
      process.stdout.write(`\nresults: ${join(out, 'results.md')}\n\n${table}\n`);
      return 0;
    }
    runDir ||= RunDirectory.createUnder('runs', `${cfg.dataset.name}-${cfg.student.pair}`).root;
    log.info(`run folder: ${runDir}`);
    // the report's latency as `distill export` measures it: onnxruntime on the exported graphs
    const latency = async (dir: string) => (await import('@distill/serve')).exportedLatency(dir);
    const r = await runExperiment(cfg, { runDir, resume: Boolean(resume), logger: log, command: process.argv.slice(2).join(' '), container: ctx.container, latency });
    const t = r.student.test;
    const out = [
      '',
      readJsonFile<{ table: string }>(join(r.runDir, 'experiment.json')).table,
      '',
      `report: ${r.report}`,
      r.baseline ? `no-teacher test RSUM ${r.baseline.test.rsum.toFixed(2)} vs distilled ${t.rsum.toFixed(2)}` : '',
      `test i2t R@1 ${t.i2t_r1.toFixed(2)} R@5 ${t.i2t_r5.toFixed(2)} R@10 ${t.i2t_r10.toFixed(2)}`,
      `test t2i R@1 ${t.t2i_r1.toFixed(2)} R@5 ${t.t2i_r5.toFixed(2)} R@10 ${t.t2i_r10.toFixed(2)}`,
      `test RSUM ${t.rsum.toFixed(2)}`,
    ].filter((l, i, a) => l !== '' || (i > 0 && a[i - 1] !== ''));
    process.stdout.write(out.join('\n') + '\n');
    return 0;
  },
};
