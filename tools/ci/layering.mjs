#!/usr/bin/env node
// The layering check (a step of .ci/run): dependency-cruiser over packages/, apps/ and tools/ with the rules
// of .dependency-cruiser.cjs (the layers of docs/architecture.md, no relative import into another package,
// tools by package name, test utilities and benches only from tests), then the package graph drawn in
// docs/architecture.md (between the layering:begin/end markers) checked against the real one: each
// workspace's package.json dependencies and the imports of its runtime sources, plus the runtimes
// (tfjs, onnxruntime) each package installs, from package-lock.json.
//
//   node tools/ci/layering.mjs           check (exit 1 on a violation or a stale drawing)
//   node tools/ci/layering.mjs --write   rewrite the drawing in docs/architecture.md from the real graph
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
const { LAYERS } = require(join(root, '.dependency-cruiser.cjs'));
const DOC = join(root, 'docs/architecture.md');
const BEGIN = '<!-- layering:begin (generated: node tools/ci/layering.mjs --write) -->';
const END = '<!-- layering:end -->';
/** What "installs a runtime" means: the engines core runs models with. */
const RUNTIMES = ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', 'onnxruntime-node', 'onnxruntime-web'];
/** Packages that must install none of RUNTIMES (they depend on @distill/base, not @distill/core). */
const RUNTIME_FREE = ['autodiff', 'base', 'balancer', 'data', 'pretrained'];

const t0 = Date.now();
const bin = join(root, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');
const run = spawnSync(
  process.execPath,
  [bin, '--config', '.dependency-cruiser.cjs', '--output-type', 'json', 'packages', 'apps', 'tools'],
  {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  },
);
if (!run.stdout) {
  console.error(`layering: dependency-cruiser failed (exit ${run.status}): ${run.stderr}`);
  process.exit(1);
}
const result = JSON.parse(run.stdout);
const problems = [];
const warnings = [];
for (const v of result.summary.violations) {
  (v.rule.severity === 'error' ? problems : warnings).push(
    `${v.rule.severity} ${v.rule.name}: ${v.from} -> ${v.to}${v.cycle ? ` (cycle ${v.cycle.map((c) => c.name ?? c).join(' -> ')})` : ''}`,
  );
}

// ---- the real package graph ----
const workspaces = ['packages', 'apps'].flatMap((d) =>
  readdirSync(join(root, d))
    .filter((n) => existsSync(join(root, d, n, 'package.json')) && existsSync(join(root, d, n, 'src')))
    .map((n) => ({
      name: n,
      dir: `${d}/${n}`,
      pkg: JSON.parse(readFileSync(join(root, d, n, 'package.json'), 'utf8')),
    })),
);
const byPackageName = new Map(workspaces.map((w) => [w.pkg.name, w.name]));
const layerOf = new Map(LAYERS.flatMap((l, i) => l.map((n) => [n, i])));
for (const w of workspaces)
  if (!layerOf.has(w.name))
    problems.push(`layering: workspace ${w.dir} has no layer in .dependency-cruiser.cjs LAYERS`);

/** Runtime sources: not tests, test utilities, benches or fixtures. */
const isRuntime = (p) => /\/src\//.test(p) && !/\.(test|test-util|bench)\.ts$/.test(p) && !/\/fixtures\//.test(p);
const wsOfPath = (p) => workspaces.find((w) => p.startsWith(`${w.dir}/`))?.name;
const imported = new Map(workspaces.map((w) => [w.name, new Set()]));
for (const m of result.modules) {
  const from = wsOfPath(m.source);
  if (!from || !isRuntime(m.source)) continue;
  for (const d of m.dependencies) {
    const to = wsOfPath(d.resolved);
    if (to && to !== from) imported.get(from).add(to);
  }
}
const declared = new Map(
  workspaces.map((w) => [
    w.name,
    new Set(
      Object.keys(w.pkg.dependencies ?? {})
        .filter((n) => byPackageName.has(n))
        .map((n) => byPackageName.get(n)),
    ),
  ]),
);

// ---- runtimes installed (package-lock.json: each workspace's dependencies, transitively, optional ones included) ----
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')).packages;
function installs(ws) {
  const seen = new Set();
  const todo = Object.keys({ ...ws.pkg.dependencies, ...ws.pkg.optionalDependencies });
  while (todo.length) {
    const n = todo.pop();
    if (seen.has(n)) continue;
    seen.add(n);
    const entry = byPackageName.has(n) ? workspaces.find((w) => w.pkg.name === n).pkg : lock[`node_modules/${n}`];
    if (entry) todo.push(...Object.keys({ ...entry.dependencies, ...entry.optionalDependencies }));
  }
  return RUNTIMES.filter((r) => seen.has(r));
}

// ---- the drawing ----
const order = (a, b) => layerOf.get(b) - layerOf.get(a) || a.localeCompare(b);
const names = workspaces.map((w) => w.name).sort(order);
const width = Math.max(...names.map((n) => n.length));
const lines = [];
for (const n of names) {
  const deps = [...new Set([...declared.get(n), ...imported.get(n)])].sort(order);
  const parts = deps.map((d) =>
    declared.get(n).has(d)
      ? imported.get(n).has(d)
        ? d
        : `${d} (declared, not imported)`
      : `${d} (imported, NOT DECLARED)`,
  );
  lines.push(`${n.padEnd(width)} ──> ${parts.length ? parts.join(', ') : '(nothing)'}`);
}
const runtimes = names.map((n) => {
  const r = installs(workspaces.find((w) => w.name === n));
  if (RUNTIME_FREE.includes(n) && r.length)
    problems.push(
      `layering: ${n} must install no runtime, but its dependencies bring ${r.join(', ')} (depend on @distill/base, not @distill/core)`,
    );
  return `${n.padEnd(width)}  ${r.length ? r.join(', ') : 'none'}`;
});
const layersLine = LAYERS.map((l) => (l.length > 1 ? `{${l.map((n) => `\`${n}\``).join(', ')}}` : `\`${l[0]}\``)).join(
  ' < ',
);
const drawing = [
  BEGIN,
  '```',
  ...lines,
  '```',
  '',
  `Layers, bottom up: ${layersLine}.`,
  '',
  'The runtimes each package installs (from package-lock.json, optional dependencies included):',
  '',
  '```',
  ...runtimes,
  '```',
  END,
].join('\n');

