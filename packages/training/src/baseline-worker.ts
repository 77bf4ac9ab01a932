/**
 * Child-process entry that trains one student from a resolved config file: the experiment's no-teacher
 * baseline runs here, beside the distilled student (see `trainInChild` in experiment.ts).
 *
 *   node baseline-worker.js <train-config.json> <run-dir> <label> [--resume]
 *
 * It is a file of this package (dist/baseline-worker.js when installed, src/baseline-worker.ts under
 * vitest/tsx), so it works wherever @distill/training is installed, without the CLI. It writes
 * <run-dir>/result.json when done; errors a user can cause are one line on stderr and exit code 1.
 */
import { createLogger, DistillError, readJsonFile } from '@distill/core';
import { validateConfig, type TrainConfig } from './config.js';
import { createTrainingContainer, loadPlugins } from './registries.js';
import { train } from './trainer.js';

const [cfgFile, runDir, label, ...rest] = process.argv.slice(2);
try {
  if (!cfgFile || !runDir || !label)
    throw new DistillError('usage: baseline-worker <train-config.json> <run-dir> <label> [--resume]', 2);
  const raw = readJsonFile<TrainConfig>(cfgFile);
  // this process's own container: the built-ins, then the run's plugins (the config names their entries)
  const container = createTrainingContainer();
  await loadPlugins(container, Array.isArray(raw.plugins) ? raw.plugins : []);
  const cfg = validateConfig(raw, container);
  await train(cfg, { runDir, resume: rest.includes('--resume'), label, logger: createLogger(), container });
} catch (e) {
  if (e instanceof DistillError) {
    process.stderr.write(`distill: ${e.message}\n`);
    process.exitCode = e.exitCode;
  } else {
    process.stderr.write(`distill: unexpected error: ${(e as Error).stack ?? e}\n`);
    process.exitCode = 1;
  }
}
