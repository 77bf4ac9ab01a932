import { Container } from 'inversify';
import { DistillError } from './fs.js';

/**
 * The dependency-injection vocabulary shared by every distill package. Packages export a
 * `register(container)` function that binds registry entries; the CLI (`apps/cli`) is the only
 * composition root. No decorators are used: every binding is a factory, so packages stay plain ESM.
 */

/** A named, typed entry of a registry (a student pair, a loss, a balancer, a teacher, a dataset...). */
export interface RegistryEntry<TConfig, TValue> {
  name: string;
  description: string;
  /** Defaults merged under the user's config. */
  defaults?: Partial<TConfig>;
  create(config: TConfig, ctx: RegistryContext): TValue | Promise<TValue>;
}

export interface RegistryContext {
  container: Container;
}

/** A registry of entries chosen by name, with a clear error listing the choices. */
export class Registry<TConfig, TValue> {
  private readonly entries = new Map<string, RegistryEntry<TConfig, TValue>>();

  constructor(readonly kind: string) {}

  add(entry: RegistryEntry<TConfig, TValue>): this {
    if (this.entries.has(entry.name)) throw new Error(`${this.kind} '${entry.name}' is registered twice`);
    this.entries.set(entry.name, entry);
    return this;
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  get(name: string): RegistryEntry<TConfig, TValue> {
    const e = this.entries.get(name);
    if (!e) {
      throw new DistillError(
        `Unknown ${this.kind} '${name}'. Available: ${[...this.entries.keys()].sort().join(', ') || '(none registered)'}.`,
        2,
      );
    }
    return e;
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  list(): RegistryEntry<TConfig, TValue>[] {
    return [...this.entries.values()];
  }

  async create(name: string, config: Partial<TConfig>, ctx: RegistryContext): Promise<TValue> {
    const e = this.get(name);
    return e.create({ ...(e.defaults ?? {}), ...config } as TConfig, ctx);
  }
}

/** Service identifiers. Each package binds a Registry under its token; the CLI resolves by name. */
export const TOKENS = {
  Logger: Symbol.for('distill.Logger'),
  Runtime: Symbol.for('distill.Runtime'),
  TeacherRegistry: Symbol.for('distill.TeacherRegistry'),
  StudentRegistry: Symbol.for('distill.StudentRegistry'),
  LossRegistry: Symbol.for('distill.LossRegistry'),
  BalancerRegistry: Symbol.for('distill.BalancerRegistry'),
  DatasetRegistry: Symbol.for('distill.DatasetRegistry'),
  EvaluatorRegistry: Symbol.for('distill.EvaluatorRegistry'),
  /** CLI commands (multi-bound): each is a yargs CommandModule-like object. */
  Command: Symbol.for('distill.Command'),
} as const;

/** The registry bound under `token`, created (and bound) on first use. */
export function registryOf<TConfig, TValue>(container: Container, token: symbol, kind: string): Registry<TConfig, TValue> {
  if (!container.isBound(token)) {
    container.bind<Registry<TConfig, TValue>>(token).toConstantValue(new Registry<TConfig, TValue>(kind));
  }
  return container.get<Registry<TConfig, TValue>>(token);
}

export function createContainer(): Container {
  return new Container();
}

export { Container };
