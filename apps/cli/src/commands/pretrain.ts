import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger, RunDirectory } from '@distill/core';
import { EMOJI_TEACHER_DIR, loadStudent, resolveConfig, saveStudent, train, type TrainResult } from '@distill/training';
import type { CliCommand } from '../command.js';

/**
 * `distill teacher pretrain`: trains the embedded default teacher of the emoji benchmark - a wider and
 * deeper vit-bert than the `tiny` student, trained contrastively (no teacher) on the emoji train split -
 * and writes it as a saved distill student (student.json + model.safetensors + tokenizer.json).
 */
export const pretrainCommand: CliCommand = {
  group: 'teacher',
  command: 'pretrain',
  describe: 'Train the embedded emoji teacher (contrastive, no teacher) and save it as a teacher folder',
  builder: (y) =>
    y
      .option('out', { type: 'string', default: EMOJI_TEACHER_DIR, describe: 'teacher folder to write' })
      .option('epochs', { type: 'number', describe: `epochs (preset emoji-teacher: ${resolveConfig({ preset: 'emoji-teacher' }).schedule.epochs})` })
      .option('max-steps', { type: 'number', describe: 'stop after this many steps' })
      .option('seed', { type: 'number', default: 0 })
      .option('run-dir', { type: 'string', describe: 'training run folder (default runs/emoji-teacher-<time>)' })
      .option('resume', { type: 'boolean', default: false, describe: 'resume the run in --run-dir' }),
  async handler(args) {
    const log = createLogger();
    const cfg = resolveConfig({
      preset: 'emoji-teacher',
      overrides: { seed: args.seed as number, schedule: { epochs: args.epochs as number | undefined }, maxSteps: args.maxSteps as number | undefined },
    });
    const runDir = (args.runDir as string | undefined) ?? RunDirectory.createUnder('runs', 'emoji-teacher').root;
    const r: TrainResult = await train(cfg, { runDir, resume: Boolean(args.resume), logger: log, label: 'teacher' });
    const out = args.out as string;
    const { student, meta } = loadStudent(join(runDir, 'best'));
    const tmp = `${out}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    saveStudent(tmp, student, {
      ...meta.provenance,
      command: `distill teacher pretrain --seed ${String(args.seed)}${args.epochs ? ` --epochs ${String(args.epochs)}` : ''}${args.maxSteps ? ` --max-steps ${String(args.maxSteps)}` : ''}`,
      seed: cfg.seed,
      config: cfg,
      steps: r.steps,
      trainSeconds: r.seconds,
      val: r.val.at(-1),
      test: r.test,
      parameters: r.parameters,
    });
    student.dispose();
    rmSync(out, { recursive: true, force: true });
    cpSync(tmp, out, { recursive: true });
    rmSync(tmp, { recursive: true, force: true });
    process.stdout.write(JSON.stringify({ out, test: r.test, parameters: r.parameters.total, steps: r.steps }, null, 2) + '\n');
  },
};
