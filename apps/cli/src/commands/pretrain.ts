import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { createLogger, DistillError, initRuntime, readJsonFile, RunDirectory, type Logger } from '@distill/core';
import { loadDataset } from '@distill/data';
import {
  deepMerge,
  exportHeadsTeacher,
  HEADS_TEACHER_DEFAULTS,
  loadStudent,
  openRunFolder,
  PRESETS,
  readConfigFile,
  SAFE_RESUME_FIELDS,
  readRunRecord,
  requireMultipleOf32,
  resolveConfig,
  saveStudent,
  train,
  trainHeads,
  trunkFeatures,
  type DeepPartial,
  type HeadsTeacherConfig,
  type TrainConfig,
  type TrainResult,
} from '@distill/training';
import type { CliCommand } from '../command.js';
import { camel, configOverrides, declareFlags, flag, givenFlags, groupFlags, resumeFolder } from '../flags.js';

/** The teacher preset of a dataset: `<dataset>-teacher` where one exists (emoji, glyphs), else emoji's. */
export function teacherPresetFor(dataset: string): string {
  return Object.hasOwn(PRESETS, `${dataset}-teacher`) ? `${dataset}-teacher` : 'emoji-teacher';
}

/** The files a saved distill student (a teacher folder) consists of: all a swap may replace or remove. */
export const TEACHER_FILES = ['student.json', 'model.safetensors', 'tokenizer.json'] as const;

/** What is at --out now: nothing, an empty folder, a distill teacher folder (and whether it holds other files too), or a folder of other files. */
type TeacherOut = 'none' | 'empty' | 'teacher' | 'teacher+other' | 'other';

const inside = (parent: string, child: string) => {
  const r = relative(parent, child);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
};

/**
 * Check --out before any training: never the run folder (or a folder holding it, or inside it), never a
 * file, and an existing folder must be a distill teacher folder (student.json of format
 * distill-student-v1) unless --force. Returns what is there.
 */
export function checkTeacherOut(out: string, runDir: string | undefined, force: boolean): TeacherOut {
  if (runDir && (inside(out, runDir) || inside(runDir, out))) {
    throw new DistillError(
      `--out ${out} ${out === runDir ? 'is' : inside(out, runDir) ? 'holds' : 'is inside'} the run folder ${runDir}: writing the teacher there would replace the run's files. Choose an --out outside the run folder.`,
      2,
    );
  }
  if (!existsSync(out)) return 'none';
  if (!statSync(out).isDirectory())
    throw new DistillError(
      `--out ${out} is a file, not a folder: nothing was written. Choose another --out (the teacher is a folder).`,
      2,
    );
  const names = readdirSync(out);
  if (names.length === 0) return 'empty';
  let isTeacher = false;
  try {
    isTeacher =
      (JSON.parse(readFileSync(join(out, 'student.json'), 'utf8')) as { format?: string }).format ===
      'distill-student-v1';
  } catch {
    isTeacher = false;
  }
  const others = names.filter((n) => !(TEACHER_FILES as readonly string[]).includes(n));
  if (isTeacher) return others.length ? 'teacher+other' : 'teacher';
  if (!force) {
    throw new DistillError(
      `--out ${out} exists and is not a teacher folder written by distill (it holds ${names.slice(0, 3).join(', ')}${names.length > 3 ? ', ...' : ''}): nothing was written. ` +
        "Choose another --out, or pass --force to add the teacher's files to it (its other files are kept).",
      2,
    );
  }
  return 'other';
}

/**
 * Put the teacher written in `tmp` at `out`, deleting nothing but the old teacher's own files. A folder
 * of teacher files only is swapped by renames (at every moment the old teacher is whole at <out> or at
 * <out>.old-...); in a folder with other files, each teacher file is renamed in over the old one, and a
 * same-named file of a non-teacher folder (--force) is kept as <name>.bak-<time>.
 */
