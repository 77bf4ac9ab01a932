// The tests of src/ops.ts, src/gradients.ts and src/graph.ts (values and gradients against tfjs autodiff),
// standalone for Stryker (which runs vitest inside a copy of this folder).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['@distill/source'] },
  ssr: { resolve: { conditions: ['@distill/source'] } },
  test: {
    include: ['src/ops.test.ts', 'src/graph.test.ts'],
    environment: 'node',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
