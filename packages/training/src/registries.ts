import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { register as registerBalancers } from '@distill/balancer';
import { createContainer, DistillError, type Container } from '@distill/core';
import { register as registerData } from '@distill/data';
import { register as registerEval } from '@distill/eval';
import { register as registerLosses } from '@distill/losses';
import { register as registerStudents } from '@distill/student-architectures';
import { register as registerTeacherAdapters } from '@distill/teacher-adapters';

/**
 * The registries training chooses from, by name: every package registers the entries it defines
 * (datasets; teachers: ONNX, `features`, the embedded ones and saved students, all from
 * @distill/teacher-adapters; student pairs, loss methods, balancers, evaluators); training defines
 * none. Plugins add more (see loadPlugins).
 */

/** The embedded teachers' folders live in @distill/teacher-adapters (which ships and registers them); re-exported for one round. */
export { EMOJI_TEACHER_DIR, GLYPHS_TEACHER_DIR, GLYPHS_TEACHER_V3_DIR } from '@distill/teacher-adapters';

/**
 * A new container with every built-in registry entry of distill's packages: what the CLI's composition
 * root (apps/cli buildContainer) starts from, and what the baseline worker process builds before loading
 * the run's plugins. There is no module-global container: whoever validates a config or trains passes
 * the container it built (resolveConfig, train, runExperiment, methodFor, ...).
 */
export function createTrainingContainer(): Container {
  const container = createContainer();
  for (const r of [
    registerData,
    registerTeacherAdapters,
    registerStudents,
    registerLosses,
    registerBalancers,
    registerEval,
  ])
    r(container);
  return container;
}

/** This module runs from TypeScript sources (vitest, tsx): a plugin's `@distill/source` entry may be used. */
const FROM_SOURCE = import.meta.url.endsWith('.ts');

function entryOfPackage(dir: string, spec: string): string {
  const pj = join(dir, 'package.json');
  if (!existsSync(pj)) {
    const index = join(dir, 'index.js');
    if (existsSync(index)) return index;
    throw new DistillError(
      `Plugin '${spec}': ${dir} has no package.json or index.js. A plugin is a package (or a .js/.ts file) exporting register(container).`,
      2,
    );
  }
  const pkg = JSON.parse(readFileSync(pj, 'utf8')) as { main?: string; exports?: unknown };
  let exp = pkg.exports;
  if (exp && typeof exp === 'object' && '.' in (exp as object)) exp = (exp as Record<string, unknown>)['.'];
  const candidates: unknown[] = [];
  if (typeof exp === 'string') candidates.push(exp);
  else if (exp && typeof exp === 'object') {
    const c = exp as Record<string, unknown>;
    candidates.push(...(FROM_SOURCE ? [c['@distill/source']] : []), c.import, c.default, c.node);
  }
  candidates.push(pkg.main, 'index.js');
  for (const c of candidates) if (typeof c === 'string' && existsSync(join(dir, c))) return join(dir, c);
  throw new DistillError(
    `Plugin '${spec}': none of its entry files exist in ${dir} (${candidates.filter((c) => typeof c === 'string').join(', ')}). Build it (npm run build) or check package.json "exports".`,
    2,
  );
}

/**
 * The module file a plugin spec names: a path (absolute, or relative to `cwd`) to a .js/.ts file or a
 * package folder, or the name of a package installed where `cwd` can resolve it.
 */
export function resolvePlugin(spec: string, cwd = process.cwd()): string {
  const asPath = isAbsolute(spec) ? spec : resolve(cwd, spec);
  if (spec.startsWith('.') || isAbsolute(spec) || existsSync(asPath)) {
    if (!existsSync(asPath))
      throw new DistillError(
        `Plugin not found: ${asPath} (from --plugin ${spec}). Give a package folder, a .js/.ts file, or an installed package name.`,
        2,
      );
    return statSync(asPath).isDirectory() ? entryOfPackage(asPath, spec) : asPath;
  }
  const require = createRequire(join(cwd, 'package.json'));
  try {
    return entryOfPackage(dirname(require.resolve(`${spec}/package.json`)), spec);
  } catch (e) {
    if (e instanceof DistillError) throw e;
    try {
      return require.resolve(spec);
    } catch {
      throw new DistillError(
        `Plugin '${spec}' is not installed where ${cwd} can resolve it: npm install it, or give its folder as a path (./${spec}).`,
        2,
      );
    }
  }
}

/**
 * Loads each plugin (a module exporting `register(container)`, as every distill package does) into
 * `container`. Returns the resolved module files, which a run records (config `plugins`) so that the
 * baseline process and `--resume` load the same plugins.
 */
