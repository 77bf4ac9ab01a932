// Mutation testing of the onnx engine's graph ops and their backward rules (autodiff), StrykerJS + vitest:
// `npm run test:mutation -- core` from the repository root (not in the default list: it is the slowest).
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.stryker.config.mjs', related: false },
  mutate: ['src/engine/onnx/ops.ts'],
  coverageAnalysis: 'perTest',
  concurrency: 1,
  timeoutMS: 10_000, // on top of 1.5 x the covering tests' own time: an endless-loop mutant costs this much
  reporters: ['clear-text', 'progress', 'json'],
  jsonReporter: { fileName: '.cache/stryker/mutation.json' },
  tempDirName: '.cache/stryker-tmp',
  cleanTempDir: 'always',
  incremental: true,
  incrementalFile: '.cache/stryker/incremental.json',
  thresholds: { high: 90, low: 80, break: null },
};