for (const n of names) {
  for (const d of imported.get(n))
    if (!declared.get(n).has(d))
      problems.push(`layering: ${n}'s runtime sources import ${d}, which its package.json does not declare`);
}

const doc = readFileSync(DOC, 'utf8');
const a = doc.indexOf(BEGIN);
const b = doc.indexOf(END);
if (a < 0 || b < a) {
  problems.push(`layering: ${DOC} has no ${BEGIN} ... ${END} block`);
} else if (process.argv.includes('--write')) {
  writeFileSync(DOC, doc.slice(0, a) + drawing + doc.slice(b + END.length));
  console.log('layering: docs/architecture.md rewritten');
} else if (doc.slice(a, b + END.length) !== drawing) {
  problems.push(
    'layering: the package graph in docs/architecture.md is not the real one: run node tools/ci/layering.mjs --write and review the diff. The real one:',
  );
  problems.push(drawing);
}

const secs = ((Date.now() - t0) / 1000).toFixed(1);
if (warnings.length) console.warn(warnings.join('\n'));
const s = result.summary;
if (problems.length) {
  console.error(problems.join('\n'));
  console.error(`layering: FAILED (${s.totalCruised} modules, ${s.totalDependenciesCruised} dependencies, ${secs} s)`);
  process.exit(1);
}
console.log(
  `layering: ok: ${s.totalCruised} modules, ${s.totalDependenciesCruised} dependencies, ${result.summary.ruleSetUsed.forbidden.length} rules, the drawn graph matches${warnings.length ? `, ${warnings.length} warnings` : ''} (${secs} s)`,
);
