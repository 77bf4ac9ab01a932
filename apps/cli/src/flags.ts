import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  DistillError,
  registryByKind,
  type Container,
  type Dataset,
  type RegistryKind,
  type SplitData,
} from '@distill/core';
import { loadDataset } from '@distill/data';
import {
  PRESETS,
  STUDENT_SIZES,
  TRAIN_BACKENDS,
  TRAIN_DEVICES,
  type DeepPartial,
  type TrainConfig,
} from '@distill/training';
import type { Argv } from 'yargs';
import type { CliContext } from './command.js';

/**
 * The CLI's one flag table: every option that sets a config key, or that names the dataset, the
 * device or the run, is declared here once (name, type, help, choices, the config key it sets), and a
 * command pulls the flags it needs with `declareFlags` (shown under its group's heading in --help).
 * `configOverrides` turns the given flags into config overrides from the same entries, so a flag's
 * config key is written once. flags.test.ts fails when a command declares one of these options by hand.
 */
export type FlagGroup = 'dataset' | 'teacher' | 'student' | 'training' | 'device' | 'run';

/** The --help heading of each group, in the order they are shown. */
export const GROUP_HEADINGS: Record<FlagGroup, string> = {
  dataset: 'Dataset:',
  teacher: 'Teacher:',
  student: 'Student:',
  training: 'Losses and optimisation:',
  device: 'Device:',
  run: 'Run:',
};

export interface Flag {
  /** The option, without the dashes (kebab-case). */
  name: string;
  group: FlagGroup;
  type: 'string' | 'number' | 'boolean';
  /** One help text (a function for those that list registered names). */
  describe: string | ((ctx: CliContext) => string);
  /** The config key (dot path) the flag sets; none for flags that are not config (--run-dir, --resume, ...). */
  config?: string;
  choices?: readonly string[];
}

/** Marks an option spec as declared from the table (flags.test.ts checks that every table name is). */
export const FROM_TABLE: unique symbol = Symbol('distill flag table');

/** The names registered for `kind` (built-ins and loaded plugins), for help texts; pattern entries last. */
export function registeredNames(container: Container, kind: RegistryKind): string {
  return registryByKind(container, kind).names().join(', ');
}

/**
 * The compute backend: one vocabulary for every command. A command that runs tfjs only (doctor, eval
 * embeddings, parity hf) treats onnx as auto for its tfjs part (tfjsBackendFor).
 */
export const BACKEND_HELP =
  'compute backend: auto = tensorflow (tfjs-node) when it loads, else onnx where the student supports it, else wasm, else cpu; ' +
  'onnx = the student and its losses as onnxruntime-node graphs; tensorflow, wasm, cpu = tfjs (commands that run tfjs only take onnx as auto)';

export const DEVICE_HELP =
  "where the onnx engine runs (default cpu): webgpu = onnxruntime's WebGPU provider (Vulkan; on a machine without a GPU, lavapipe: slow, a correctness check); auto = webgpu on a hardware adapter, else cpu";

