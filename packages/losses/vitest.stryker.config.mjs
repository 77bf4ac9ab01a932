// The vitest project of this package as the root vitest.config.ts defines it, standalone for Stryker
// (which runs vitest inside a copy of this folder).
// Excluded: tests that run the CLI in a child process (they test the original sources, not the mutant).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['@distill/source'] },
  ssr: { resolve: { conditions: ['@distill/source'] } },
  test: {
    include: ['src/**/*.test.ts'],
    exclude: ['src/parity-cli.test.ts'],
    environment: 'node',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
