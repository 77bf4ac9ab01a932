#!/usr/bin/env node
// node tools/cluster/same-results.mjs A/results.json B/results.json
// Exit 0 when every row of A is in B (by label) with the same metrics (every recall, RSUM, and each
// run's seed, steps and RSUM); otherwise names the first difference and exits 1. Wall times, folders
// and the run store are left out (they differ between executors by design).
import { readFileSync } from 'node:fs';

const [a, b] = process.argv.slice(2).map((f) => JSON.parse(readFileSync(f, 'utf8')));
const keys = ['i2t_r1', 'i2t_r5', 'i2t_r10', 't2i_r1', 't2i_r5', 't2i_r10', 'rsum'];
const view = (r) =>
  r.rows.map((row) => ({
    label: row.label,
    n: row.n,
    ...Object.fromEntries(keys.map((k) => [k, row[k]])),
    params: row.params,
    runs: row.runs.map((x) => ({ seed: x.seed, rsum: x.rsum, steps: x.steps })),
  }));
const rb = new Map(view(b).map((r) => [r.label, r]));
const ra = view(a);
if (ra.length === 0) {
  console.error('no rows in the first results');
  process.exit(1);
}
for (const r of ra) {
  const o = rb.get(r.label);
  if (JSON.stringify(r) !== JSON.stringify(o)) {
    console.error(`results differ at row '${r.label}':\n  ${JSON.stringify(r)}\n  ${JSON.stringify(o ?? 'absent')}`);
    process.exit(1);
  }
}
console.log(
  `same results: ${ra.length} rows (${ra.map((r) => `${r.label} RSUM ${r.rsum.mean.toFixed(2)}`).join(', ')})`,
);