function swapTeacherIn(tmp: string, out: string, what: TeacherOut, log: Logger): void {
  if (what === 'none') {
    mkdirSync(dirname(out), { recursive: true });
    renameSync(tmp, out);
    return;
  }
  if (what === 'teacher') {
    const old = `${out}.distill-${process.pid}-${randomBytes(3).toString('hex')}.old`;
    renameSync(out, old);
    renameSync(tmp, out);
    rmSync(old, { recursive: true, force: true });
    return;
  }
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
  for (const f of TEACHER_FILES) {
    const target = join(out, f);
    if (what === 'other' && existsSync(target)) {
      renameSync(target, `${target}.bak-${stamp}`);
      log.warn(`--force: ${target} was not a teacher's file; kept as ${target}.bak-${stamp}`);
    }
    renameSync(join(tmp, f), target);
  }
  rmSync(tmp, { recursive: true, force: true });
}

/** The table's flags of `distill teacher pretrain`, in the order its recorded command line gives them. */
export const PRETRAIN_FLAGS = [
  ...groupFlags('dataset'),
  'preset',
  'config',
  'seed',
  'epochs',
  'max-steps',
  ...groupFlags('device'),
  'run-dir',
  'resume',
];

/** The flags of this command that change the teacher, as the command line that reproduces it (threads and the run folder do not). */
function commandLine(a: Record<string, unknown>): string {
  const changes = PRETRAIN_FLAGS.filter(
    (n) =>
      !['run-dir', 'resume'].includes(n) && !(SAFE_RESUME_FIELDS as readonly string[]).includes(flag(n).config ?? ''),
  );
  return [
    'distill teacher pretrain',
    ...givenFlags({ ...a, dataset: a.dataset === 'emoji' ? undefined : a.dataset }, changes),
  ].join(' ');
}

/**
 * `distill teacher pretrain`: trains a teacher for a dataset - a wider and deeper dual encoder than the
 * `tiny` student, trained contrastively (no teacher) on the dataset's train split - and writes it as a
 * saved distill student (student.json + model.safetensors + tokenizer.json) that `--teacher student
 * --teacher-model <folder>` loads. The embedded `emoji` and `glyphs` teachers were made with it; any
 * dataset works (`--dataset jsonl --annotations ...`), so a user with their own data can make a teacher.
 * Resumable: `--resume <run-dir>` continues a killed run.
 */
