/**
 * The flag table (flags.ts) is the only place a dataset, device or run option is declared: every
 * command's options are recorded as its builder declares them, and an option of the table's names (or
 * one that looks like a dataset/device/run option) declared by hand fails. Every entry's config key is
 * one the config schema accepts, and a flag given to `distill train` lands at that key.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TOKENS } from '@distill/core';
import { DEFAULT_CONFIG, resolveConfig, TRAIN_BACKENDS, TRAIN_DEVICES } from '@distill/training';
import { describe, expect, it, vi } from 'vitest';
import yargs, { type Argv } from 'yargs';
import type { CliCommand, CliContext } from './command.js';
import { experimentFlags } from './commands/experiment.js';
import { buildContainer } from './container.js';
import { camel, configOverrides, FLAGS, FROM_TABLE, groupFlags, resumeFolder } from './flags.js';
import { runCli } from './main.js';

interface Declared {
  command: string;
  name: string;
  fromTable: boolean;
  choices?: readonly unknown[];
}

/** `y` with every option declaration recorded (the builder chains on the proxy). */
function recording(y: Argv, command: string, seen: Declared[]): Argv {
  const record = (name: string, spec: Record<string | symbol, unknown> = {}) =>
    seen.push({
      command,
      name,
      fromTable: spec[FROM_TABLE] === true,
      choices: spec.choices as readonly unknown[] | undefined,
    });
  const proxy: Argv = new Proxy(y, {
    get(target, key) {
      const v = Reflect.get(target, key, target);
      if (typeof v !== 'function') return v;
      return (...a: unknown[]) => {
        if (key === 'option' || key === 'options') {
          if (typeof a[0] === 'string') record(a[0], a[1] as Record<string | symbol, unknown>);
          else
            for (const [n, s] of Object.entries(a[0] as Record<string, Record<string | symbol, unknown>>)) record(n, s);
        }
        const out = v.apply(target, a);
        return out === target ? proxy : out;
      };
    },
  });
  return proxy;
}

function declaredOptions(): Declared[] {
  const container = buildContainer();
  const ctx: CliContext = { container, plugins: [] };
  const seen: Declared[] = [];
  for (const c of container.getAll<CliCommand>(TOKENS.Command)) {
    const name = `${c.group ? `${c.group} ` : ''}${c.command.split(' ')[0]}`;
    c.builder?.(recording(yargs([]), name, seen), ctx);
  }
  return seen;
}

/** Options that look like the table's groups but are something else, each with why. */
const NOT_TABLE: Record<string, string> = {
  'export --eval-dataset': 'the dataset of the --quantize RSUM comparison, not the dataset of a run',
  'teacher extract --batch-size': "the teacher's batch (config teacher.batchSize), not the training batch",
  'parity onnx-teacher --preset': 'a teacher I/O spec, not a config preset',
};
const LOOKS_LIKE =
  /dataset|data-root|annotations|image-root|bad-images|subset|backend|device|threads|resume|run-dir|^seed$|^config$|^preset$/;

async function distill(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const spies = [
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((stdout += String(s)), true)),
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((stderr += String(s)), true)),
    vi.spyOn(console, 'log').mockImplementation((...a) => void (stdout += a.join(' ') + '\n')),
    vi.spyOn(console, 'error').mockImplementation((...a) => void (stderr += a.join(' ') + '\n')),
  ];
  try {
    return { code: await runCli(argv), stdout, stderr };
  } finally {
    for (const s of spies) s.mockRestore();
  }
}

const valueAt = (o: unknown, path: string) =>
  path.split('.').reduce<unknown>((c, k) => (c as Record<string, unknown> | undefined)?.[k], o);

/** A value each config flag can take that differs from the default where it can (registered names for name flags). */
function sample(name: string): string | number | boolean {
  const f = FLAGS.find((x) => x.name === name)!;
  const special: Record<string, string | number | boolean> = {
    dataset: 'jsonl',
    teacher: 'emoji',
    student: 'deit-albert',
    losses: 'kd',
    balancer: 'static',
    'queue-size': 64,
    'image-init': 'hf/vit',
    'text-init': 'glove',
  };
  if (name in special) return special[name];
  if (f.choices) return f.choices.find((c) => c !== valueAt(DEFAULT_CONFIG, f.config!)) ?? f.choices[0];
  if (f.type === 'boolean') return !(valueAt(DEFAULT_CONFIG, f.config!) ?? false);
  if (f.type === 'number') return 3;
  return `x-${name}`;
}

