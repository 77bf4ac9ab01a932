import { createLogger, TOKENS, type Container } from '@distill/core';
import { createTrainingContainer, useContainer } from '@distill/training';
import type { CliCommand } from './command.js';
import { commandModules } from './commands/index.js';

/**
 * The composition root: every package's registry entries (datasets, teachers, student pairs, losses,
 * balancers, evaluators, bound by each package's `register` through @distill/training's
 * createTrainingContainer) and every CLI command. Config validation and training resolve names in this
 * container (useContainer), so the entries plugins add (--plugin) are chosen like the built-ins.
 */
export function buildContainer(): Container {
  const container = createTrainingContainer();
  container.bind(TOKENS.Logger).toConstantValue(createLogger());
  for (const mod of commandModules) {
    for (const c of mod) container.bind<CliCommand>(TOKENS.Command).toConstantValue(c);
  }
  useContainer(container);
  return container;
}
