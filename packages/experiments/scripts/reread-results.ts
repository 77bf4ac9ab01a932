// Usage: node --conditions=@distill/source --import tsx packages/experiments/scripts/reread-results.ts docs/results/table2.json ...
// The published raw results (docs/results/*.json) re-read with the new claim statistics, seed part only:
// those files keep each run's test RSUM but not its per-query ranks, so the test-image part of the
// variance cannot be added; the se below is a lower bound, the MDE a lower bound, the p values too small.
import { readFileSync } from 'node:fs';
import { holm, tCdf, tQuantile } from '../src/verdicts.js';
for (const f of process.argv.slice(2)) {
  const j = JSON.parse(readFileSync(f, 'utf8'));
  const rows = new Map<string, Map<number, number>>(
    j.rows.map((r: any) => [r.label, new Map(r.runs.map((x: any) => [x.seed, x.rsum]))]),
  );
  const out: any[] = [];
  const claims = [
    ...j.findings
      .filter((x: any) => x.unit !== 'cosine')
      .map((x: any) => ({
        claim: x.claim,
        contrast: Object.fromEntries([
          ...x.better.map((l: string) => [l, 1 / x.better.length]),
          ...x.worse.map((l: string) => [l, -1 / x.worse.length]),
        ]),
      })),
  ];
  if (f.includes('arch'))
    claims.push({
      claim:
        'Finding 1 as the 2x2 interaction (vit-bert + resnet-textcnn - resnet-bert - vit-textcnn; unmatched widths)',
      contrast: { 'vit-bert': 1, 'resnet-textcnn': 1, 'resnet-bert': -1, 'vit-textcnn': -1 },
    });
  for (const c of claims) {
    const labels = Object.keys(c.contrast);
    const seeds = [...rows.get(labels[0])!.keys()].filter((s) => labels.every((l) => rows.get(l)!.has(s)));
    const d = seeds.map((s) => labels.reduce((a, l) => a + c.contrast[l] * rows.get(l)!.get(s)!, 0));
    const n = d.length,
      m = d.reduce((a, b) => a + b, 0) / n;
    const se = Math.sqrt(d.reduce((a, b) => a + (b - m) ** 2, 0) / (n - 1) / n);
    const df = n - 1;
    out.push({
      claim: c.claim,
      n,
      effect: m,
      se,
      p: 2 * (1 - tCdf(Math.abs(m) / se, df)),
      mde: (tQuantile(0.975, df) + tQuantile(0.8, df)) * se,
    });
  }
  const adj = holm(out.map((o) => o.p));
  console.log(`\n${f}`);
  out.forEach((o, i) =>
    console.log(
      `| ${o.claim} | ${o.effect >= 0 ? '+' : ''}${o.effect.toFixed(1)} | ${o.se.toFixed(1)} | ${o.p < 0.001 ? '<0.001' : o.p.toFixed(3)} | ${adj[i] < 0.001 ? '<0.001' : adj[i].toFixed(3)} | ${o.mde.toFixed(1)} |`,
    ),
  );
}
