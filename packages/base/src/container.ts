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
  /**
   * A pattern entry: also chosen for names it accepts that no entry has exactly (e.g. the loss entry
   * `cd,fd,sd,hnd` accepts any comma list of DSMD components; a saved-student teacher any name whose
   * `model` folder holds a saved student). `ctx.name` tells `create` the name it was chosen for.
   */
  matches?(name: string, config: Partial<TConfig>): boolean;
  create(config: TConfig, ctx: RegistryContext): TValue | Promise<TValue>;
}

export interface RegistryContext {
  container: Container;
  /** The name the entry was chosen for (differs from the entry's own name for a pattern entry). */
  name?: string;
}

/** A registry of entries chosen by name, with a clear error listing the choices. */
export class Registry<TConfig, TValue> {
  private readonly entries = new Map<string, RegistryEntry<TConfig, TValue>>();

  constructor(readonly kind: string) {}

  /**
   * Adds an entry. Adding the same entry object again is a no-op (a package's `register` may run twice);
   * another entry under a taken name is an error (two packages or plugins claiming one name).
   */
  add(entry: RegistryEntry<TConfig, TValue>): this {
    const had = this.entries.get(entry.name);
    if (had === entry) return this;
    if (had)
      throw new DistillError(
        `${this.kind} '${entry.name}' is registered twice (a plugin or package reuses a built-in name): rename one of them.`,
        2,
      );
    this.entries.set(entry.name, entry);
    return this;
  }

  /** True when an entry has exactly this name (what `register` functions check). */
  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** True when `name` is an entry's name or a pattern entry accepts it (what config validation checks). */
  accepts(name: string, config: Partial<TConfig> = {}): boolean {
    return this.find(name, config) !== undefined;
  }

  /** The entry named `name`, else the first pattern entry that accepts it. */
  find(name: string, config: Partial<TConfig> = {}): RegistryEntry<TConfig, TValue> | undefined {
    return this.entries.get(name) ?? [...this.entries.values()].find((e) => e.matches?.(name, config));
  }

  get(name: string, config: Partial<TConfig> = {}): RegistryEntry<TConfig, TValue> {
    const e = this.find(name, config);
    if (!e)
      throw new DistillError(
        `Unknown ${this.kind} '${name}'. Available: ${this.names().sort().join(', ') || '(none registered)'}.`,
        2,
      );
    return e;
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  list(): RegistryEntry<TConfig, TValue>[] {
    return [...this.entries.values()];
  }

  async create(name: string, config: Partial<TConfig>, ctx: RegistryContext): Promise<TValue> {
    const e = this.get(name, config);
    return e.create({ ...(e.defaults ?? {}), ...config } as TConfig, { ...ctx, name });
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

/** Every registry kind, its token and what it holds (the order `distill list` prints them in). */
export const REGISTRY_KINDS = [
  { kind: 'dataset', token: TOKENS.DatasetRegistry, what: 'datasets (--dataset)' },
  { kind: 'teacher', token: TOKENS.TeacherRegistry, what: 'teachers (--teacher)' },
  { kind: 'student', token: TOKENS.StudentRegistry, what: 'student pairs (--student; sizes with --size)' },
  { kind: 'loss', token: TOKENS.LossRegistry, what: 'loss methods (--losses)' },
  { kind: 'balancer', token: TOKENS.BalancerRegistry, what: 'loss balancers (--balancer)' },
  { kind: 'evaluator', token: TOKENS.EvaluatorRegistry, what: 'evaluators' },
] as const;

export type RegistryKind = (typeof REGISTRY_KINDS)[number]['kind'];

/** The registry of `kind` in `container` (created empty when nothing registered it). */
export function registryByKind<TConfig = unknown, TValue = unknown>(
  container: Container,
  kind: RegistryKind,
): Registry<TConfig, TValue> {
  const k = REGISTRY_KINDS.find((r) => r.kind === kind);
  if (!k)
    throw new DistillError(
      `Unknown registry kind '${kind}'. Available: ${REGISTRY_KINDS.map((r) => r.kind).join(', ')}.`,
      2,
    );
  return registryOf<TConfig, TValue>(container, k.token, kind);
}

/** The registry bound under `token`, created (and bound) on first use. */
export function registryOf<TConfig, TValue>(
  container: Container,
  token: symbol,
  kind: string,
): Registry<TConfig, TValue> {
  if (!container.isBound(token)) {
    container.bind<Registry<TConfig, TValue>>(token).toConstantValue(new Registry<TConfig, TValue>(kind));
  }
  return container.get<Registry<TConfig, TValue>>(token);
}

export function createContainer(): Container {
  return new Container();
}

export { Container };
