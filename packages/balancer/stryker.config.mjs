// Mutation testing of @distill/balancer (StrykerJS + vitest): `npm run test:mutation -- balancer` from the repository root.
// See docs/testing.md for the scores and the surviving mutants judged equivalent.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.stryker.config.mjs', related: false },
  mutate: ['src/**/*.ts', '!src/**/*.test.ts'],
  coverageAnalysis: 'perTest',
  concurrency: 1,
  timeoutMS: 10_000, // on top of 1.5 x the covering tests' own time: an endless-loop mutant costs this much
  reporters: ['clear-text', 'progress', 'json'],
  jsonReporter: { fileName: '.cache/stryker/mutation.json' },
  tempDirName: '.cache/stryker-tmp',
  cleanTempDir: 'always',
  // Re-runs test only the mutants whose code or covering tests changed: npm run test:mutation -- <p> (add --force to redo all).
  incremental: true,
  incrementalFile: '.cache/stryker/incremental.json',
  thresholds: { high: 90, low: 80, break: null },
};