export const pretrainCommand: CliCommand = {
  group: 'teacher',
  command: 'pretrain',
  describe: 'Train a teacher for a dataset (contrastive, no teacher) and save it as a teacher folder',
  builder: (y, ctx) =>
    declareFlags(
      y
        .option('out', {
          type: 'string',
          describe:
            'teacher folder to write (default teachers/<dataset>-teacher); an existing folder must be a teacher folder written by distill (or use --force), never the run folder',
        })
        .option('force', {
          type: 'boolean',
          default: false,
          describe:
            'write into an --out folder that is not a teacher folder written by distill (its other files are kept)',
        })
        .option('kind', {
          type: 'string',
          choices: ['student', 'heads'],
          default: 'student',
          describe:
            'student: a dual encoder trained from scratch (teachers v1, v2); heads: frozen pretrained MobileNetV2 + GloVe under trained heads, written as an ONNX teacher folder (teacher v3)',
        })
        .option('image-size', {
          type: 'number',
          describe: `heads: the MobileNetV2 input size, a multiple of 32 (default ${HEADS_TEACHER_DEFAULTS.imageSize})`,
        })
        .option('layer', {
          type: 'string',
          describe: `heads: the MobileNetV2 feature layer, block_0..block_16, last or head_0 (default ${HEADS_TEACHER_DEFAULTS.layer})`,
        })
        .option('pixel-range', {
          type: 'string',
          choices: ['unit', 'signed'],
          describe: `heads: pixels in [0, 1] (unit, as nsfwjs) or [-1, 1] (signed) (default ${HEADS_TEACHER_DEFAULTS.pixelRange})`,
        })
        .option('image-head', {
          type: 'string',
          choices: ['linear', 'mlp'],
          describe: `heads: the image head (default ${HEADS_TEACHER_DEFAULTS.imageHead})`,
        })
        .option('text-encoder', {
          type: 'string',
          choices: ['mean', 'attention'],
          describe: `heads: the text encoder over the word vectors (default ${HEADS_TEACHER_DEFAULTS.textEncoder})`,
        }),
      ctx,
      PRETRAIN_FLAGS,
      {
        notes: {
          dataset: 'default emoji',
          preset: `default <dataset>-teacher where it exists, else emoji-teacher; emoji-teacher: ${resolveConfig({ container: ctx.container, preset: 'emoji-teacher' }).schedule.epochs} epochs, glyphs-teacher: ${resolveConfig({ container: ctx.container, preset: 'glyphs-teacher' }).schedule.epochs} epochs`,
          config: 'student.overrides for the tower sizes, ...',
          epochs: "default: the preset's",
          seed: 'default 0',
        },
      },
    ),
  async handler(args, ctx) {
    const log = createLogger();
    if (args.kind === 'heads') return pretrainHeads(args, log);
    const resumeDir = resumeFolder(args);
    const resume = resumeDir !== undefined;
    const dataset = (args.dataset as string | undefined) ?? 'emoji';
    const given = args.preset !== undefined || args.config !== undefined;
    const preset = (args.preset as string | undefined) ?? teacherPresetFor(dataset);
    // the flags the user gave (a --resume takes the recorded config and refuses flags that change it)
    let overrides: DeepPartial<TrainConfig> = args.config ? readConfigFile(args.config as string) : {};
    overrides = deepMerge(overrides, configOverrides(args, PRETRAIN_FLAGS));
    // a teacher is trained without one, and its report needs no latency or baseline
    overrides = deepMerge(overrides, { losses: 'none', baseline: false });
    const fresh = () =>
      resolveConfig({
        container: ctx.container,
        preset,
        overrides: deepMerge(overrides, { seed: (args.seed as number | undefined) ?? 0, dataset: { name: dataset } }),
        overridesName: 'distill teacher pretrain',
      });
    const out = resolve((args.out as string | undefined) ?? join('teachers', `${dataset}-teacher`));
    const givenRunDir =
      resumeDir !== undefined
        ? resolve(resumeDir)
        : args.runDir !== undefined
          ? resolve(args.runDir as string)
          : undefined;
    const recorded = resume ? readRunRecord(givenRunDir!) : undefined;
    // --resume: the recorded config with the given flags on top (refused below when they change it);
    // a run folder from before config.json was recorded resumes with the config of the flags
    const cfg =
      recorded && !given
        ? resolveConfig({
            container: ctx.container,
            preset: 'emoji',
            file: recorded.config as DeepPartial<TrainConfig>,
            overrides,
          })
        : fresh();
    const teacherOut = checkTeacherOut(out, givenRunDir, Boolean(args.force));
    const runDir = givenRunDir ?? RunDirectory.createUnder('runs', `${dataset}-teacher`).root;
    const command = commandLine({ ...args, dataset });
    // the run guard of `distill train`: run.lock, the config recorded in config.json and checked on reuse
    // (a run folder from before config.json was recorded: its config is recorded now, from the flags)
    const lock = openRunFolder(runDir, cfg, {
      resume: resume && recorded !== undefined,
      command,
      logger: log,
      record: { kind: 'teacher pretrain', out },
    });
    let r: TrainResult;
    try {
      // a finished run of this config is not trained again
      r = existsSync(join(runDir, 'result.json'))
        ? readJsonFile<TrainResult>(join(runDir, 'result.json'))
        : await train(cfg, { runDir, resume, logger: log, label: 'teacher', container: ctx.container });
    } finally {
      lock.release();
    }
    const { student, meta } = loadStudent(join(runDir, 'best'));
    // written beside the target and swapped in at the end
    const tmp = `${out}.distill-${process.pid}-${randomBytes(3).toString('hex')}.tmp`;
    mkdirSync(tmp, { recursive: true });
    saveStudent(tmp, student, {
      ...meta.provenance,
      command,
      seed: cfg.seed,
      config: cfg,
      steps: r.steps,
      trainSeconds: r.seconds,
      val: r.val.at(-1),
      test: r.test,
      parameters: r.parameters,
    });
    student.dispose();
    swapTeacherIn(tmp, out, teacherOut, log);
    process.stdout.write(
      JSON.stringify(
        {
          out,
          dataset: cfg.dataset.name,
          preset: given || !recorded ? preset : undefined,
          test: r.test,
          parameters: r.parameters.total,
          steps: r.steps,
          seconds: r.seconds,
        },
        null,
        2,
      ) + '\n',
    );
  },
};