export const FLAGS: readonly Flag[] = [
  // dataset
  {
    name: 'dataset',
    group: 'dataset',
    type: 'string',
    config: 'dataset.name',
    describe: (c) => `dataset: ${registeredNames(c.container, 'dataset')}`,
  },
  {
    name: 'data-root',
    group: 'dataset',
    type: 'string',
    config: 'dataset.dataRoot',
    describe: 'folder with the dataset annotations and images',
  },
  {
    name: 'annotations',
    group: 'dataset',
    type: 'string',
    config: 'dataset.annotations',
    describe: 'annotation file or folder (Karpathy JSON, JSONL, DSMD list)',
  },
  {
    name: 'image-root',
    group: 'dataset',
    type: 'string',
    config: 'dataset.imageRoot',
    describe: "folder the annotation file's image paths are relative to",
  },
  {
    name: 'skip-bad-images',
    group: 'dataset',
    type: 'boolean',
    config: 'dataset.skipBadImages',
    describe: 'warn and count unreadable images instead of stopping',
  },
  {
    name: 'train-subset',
    group: 'dataset',
    type: 'number',
    config: 'dataset.trainSubset',
    describe: 'only the first N train images (and their captions)',
  },
  {
    name: 'eval-subset',
    group: 'dataset',
    type: 'number',
    config: 'dataset.evalSubset',
    describe: 'only the first N val/test images',
  },
  // teacher
  {
    name: 'teacher',
    group: 'teacher',
    type: 'string',
    config: 'teacher.name',
    describe: (c) => `teacher: ${registeredNames(c.container, 'teacher')}`,
  },
  {
    name: 'teacher-model',
    group: 'teacher',
    type: 'string',
    config: 'teacher.model',
    describe: 'teacher folder (ONNX export, feature store, or saved distill student)',
  },
  // student
  {
    name: 'student',
    group: 'student',
    type: 'string',
    config: 'student.pair',
    describe: (c) => `student pair: ${registeredNames(c.container, 'student')}`,
  },
  {
    name: 'size',
    group: 'student',
    type: 'string',
    config: 'student.preset',
    choices: STUDENT_SIZES,
    describe: 'student size: tiny, small, base (config key student.preset)',
  },
  {
    name: 'image-init',
    group: 'student',
    type: 'string',
    config: 'student.imageInit',
    describe:
      "Hugging Face folder to start the image tower from, or 'mobilenetv2' (with --student mobilenet-bert): MobileNetV2's converted ImageNet weights",
  },
  {
    name: 'text-init',
    group: 'student',
    type: 'string',
    config: 'student.textInit',
    describe:
      "Hugging Face folder to start the text tower from (its tokenizer.json is used), or 'glove': the word embeddings of the tokenizer's whole-word tokens start from GloVe 100-d vectors (PCA-projected to the tower's width)",
  },
  {
    name: 'normalize',
    group: 'student',
    type: 'boolean',
    config: 'student.normalize',
    describe:
      "L2-normalise the student's features the losses see (default true; --no-normalize: Table 6's ablation). Training only: evaluation, retrieval and export always normalise (cosine retrieval)",
  },
  // losses and optimisation
  {
    name: 'losses',
    group: 'training',
    type: 'string',
    config: 'losses',
    describe: (c) => `loss method: ${registeredNames(c.container, 'loss')} (a list of DSMD components like cd,hnd)`,
  },
  {
    name: 'balancer',
    group: 'training',
    type: 'string',
    config: 'balancer',
    describe: (c) => `balancer: ${registeredNames(c.container, 'balancer')} (default: the method's own)`,
  },
  {
    name: 'temperature',
    group: 'training',
    type: 'number',
    config: 'lossOptions.temperature',
    describe: 'contrastive temperature (paper 0.05)',
  },
  {
    name: 'queue-size',
    group: 'training',
    type: 'number',
    config: 'lossOptions.queueSize',
    describe: 'feature queue size K (paper 8192)',
  },
  { name: 'margin', group: 'training', type: 'number', config: 'lossOptions.margin', describe: 'hinge margin' },
  {
    name: 'hard-negative',
    group: 'training',
    type: 'string',
    config: 'lossOptions.hardNegative',
    choices: ['sum', 'max'],
    describe: 'hinge over all negatives (official) or the hardest (paper)',
  },
  { name: 'epochs', group: 'training', type: 'number', config: 'schedule.epochs', describe: 'training epochs' },
  {
    name: 'decay-epoch',
    group: 'training',
    type: 'number',
    config: 'schedule.decayEpoch',
    describe: 'epoch at which the lr is multiplied by 0.1',
  },
  { name: 'batch-size', group: 'training', type: 'number', config: 'batchSize', describe: 'training batch size' },
  { name: 'lr', group: 'training', type: 'number', config: 'optimizer.lr', describe: 'AdamW learning rate' },
  {
    name: 'weight-decay',
    group: 'training',
    type: 'number',
    config: 'optimizer.weightDecay',
    describe: 'AdamW weight decay',
  },
  {
    name: 'max-steps',
    group: 'training',
    type: 'number',
    config: 'maxSteps',
    describe: 'stop after this many steps (0 = no limit)',
  },
  {
    name: 'checkpoint-every',
    group: 'training',
    type: 'number',
    config: 'checkpointEvery',
    describe: 'checkpoint every N steps (and every epoch)',
  },
  {
    name: 'baseline',
    group: 'training',
    type: 'boolean',
    config: 'baseline',
    describe: 'also train the no-teacher student of the same size and budget',
  },
  {
    name: 'latency',
    group: 'training',
    type: 'boolean',
    config: 'latency',
    describe: 'measure encoder latency for the report',
  },
  // device
  {
    name: 'backend',
    group: 'device',
    type: 'string',
    config: 'backend',
    choices: TRAIN_BACKENDS,
    describe: BACKEND_HELP,
  },
  { name: 'device', group: 'device', type: 'string', config: 'device', choices: TRAIN_DEVICES, describe: DEVICE_HELP },
  {
    name: 'threads',
    group: 'device',
    type: 'number',
    config: 'threads',
    describe: 'onnxruntime threads (0 = all cores)',
  },
  // run
  {
    name: 'config',
    group: 'run',
    type: 'string',
    describe: 'YAML or JSON file of config keys over the preset; flags override it',
  },
  {
    name: 'preset',
    group: 'run',
    type: 'string',
    describe: `config preset the run starts from: ${Object.keys(PRESETS).join(', ')}`,
  },
  { name: 'seed', group: 'run', type: 'number', config: 'seed', describe: 'random seed' },
  { name: 'run-dir', group: 'run', type: 'string', describe: 'run folder (default: a new folder under runs/)' },
  {
    name: 'resume',
    group: 'run',
    type: 'string',
    describe:
      'continue the killed run in this folder with its recorded config (flags that would change it are refused)',
  },
  {
    name: 'print-config',
    group: 'run',
    type: 'boolean',
    describe: 'print the resolved config and exit (creates no folder, loads no teacher or data)',
  },
];

