import { createLogger, TOKENS, type Container } from '@distill/core';
import { createTrainingContainer } from '@distill/training';
import type { CliCommand } from './command.js';
import { commandModules } from './commands/index.js';

/**
 * The composition root: every package's registry entries (datasets, teachers, student pairs, losses,
 * balancers, evaluators, bound by each package's `register` through @distill/training's
 * createTrainingContainer), the logger and every CLI command. main.ts loads the plugins (--plugin) into
 * it, and every command hands it on (ctx.container): config validation, training, experiments and help
 * texts choose names in it, so the entries plugins add are chosen like the built-ins. There is no
 * global container.
 */
export function buildContainer(): Container {
  const container = createTrainingContainer();
  container.bind(TOKENS.Logger).toConstantValue(createLogger());
  for (const mod of commandModules) {
    for (const c of mod) container.bind<CliCommand>(TOKENS.Command).toConstantValue(c);
  }
  return container;
}
