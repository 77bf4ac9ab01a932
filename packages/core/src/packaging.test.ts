import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '@distill/base';

// What a published package needs, checked on the sources (tools/ci/pack-install.sh then packs, installs
// and runs them for real): it ships dist/, it declares every package it imports, each README shows an
// example, and nothing run by a user finds files through the repository (a user has no repository).
const root = repoRoot();
const workspaces = ['packages', 'apps'].flatMap((d) =>
  readdirSync(join(root, d))
    .map((n) => join(root, d, n))
    .filter((p) => existsSync(join(p, 'package.json')) && existsSync(join(p, 'src'))),
);

interface Manifest {
  name: string;
  files?: string[];
  exports?: Record<string, Record<string, string> | string>;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

/** Source files a user runs: not tests, not benchmarks (dev tools), not test fixtures. */
function runtimeSources(dir: string): string[] {
  const out: string[] = [];
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) {
      if (n !== 'fixtures' && n !== 'bench') out.push(...runtimeSources(p));
    } else if (/\.ts$/.test(n) && !/\.(test|test-util|bench)\.ts$/.test(n) && !n.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** The file without its comments (block comments and whole-line // comments): examples in docs are not imports. */
const code = (f: string) =>
  readFileSync(f, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '');

/** The package a bare specifier names ('@scope/name/sub' -> '@scope/name'); undefined for relative and node: ones. */
function packageOf(spec: string): string | undefined {
  if (
    spec.startsWith('.') ||
    spec.startsWith('/') ||
    spec.startsWith('node:') ||
    builtinModules.includes(spec.split('/')[0])
  )
    return undefined;
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

describe.each(workspaces.map((w) => [relative(root, w), w]))('%s as a published package', (_name, dir) => {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;

  it('ships its built code: "files" has dist, "." exports dist/index.js (src only under @distill/source)', () => {
    expect(pkg.files).toContain('dist');
    const dot = pkg.exports?.['.'] as Record<string, string>;
    expect(dot.import).toBe('./dist/index.js');
    expect(dot['@distill/source']).toBe('./src/index.ts');
    expect(pkg.files!.some((f) => f === 'src' || f.startsWith('src/'))).toBe(false);
  });

  it('declares every package its runtime sources import', () => {
    // tsx is resolved only when a module runs from its TypeScript sources (its built .js sibling absent:
    // vitest, the workspace CLI); an installed package always has the .js (a root devDependency here).
    const declared = new Set([
      pkg.name,
      'tsx',
      ...Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies, ...pkg.peerDependencies }),
    ]);
    const missing = new Set<string>();
    for (const f of runtimeSources(join(dir, 'src'))) {
      const text = code(f);
      for (const m of text.matchAll(
        /(?:\bfrom\s+|\bimport\s*\(\s*|\brequire(?:\.resolve)?\(\s*|\.resolve\(\s*)['"]([^'"]+)['"]/g,
      )) {
        const name = packageOf(m[1]);
        if (name && !declared.has(name)) missing.add(`${name} (${relative(root, f)})`);
      }
    }
    expect([...missing]).toEqual([]);
  });

  it('finds no file through the repository at run time (repoRoot, apps/cli/bin, tools/, assets/ at the root)', () => {
    const offending: string[] = [];
    for (const f of runtimeSources(join(dir, 'src'))) {
      if (f === join(root, 'packages/base/src/shared.ts')) continue; // defines repoRoot (for tests and dev tools)
      const text = code(f);
      if (/\brepoRoot\(|apps\/cli\/bin|['"`]tools\//.test(text)) offending.push(relative(root, f));
    }
    expect(offending).toEqual([]);
  });

  it('keeps tests, test utilities and benches out of dist (tsconfig.lib.json excludes all three)', () => {
    const lib = readFileSync(join(dir, 'tsconfig.lib.json'), 'utf8');
    for (const p of ['src/**/*.test.ts', 'src/**/*.test-util.ts', 'src/**/*.bench.ts']) expect(lib).toContain(`"${p}"`);
  });

  it("its README shows an example (a ```js block to run, or the CLI's ```sh commands)", () => {
    const readme = readFileSync(join(dir, 'README.md'), 'utf8');
    expect(readme).toMatch(/^```(js|sh)$/m);
  });
});
