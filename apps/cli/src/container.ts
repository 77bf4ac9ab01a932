import { register as registerBalancer } from '@distill/balancer';
import { createContainer, createLogger, TOKENS, type Container } from '@distill/core';
import { register as registerData } from '@distill/data';
import { register as registerEval } from '@distill/eval';
import { register as registerLosses } from '@distill/losses';
import { register as registerStudents } from '@distill/student-architectures';
import { register as registerTeachers } from '@distill/teacher-adapters';
import type { CliCommand } from './command.js';
import { commandModules } from './commands/index.js';

/**
 * The composition root: the only place that knows every package. Each package binds its registry
 * entries (teachers, students, losses, balancers, datasets, evaluators); each file in commands/
 * contributes CLI commands. Everything else is chosen by name from flags or config.
 */
export function buildContainer(): Container {
  const container = createContainer();
  container.bind(TOKENS.Logger).toConstantValue(createLogger());
  for (const register of [registerData, registerTeachers, registerStudents, registerLosses, registerBalancer, registerEval]) {
    register(container);
  }
  for (const mod of commandModules) {
    for (const c of mod) container.bind<CliCommand>(TOKENS.Command).toConstantValue(c);
  }
  return container;
}
