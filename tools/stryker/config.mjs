// The StrykerJS options every package's stryker.config.mjs shares (StrykerJS 9 + the vitest runner);
// each package names only what it mutates. Run with `npm run test:mutation -- <package>` (tools/stryker/run.sh).
/** @param {string[]} mutate @returns {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export function strykerConfig(mutate) {
  return {
    testRunner: 'vitest',
    vitest: { configFile: 'vitest.stryker.config.mjs', related: false },
    mutate,
    coverageAnalysis: 'perTest',
    concurrency: 1,
    timeoutMS: 10_000, // on top of 1.5 x the covering tests' own time: an endless-loop mutant costs this much
    reporters: ['clear-text', 'progress', 'json'],
    jsonReporter: { fileName: '.cache/stryker/mutation.json' },
    tempDirName: '.cache/stryker-tmp',
    cleanTempDir: 'always',
    // Re-runs test only the mutants whose code or covering tests changed (add --force to redo all).
    incremental: true,
    incrementalFile: '.cache/stryker/incremental.json',
    thresholds: { high: 90, low: 80, break: null },
  };
}
