import { createContainer, createLogger, TOKENS, type Container } from '@distill/core';
import type { CliCommand } from './command.js';
import { doctorCommand } from './commands/doctor.js';
import { trainCommand } from './commands/train.js';

/**
 * The composition root: the only place that knows every package. Each package contributes
 * registry entries and commands; everything else is chosen by name from flags or config.
 */
export function buildContainer(): Container {
  const container = createContainer();
  container.bind(TOKENS.Logger).toConstantValue(createLogger());
  const commands: CliCommand[] = [doctorCommand, trainCommand];
  for (const c of commands) container.bind<CliCommand>(TOKENS.Command).toConstantValue(c);
  return container;
}