describe('the flag table', () => {
  const declared = declaredOptions();

  it('no command declares a dataset, device or run option (or any name of the table) outside the table', () => {
    const tableNames = new Set(FLAGS.map((f) => f.name));
    const bad = declared
      .filter(
        (d) =>
          !d.fromTable && (tableNames.has(d.name) || LOOKS_LIKE.test(d.name)) && !NOT_TABLE[`${d.command} --${d.name}`],
      )
      .map((d) => `${d.command} --${d.name}`);
    expect(bad).toEqual([]);
    // the recorder sees what it should: the shared options of train, pretrain, experiment and the hand-declared exceptions
    for (const c of ['train', 'teacher pretrain', 'experiment']) {
      for (const n of [...groupFlags('dataset'), ...groupFlags('device')])
        expect(declared, `${c} --${n}`).toContainEqual(
          expect.objectContaining({ command: c, name: n, fromTable: true }),
        );
    }
    for (const k of Object.keys(NOT_TABLE)) {
      const [c, n] = k.split(' --');
      expect(declared, k).toContainEqual(expect.objectContaining({ command: c, name: n, fromTable: false }));
    }
  });

  it('--backend and --device have one vocabulary on every command', () => {
    const backends = declared.filter((d) => d.name === 'backend');
    expect(backends.map((d) => d.command).sort()).toEqual([
      'doctor',
      'eval embeddings',
      'experiment',
      'parity hf',
      'teacher pretrain',
      'train',
    ]);
    for (const d of backends) expect(d.choices, d.command).toEqual(TRAIN_BACKENDS);
    for (const d of declared.filter((x) => x.name === 'device')) expect(d.choices, d.command).toEqual(TRAIN_DEVICES);
  });

  it('every entry is used by a command, and names are unique', () => {
    expect(new Set(FLAGS.map((f) => f.name)).size).toBe(FLAGS.length);
    const used = new Set(declared.filter((d) => d.fromTable).map((d) => d.name));
    expect(FLAGS.map((f) => f.name).filter((n) => !used.has(n))).toEqual([]);
  });

  it('every config key of the table is one the config schema accepts, and the value lands there', () => {
    const container = buildContainer();
    const withConfig = FLAGS.filter((f) => f.config);
    expect(withConfig.length).toBeGreaterThanOrEqual(31); // train's 31 flags that set config keys, and more
    for (const f of withConfig) {
      const v = sample(f.name);
      const cfg = resolveConfig({ container, overrides: configOverrides({ [camel(f.name)]: v }, [f.name]) });
      expect(valueAt(cfg, f.config!), `--${f.name} -> ${f.config}`).toEqual(v);
    }
    // the schema refuses a key it does not know: a table entry with a misspelt key would fail above
    expect(() => resolveConfig({ container, overrides: { dataset: { nme: 'x' } } as never })).toThrow(
      /dataset\.nme: unknown key/,
    );
  });

  it('distill train: each flag of the table reaches its config key (--print-config)', async () => {
    for (const f of FLAGS.filter((x) => x.config)) {
      const v = sample(f.name);
      const argv = f.type === 'boolean' ? [v ? `--${f.name}` : `--no-${f.name}`] : [`--${f.name}`, String(v)];
      const r = await distill(['train', '--preset', 'smoke', ...argv, '--print-config']);
      expect(r.stderr, argv.join(' ')).toBe('');
      expect(valueAt(JSON.parse(r.stdout), f.config!), argv.join(' ')).toEqual(v);
    }
  }, 60_000);

  it('distill experiment: the table flags set every run; --threads stays per process, not config', () => {
    expect(
      experimentFlags({
        dataset: 'glyphs',
        dataRoot: 'd',
        imageRoot: 'i',
        size: 'small',
        teacher: 'glyphs-v2',
        backend: 'onnx',
        device: 'webgpu',
        threads: 2,
        preset: 'glyphs',
        seeds: '3',
      }),
    ).toEqual({
      dataset: { name: 'glyphs', dataRoot: 'd', imageRoot: 'i' },
      teacher: { name: 'glyphs-v2' },
      student: { preset: 'small' },
      backend: 'onnx',
      device: 'webgpu',
    });
    expect(() => experimentFlags({ dataset: ['a', 'b'] })).toThrow('--dataset was given 2 times (a, b); give it once.');
  });

  it('train, teacher pretrain and experiment show the same Dataset, Device and Run groups', async () => {
    const section = (help: string, heading: string) => help.split(`\n${heading}\n`)[1]?.split('\n\n')[0] ?? '';
    const helps: string[] = [];
    for (const c of [['train'], ['teacher', 'pretrain'], ['experiment', 'x']])
      helps.push((await distill([...c, '--help'])).stdout);
    for (const heading of ['Dataset:', 'Device:', 'Run:']) {
      for (const h of helps) expect(section(h, heading), heading).not.toBe('');
    }
    // the dataset group of train and teacher pretrain: the same flags, the same words (defaults aside)
    const flagsOf = (s: string) => [...s.matchAll(/^\s+--([a-z-]+)/gm)].map((m) => m[1]);
    expect(flagsOf(section(helps[0], 'Dataset:'))).toEqual(groupFlags('dataset'));
    expect(flagsOf(section(helps[1], 'Dataset:'))).toEqual(groupFlags('dataset'));
    expect(flagsOf(section(helps[2], 'Dataset:'))).toEqual(groupFlags('dataset'));
    for (const h of helps) expect(flagsOf(section(h, 'Device:'))).toEqual(groupFlags('device'));
    expect(flagsOf(section(helps[1], 'Run:'))).toEqual(expect.arrayContaining(['run-dir', 'resume', 'seed']));
  }, 60_000);
});