export async function loadPlugins(
  container: Container,
  specs: readonly string[],
  cwd = process.cwd(),
): Promise<string[]> {
  const files: string[] = [];
  for (const spec of specs) {
    const file = resolvePlugin(spec, cwd);
    let mod: { register?: unknown; default?: unknown };
    try {
      mod = (await import(pathToFileURL(file).href)) as typeof mod;
    } catch (e) {
      throw pluginError(spec, file, 'failed to load', e);
    }
    const fn =
      typeof mod.register === 'function' ? mod.register : typeof mod.default === 'function' ? mod.default : undefined;
    if (!fn)
      throw new DistillError(
        `Plugin '${spec}' (${file}) exports no register(container) function: export one that adds its entries to the registries.`,
        2,
      );
    const ms = pluginTimeoutMs();
    let timer: NodeJS.Timeout | undefined;
    try {
      // a register() that never settles would leave Node to exit 13 with no word: a bounded wait
      await Promise.race([
        Promise.resolve().then(() => (fn as (c: Container) => unknown)(container)),
        new Promise((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new DistillError(
                  `Plugin '${spec}' (${file}): register() did not finish within ${ms / 1000} s. Make it return (or resolve) once its entries are added (DISTILL_PLUGIN_TIMEOUT_MS sets the wait).`,
                  2,
                ),
              ),
            ms,
          );
        }),
      ]);
    } catch (e) {
      if (e instanceof DistillError) throw e;
      throw pluginError(spec, file, 'register() failed', e);
    } finally {
      clearTimeout(timer);
    }
    files.push(file);
  }
  return files;
}

function pluginTimeoutMs(): number {
  const v = Number(process.env.DISTILL_PLUGIN_TIMEOUT_MS);
  return Number.isFinite(v) && v > 0 ? v : 30_000;
}

/**
 * A plugin's failure (a syntax error, a throw at import or in register(), a package it imports that is
 * not installed) as one line naming the plugin's file and line (the first place in the plugin's own
 * folder the error points at) and what to do.
 */
function pluginError(spec: string, file: string, what: string, e: unknown): DistillError {
  const err = e as Error & { code?: string };
  const msg = String(err?.message ?? e).split('\n')[0];
  const dir = dirname(file);
  const pkgRoot = pluginPackageRoot(file) ?? dir;
  // where: a file:line in the plugin's folder from the message (syntax errors) or the stack
  const text = `${err?.message ?? ''}\n${err?.stack ?? ''}`.replaceAll('file://', '');
  let where: string | undefined;
  for (const m of text.matchAll(/(\/[^\s():'"]+):(\d+)(?::(\d+))?/g)) {
    if (m[1].startsWith(pkgRoot) && !m[1].includes('/node_modules/')) {
      where = `${m[1]}:${m[2]}${m[3] ? `:${m[3]}` : ''}`;
      break;
    }
  }
  const missing =
    err?.code === 'ERR_MODULE_NOT_FOUND' ? msg.match(/Cannot find (?:package|module) '([^']+)'/)?.[1] : undefined;
  const advice = missing
    ? `it imports '${missing}', which is not installed where the plugin is: run npm install in ${pkgRoot} (its node_modules must hold its dependencies).`
    : err instanceof SyntaxError || /SyntaxError|Transform failed|Expected/.test(`${err?.name} ${msg}`)
      ? 'fix the syntax error there.'
      : 'fix the plugin (or drop --plugin).';
  return new DistillError(
    `Plugin '${spec}' ${what} at ${where ?? file}: ${err?.name && err.name !== 'Error' ? `${err.name}: ` : ''}${msg.replace(/\s+/g, ' ').slice(0, 300)}. ${advice[0].toUpperCase()}${advice.slice(1)}`,
    2,
  );
}

/** The package folder a plugin module belongs to, when the module is that package's entry (else undefined: a single-file plugin). */
function pluginPackageRoot(file: string): string | undefined {
  for (let d = dirname(file); d !== dirname(d); d = dirname(d)) {
    if (existsSync(join(d, 'package.json'))) {
      try {
        return entryOfPackage(d, d) === file ? d : undefined;
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/**
 * sha256 of a plugin's content: every file of its package (node_modules, .git and dist excluded when it
 * is run from its sources) for a package plugin, the file itself for a single-file plugin. A run records
 * it (config `pluginHashes`), so `--resume` refuses a plugin edited since the run started.
 */
export function pluginContentHash(file: string): string {
  const root = pluginPackageRoot(file);
  const h = createHash('sha256');
  if (!root) return h.update(readFileSync(file)).digest('hex');
  const walk = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true })
      .filter((e) => !['node_modules', '.git', '.turbo'].includes(e.name) && !e.name.endsWith('.tsbuildinfo'))
      .flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : e.isFile() ? [join(d, e.name)] : []));
  for (const f of walk(root).sort())
    h.update(`${relative(root, f)}\0`)
      .update(readFileSync(f))
      .update('\0');
  return h.digest('hex');
}

/** The content hashes of the plugin module files a run loads (config `pluginHashes`). */
export function pluginHashes(files: readonly string[]): Record<string, string> {
  return Object.fromEntries(files.map((f) => [f, pluginContentHash(f)]));
}
