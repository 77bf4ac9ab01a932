import { readdirSync, existsSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

// One vitest project per workspace package; tests sit beside the code (src/**/*.test.ts).
// Workspace packages resolve to their TypeScript sources through the "@distill/source" condition.
const roots = ['packages', 'apps']
  .flatMap((dir) =>
    readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory() && existsSync(`${dir}/${d.name}/src`))
      .map((d) => ({ name: d.name, root: `${dir}/${d.name}` })),
  )
  .concat([{ name: 'bench', root: 'tools/bench' }]); // the benchmarks' harness (not a published package)

export default defineConfig({
  test: {
    // skip accounting: with DISTILL_REQUIRE_WEBGPU=1 / DISTILL_REQUIRE_BROWSER=1, a test skipped for want of that feature fails the run
    reporters: ['default', './tools/ci/skip-accounting.ts'],
    projects: roots.map(({ name, root }) => ({
      resolve: { conditions: ['@distill/source'] },
      ssr: { resolve: { conditions: ['@distill/source'] } },
      test: {
        name,
        root,
        include: ['src/**/*.test.ts'],
        environment: 'node',
        testTimeout: 120_000,
        hookTimeout: 120_000,
        pool: 'forks',
      },
    })),
  },
});