/** `--kind heads`: teacher v3 (frozen MobileNetV2 features + frozen GloVe under trained heads) as an ONNX teacher folder. */
async function pretrainHeads(args: Record<string, unknown>, log: ReturnType<typeof createLogger>): Promise<void> {
  // the table's flags a heads teacher has no use for are refused, not ignored
  const unused = [
    'preset',
    'max-steps',
    'skip-bad-images',
    'train-subset',
    'eval-subset',
    'backend',
    'device',
    'run-dir',
    'resume',
  ].filter((n) => args[camel(n)] !== undefined);
  if (unused.length)
    throw new DistillError(
      `--kind heads does not use ${unused.map((n) => `--${n}`).join(', ')}: drop ${unused.length > 1 ? 'them' : 'it'}.`,
      2,
    );
  const dataset = (args.dataset as string | undefined) ?? 'emoji';
  const cfg: HeadsTeacherConfig = {
    ...HEADS_TEACHER_DEFAULTS,
    ...(args.config ? (readConfigFile(args.config as string) as Partial<HeadsTeacherConfig>) : {}),
    ...Object.fromEntries(
      Object.entries({
        imageSize: args.imageSize,
        layer: args.layer,
        pixelRange: args.pixelRange,
        imageHead: args.imageHead,
        textEncoder: args.textEncoder,
        epochs: args.epochs,
        seed: args.seed,
      }).filter(([, v]) => v !== undefined),
    ),
  } as HeadsTeacherConfig;
  requireMultipleOf32(cfg.imageSize);
  await initRuntime('wasm', { quiet: true });
  const ds = await loadDataset(dataset, {
    dataRoot: args.dataRoot as string | undefined,
    annotations: args.annotations as string | undefined,
    imageRoot: args.imageRoot as string | undefined,
    log,
  });
  for (const s of ['train', 'val'])
    if (!ds.splits[s])
      throw new DistillError(
        `--kind heads needs a '${s}' split; dataset ${dataset} has ${Object.keys(ds.splits).join(', ')}.`,
        2,
      );
  const t0 = Date.now();
  const all = await trunkFeatures(ds, {
    imageSize: cfg.imageSize,
    layers: [cfg.layer],
    pixelRange: cfg.pixelRange,
    threads: args.threads as number | undefined,
    logger: log,
  });
  const featureSeconds = (Date.now() - t0) / 1000;
  const feats = Object.fromEntries(Object.entries(all).map(([s, f]) => [s, f[cfg.layer]]));
  const r = await trainHeads(ds, feats, cfg, { logger: log });
  const out = resolve((args.out as string | undefined) ?? join('teachers', `${dataset}-teacher-v3`));
  const parts = ['distill teacher pretrain --kind heads'];
  if (dataset !== 'emoji') parts.push(`--dataset ${dataset}`);
  for (const [k, flag] of [
    ['imageSize', 'image-size'],
    ['layer', 'layer'],
    ['pixelRange', 'pixel-range'],
    ['imageHead', 'image-head'],
    ['textEncoder', 'text-encoder'],
    ['epochs', 'epochs'],
    ['seed', 'seed'],
  ] as const) {
    if (args[k] !== undefined) parts.push(`--${flag} ${String(args[k])}`);
  }
  const e = exportHeadsTeacher(out, cfg, r.params, {
    name: `${dataset}-v3`,
    command: parts.join(' '),
    seed: cfg.seed,
    featureSeconds,
    trainSeconds: r.seconds,
    steps: r.steps,
    parameters: r.parameters,
    bestEpoch: r.best.epoch,
    val: r.best.val,
    test: r.test,
    text: r.text,
  });
  process.stdout.write(
    JSON.stringify(
      {
        out,
        dataset,
        kind: 'heads',
        config: cfg,
        val: r.best.val,
        test: r.test,
        bestEpoch: r.best.epoch,
        trainedParameters: r.parameters,
        featureSeconds,
        trainSeconds: r.seconds,
        bytes: e.bytes,
      },
      null,
      2,
    ) + '\n',
  );
}
