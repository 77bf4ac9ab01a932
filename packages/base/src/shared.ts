import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The project's shared reference material (`../shared/` beside the checkout: spec, parity fixtures).
 * `DISTILL_SHARED` overrides. Returns undefined when absent (a user's fresh clone): tests then skip
 * with a clear message.
 */
export function sharedDir(): string | undefined {
  if (process.env.DISTILL_SHARED)
    return existsSync(process.env.DISTILL_SHARED) ? resolve(process.env.DISTILL_SHARED) : undefined;
  const root = repoRoot();
  const candidates = [join(root, '..', 'shared'), join(root, 'shared')];
  return candidates.find((c) => existsSync(join(c, 'parity')));
}

/**
 * The monorepo root (the folder holding nx.json), found upwards from this file or the cwd. For tests and
 * dev tools only: an installed package has no repository, so code a user runs finds its files relative
 * to the package that ships them (`new URL('../assets/...', import.meta.url)`, or
 * `createRequire(import.meta.url).resolve('<pkg>/package.json')`); packaging.test.ts checks this.
 */
export function repoRoot(): string {
  for (const start of [dirname(fileURLToPath(import.meta.url)), process.cwd()]) {
    let d = start;
    for (;;) {
      if (existsSync(join(d, 'nx.json'))) return d;
      const up = dirname(d);
      if (up === d) break;
      d = up;
    }
  }
  return process.cwd();
}

/** Message used by tests that skip because shared/ is missing. */
export const SHARED_MISSING =
  'shared/ reference material not found (expected ../shared beside the checkout, or DISTILL_SHARED): skipping parity test';