const BY_NAME = new Map(FLAGS.map((f) => [f.name, f]));

/** The entry of `name`; a name not in the table is a programming error. */
export function flag(name: string): Flag {
  const f = BY_NAME.get(name);
  if (!f) throw new Error(`no flag '${name}' in the flag table (apps/cli/src/flags.ts)`);
  return f;
}

/** Every flag of a group, in table order. */
export function groupFlags(group: FlagGroup): string[] {
  return FLAGS.filter((f) => f.group === group).map((f) => f.name);
}

/** `data-root` -> `dataRoot`: the key yargs gives the parsed value under. */
export const camel = (name: string) => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

export interface DeclareOptions {
  /** A command's own words after the shared help (its default, what it does with the flag), per flag. */
  notes?: Record<string, string>;
  /** yargs defaults, per flag. */
  defaults?: Record<string, unknown>;
}

/**
 * Declare `names` (flags of the table) on a command, each under its group's heading. The help is the
 * table's, followed by the command's note for it, if any.
 */
export function declareFlags(y: Argv, ctx: CliContext, names: readonly string[], opts: DeclareOptions = {}): Argv {
  const byGroup = new Map<FlagGroup, string[]>();
  for (const name of names) {
    const f = flag(name);
    const base = typeof f.describe === 'function' ? f.describe(ctx) : f.describe;
    const note = opts.notes?.[name];
    const spec: Record<string | symbol, unknown> = {
      type: f.type,
      describe: note ? `${base} (${note})` : base,
      [FROM_TABLE]: true,
    };
    if (f.choices) spec.choices = [...f.choices];
    if (opts.defaults && Object.hasOwn(opts.defaults, name)) spec.default = opts.defaults[name];
    y = y.option(name, spec as never);
    byGroup.set(f.group, [...(byGroup.get(f.group) ?? []), name]);
  }
  for (const g of Object.keys(GROUP_HEADINGS) as FlagGroup[]) {
    const members = byGroup.get(g);
    if (members) y = y.group(members, GROUP_HEADINGS[g]);
  }
  return y;
}

