// The vitest project of this package as the root vitest.config.ts defines it, standalone for Stryker
// (which runs vitest inside a copy of this folder).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['@distill/source'] },
  ssr: { resolve: { conditions: ['@distill/source'] } },
  test: {
    include: ['src/**/*.test.ts'],
    exclude: [],
    environment: 'node',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
