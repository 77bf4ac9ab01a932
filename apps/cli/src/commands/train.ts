import { join } from 'node:path';
import { createLogger, DistillError, readJsonFile, RunDirectory } from '@distill/core';
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
  type DeepPartial,
  type TrainConfig,
} from '@distill/training';
import type { CliCommand } from '../command.js';
import { configOverrides, declareFlags, FLAGS, resumeFolder } from '../flags.js';

/** Every flag of the table: `distill train` takes them all. */
export const TRAIN_FLAGS: readonly string[] = FLAGS.map((f) => f.name);

/** CLI flags -> config overrides (only the flags the user gave; their config keys from the flag table). */
export function overridesFromArgs(a: Record<string, unknown>): {
  preset?: string;
  overrides: DeepPartial<TrainConfig>;
} {
  // --preset is an experiment preset (emoji, smoke, paper); the student size has its own flag, --size.
  const p = a.preset;
  const sizes = (Array.isArray(p) ? p : [p]).filter((x) => STUDENT_SIZES.includes(x as never));
  const useSize = sizes.length ? ` The student size has its own flag: use --size ${sizes[0]}.` : '';
  if (Array.isArray(p))
    throw new DistillError(`--preset was given ${p.length} times (${p.join(', ')}); give it once.${useSize}`, 2);
  const preset = p as string | undefined;
  if (preset !== undefined && !Object.hasOwn(PRESETS, preset)) {
    throw new DistillError(
      `--preset takes an experiment preset (${Object.keys(PRESETS).join(', ')}), got '${preset}'.${useSize}`,
      2,
    );
  }
  return { preset, overrides: configOverrides(a, TRAIN_FLAGS) };
}

export const trainCommand: CliCommand = {
  command: 'train',
  describe:
    'Distil a teacher into a student (default: the main job on the glyphs benchmark, teacher v2, vit-bert tiny)',
  builder: (y, ctx) =>
    declareFlags(
      y
        .usage(
          'distill train [options]\n\n' +
            'With no options: the main job (preset glyphs: the glyphs benchmark, its embedded teacher v2, vit-bert tiny, plus the no-teacher baseline; 13 min cold on 2 cores).\n' +
            'The small, fast set: distill train --preset emoji (2 min).\n' +
            'Paper setting: distill train --preset paper --teacher beit3 --teacher-model <dir> --student vit-bert --size base --dataset flickr30k --data-root <dir>',
        )
        .option('seeds', {
          type: 'number',
          describe:
            'train at seeds seed..seed+N-1 (parallel processes, a shared run store) and report mean and std per metric',
        }),
      ctx,
      TRAIN_FLAGS,
      {
        notes: {
          dataset: "default: the preset's; glyphs for the main job",
          teacher: "default: the preset's; glyphs teacher v2 for the main job, emoji for --preset emoji",
          preset: `default ${MAIN_JOB_PRESET}: the main job`,
        },
      },
    ),
  async handler(args, ctx) {
    const log = createLogger();
    let cfg: TrainConfig;
    let runDir: string;
    const resume = resumeFolder(args);
    if (resume) {
      // The recorded config; flags given with --resume must not change it (only safe ones like --threads).
      // Its plugins are loaded first: it names their entries.
      const recorded = readRunRecord(resume)?.config as Partial<TrainConfig> | undefined;
      const extra = (recorded?.plugins ?? []).filter((p) => !ctx.plugins.includes(p));
      await loadPlugins(ctx.container, extra);
      const { preset, overrides } = overridesFromArgs(args);
      if (ctx.plugins.length) overrides.plugins = ctx.plugins;
      // the plugins' content now: a plugin edited since the run started is refused, naming it
      if (recorded?.pluginHashes)
        overrides.pluginHashes = pluginHashes([...new Set([...(recorded.plugins ?? []), ...ctx.plugins])]);
      cfg = resumeConfig(resume, {
        container: ctx.container,
        preset,
        file: args.config ? readConfigFile(args.config as string) : undefined,
        overrides,
      });
      runDir = resume;
    } else {
      const { preset, overrides } = overridesFromArgs(args);
      if (ctx.plugins.length) {
        overrides.plugins = ctx.plugins; // recorded: the baseline process and --resume load them too
        overrides.pluginHashes = pluginHashes(ctx.plugins); // and their content, checked by --resume
      }
      cfg = resolveConfig({
        container: ctx.container,
        preset: preset ?? MAIN_JOB_PRESET,
        file: args.config ? readConfigFile(args.config as string) : undefined,
        fileName: args.config as string | undefined,
        overrides,
      });
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
    const r = await runExperiment(cfg, {
      runDir,
      resume: Boolean(resume),
      logger: log,
      command: process.argv.slice(2).join(' '),
      container: ctx.container,
      latency,
    });
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