/**
 * The config overrides of the flags among `names` that were given (their config keys from the table).
 * A flag given twice, or a number flag given a non-number, is refused naming the flag.
 */
export function configOverrides(args: Record<string, unknown>, names: readonly string[]): DeepPartial<TrainConfig> {
  const o: Record<string, unknown> = {};
  for (const name of names) {
    const f = flag(name);
    if (!f.config) continue;
    const v = args[camel(name)];
    if (v === undefined) continue;
    if (Array.isArray(v))
      throw new DistillError(`--${name} was given ${v.length} times (${v.join(', ')}); give it once.`, 2);
    if (typeof v === 'number' && !Number.isFinite(v)) throw new DistillError(`--${name} expects a number.`, 2);
    const keys = f.config.split('.');
    let cur = o;
    for (const k of keys.slice(0, -1)) cur = (cur[k] ??= {}) as Record<string, unknown>;
    cur[keys.at(-1)!] = v;
  }
  return o as DeepPartial<TrainConfig>;
}

/** The given flags among `names` as the command-line words that set them (`--seed 3`, `--no-normalize`), in `names` order. */
export function givenFlags(args: Record<string, unknown>, names: readonly string[]): string[] {
  const out: string[] = [];
  for (const name of names) {
    const v = args[camel(name)];
    if (v === undefined) continue;
    if (flag(name).type === 'boolean') out.push(v ? `--${name}` : `--no-${name}`);
    else out.push(`--${name} ${String(v)}`);
  }
  return out;
}

/**
 * The run folder of `--resume <dir>` (undefined without --resume), checked to be a folder; whether it
 * holds a resumable run is checked by the command's run guard (readRunRecord, resumeConfig). The
 * spelling of older versions of `distill teacher pretrain`, `--run-dir <dir> --resume`, still works,
 * with a one-line note.
 */
export function resumeFolder(
  args: Record<string, unknown>,
  note: (line: string) => void = (l) => process.stderr.write(`distill: ${l}\n`),
): string | undefined {
  const v = args.resume;
  if (v === undefined) return undefined;
  if (Array.isArray(v))
    throw new DistillError(`--resume was given ${v.length} times; give it once: --resume <run folder>.`, 2);
  const runDir = args.runDir as string | undefined;
  let dir = String(v);
  if (dir === '') {
    if (runDir === undefined)
      throw new DistillError('--resume needs the run folder: --resume <dir> (the --run-dir of the killed run).', 2);
    note(`'--run-dir ${runDir} --resume' is deprecated: write '--resume ${runDir}'.`);
    dir = runDir;
  } else if (runDir !== undefined && resolve(runDir) !== resolve(dir)) {
    throw new DistillError(
      `--resume ${dir} and --run-dir ${runDir} name different folders: give --resume <dir> alone (the run continues in its own folder).`,
      2,
    );
  }
  if (!existsSync(dir))
    throw new DistillError(
      `--resume: the run folder ${dir} does not exist. Give the folder of the run to continue (its --run-dir).`,
      2,
    );
  if (!statSync(dir).isDirectory())
    throw new DistillError(
      `--resume: ${dir} is a file, not a run folder. Give the folder of the run to continue (its --run-dir).`,
      2,
    );
  return dir;
}

/** The dataset the dataset flag group names (--dataset, --data-root, --annotations, --image-root), from the registry. */
export function datasetFromArgs(args: Record<string, unknown>, container: Container): Promise<Dataset> {
  return loadDataset(
    String(args.dataset),
    {
      dataRoot: args.dataRoot as string | undefined,
      annotations: args.annotations as string | undefined,
      imageRoot: args.imageRoot as string | undefined,
    },
    container,
  );
}

/** A split of a dataset, or a one-line error naming the splits it has (the dataset called `label`, default its name). */
export function splitOf(ds: Dataset, split: string, label = ds.name): SplitData {
  const s = ds.splits[split];
  if (!s)
    throw new DistillError(`Dataset ${label} has no split '${split}' (has: ${Object.keys(ds.splits).join(', ')}).`, 2);
  return s;
}