describe('teacher pretrain --kind heads', () => {
  it('refuses the table flags it has no use for, instead of ignoring them', async () => {
    const r = await distill(['teacher', 'pretrain', '--kind', 'heads', '--backend', 'onnx', '--max-steps', '3']);
    expect([r.code, r.stderr.split('\n')[0]]).toEqual([
      2,
      'distill: --kind heads does not use --max-steps, --backend: drop them.',
    ]);
  });
});

describe('--resume <dir>', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'distill-flags-'));
  const notRun = join(tmp, 'not-a-run');
  mkdirSync(notRun);
  writeFileSync(join(notRun, 'config.json'), JSON.stringify({ name: 'my-web-app' }));
  const file = join(tmp, 'file.txt');
  writeFileSync(file, 'x');

  it('takes a folder; a missing folder, a file, and no folder are refused in one line', () => {
    expect(resumeFolder({})).toBeUndefined();
    expect(resumeFolder({ resume: notRun })).toBe(notRun);
    expect(() => resumeFolder({ resume: join(tmp, 'nope') })).toThrow(
      `--resume: the run folder ${join(tmp, 'nope')} does not exist.`,
    );
    expect(() => resumeFolder({ resume: file })).toThrow(`--resume: ${file} is a file, not a run folder.`);
    expect(() => resumeFolder({ resume: '' })).toThrow('--resume needs the run folder: --resume <dir>');
    expect(() => resumeFolder({ resume: notRun, runDir: tmp })).toThrow(/name different folders/);
    expect(resumeFolder({ resume: notRun, runDir: notRun })).toBe(notRun);
  });

  it('the old spelling --run-dir <dir> --resume still works, with a one-line note', () => {
    const notes: string[] = [];
    expect(resumeFolder({ resume: '', runDir: notRun }, (l) => notes.push(l))).toBe(notRun);
    expect(notes).toEqual([`'--run-dir ${notRun} --resume' is deprecated: write '--resume ${notRun}'.`]);
  });

  for (const cmd of [['train'], ['teacher', 'pretrain']]) {
    it(`distill ${cmd.join(' ')} --resume: a folder that is not a distill run is refused in one line`, async () => {
      const r = await distill([...cmd, '--resume', notRun]);
      expect(r.code).toBe(2);
      expect(r.stderr.split('\n')[0]).toBe(
        `distill: ${notRun} is not a distill run folder: ${join(notRun, 'config.json')} has no distill run config (config.dataset, config.student, config.losses, ...). Use --run-dir with a new or empty folder, or --resume with a folder distill created.`,
      );
      const m = await distill([...cmd, '--resume', join(tmp, 'nope')]);
      expect([m.code, m.stderr.split('\n')[0]]).toEqual([
        2,
        `distill: --resume: the run folder ${join(tmp, 'nope')} does not exist. Give the folder of the run to continue (its --run-dir).`,
      ]);
    });
  }

  it('teacher pretrain: the old spelling reaches the same check, after its note', async () => {
    const r = await distill(['teacher', 'pretrain', '--run-dir', notRun, '--resume']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n').slice(0, 2)).toEqual([
      `distill: '--run-dir ${notRun} --resume' is deprecated: write '--resume ${notRun}'.`,
      expect.stringContaining(`distill: ${notRun} is not a distill run folder`),
    ]);
  });
});
