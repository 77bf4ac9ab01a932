// The package layering of docs/architecture.md ("Package graph"), enforced: `node tools/ci/layering.mjs`
// (a step of .ci/run) cruises packages/, apps/ and tools/ with these rules, then checks the drawn graph
// against the imports it found. Workspace packages resolve to their TypeScript sources (the
// "@distill/source" condition), so an import by name lands on packages/<name>/src/index.ts.

/**
 * Layers, bottom up: a package imports only from layers strictly below its own (so no package cycle
 * can form, and two packages of one layer never import each other: losses does not import balancer).
 * Keep in step with docs/architecture.md (the layering check reads both).
 */
const LAYERS = [
  ['autodiff', 'base'],
  ['core'],
  ['data', 'balancer', 'eval', 'losses', 'pretrained'],
  ['student-architectures'],
  ['teacher-adapters'],
  ['training', 'serve'],
  ['experiments'],
  ['cli'],
];

const dirOf = (name) => (name === 'cli' ? 'apps/cli' : `packages/${name}`);
const alt = (names) => `(${names.map((n) => dirOf(n).replace('/', '\\/')).join('|')})`;

/** One rule per package: what it must not import (its own layer and every layer above). */
const layerRules = LAYERS.flatMap((layer, i) =>
  layer.map((name) => {
    const notBelow = LAYERS.slice(i)
      .flat()
      .filter((n) => n !== name);
    return {
      name: `layer-${name}`,
      comment: `${name} imports only from the layers below it (docs/architecture.md, Package graph): not ${notBelow.join(', ')}`,
      severity: 'error',
      from: { path: `^${dirOf(name).replace('/', '\\/')}/src/` },
      to: { path: `^${alt(notBelow)}/` },
    };
  }),
);

/** @type {import('dependency-cruiser').IConfiguration} */
const config = {
  forbidden: [
    ...layerRules,
    {
      name: 'no-cycle',
      comment:
        'import cycles: between packages the layer rules forbid them (a strict order); inside a package two remain, in autodiff (gradients <-> ops) and student-architectures (onnx-engine <-> dropout-graph): a warning until they are untangled',
      severity: 'warn',
      from: { path: '^(packages|apps)/' },
      to: { circular: true },
    },
    {
      name: 'no-relative-into-another-package',
      comment: 'import a workspace package by its name (@distill/<name>), never by a relative path into its folder',
      severity: 'error',
      from: { path: '^(packages|apps)/([^/]+)/' },
      to: {
        path: '^(packages|apps)/',
        pathNot: '^(packages|apps)/$2/',
        dependencyTypes: ['local'],
        dependencyTypesNot: ['aliased-workspace'],
      },
    },
    {
      name: 'tools-by-package-name',
      comment: 'tools/ import packages by name (@distill/training), never packages/*/src by relative path',
      severity: 'error',
      from: { path: '^tools/' },
      to: {
        path: '^(packages|apps)/[^/]+/src/',
        dependencyTypes: ['local'],
        dependencyTypesNot: ['aliased-workspace'],
      },
    },
    {
      name: 'test-utils-and-benches-only-from-tests',
      comment:
        'a *.test-util.ts or *.bench.ts file is imported only by tests, test utilities and benches (they stay out of the build)',
      severity: 'error',
      from: { path: '^(packages|apps)/', pathNot: '\\.(test|test-util|bench)\\.ts$' },
      to: { path: '\\.(test-util|bench)\\.ts$' },
    },
    {
      name: 'src-not-into-tools',
      comment: "a package's runtime sources never import tools/ (a published package has no tools/; its tests may)",
      severity: 'error',
      from: { path: '^(packages|apps)/[^/]+/src/', pathNot: '\\.test\\.ts$' },
      to: { path: '^tools/' },
    },
  ],
  options: {
    includeOnly: '^(packages|apps|tools)/',
    exclude: { path: '(^|/)(node_modules|dist|fixtures)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['@distill/source', 'import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.json', '.d.ts'],
    },
    combinedDependencies: false,
    skipAnalysisNotInRules: false,
  },
};

module.exports = config;
// the layers, for tools/ci/layering.mjs (not a dependency-cruiser option: it validates its own keys)
Object.defineProperty(module.exports, 'LAYERS', { value: LAYERS, enumerable: false });
