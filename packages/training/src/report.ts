import type { RetrievalMetrics } from '@distill/core';

/** A minimal SVG line plot: one or more named series over x. */
export function svgLinePlot(
  title: string,
  series: { name: string; x: number[]; y: number[] }[],
  opts: { xLabel?: string; logY?: boolean } = {},
): string {
  const W = 640,
    H = 320,
    L = 60,
    R = 150,
    T = 30,
    B = 40;
  const colors = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
  const tr = (v: number) => (opts.logY ? Math.log10(Math.max(v, 1e-12)) : v);
  const xs = series.flatMap((s) => s.x);
  const ys = series.flatMap((s) => s.y.map(tr)).filter(Number.isFinite);
  if (xs.length === 0 || ys.length === 0)
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><text x="20" y="30">${title}: no data</text></svg>`;
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (y1 - y0 < 1e-9) [y0, y1] = [y0 - 1, y1 + 1];
  const px = (x: number) => L + ((x - x0) / Math.max(x1 - x0, 1e-9)) * (W - L - R);
  const py = (y: number) => T + (1 - (tr(y) - y0) / (y1 - y0)) * (H - T - B);
  const fmt = (v: number) =>
    opts.logY ? (10 ** v).toPrecision(2) : Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2 - R / 2}" y="18" text-anchor="middle" font-size="13">${title}</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#333"/>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#333"/>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const yv = y0 + ((y1 - y0) * i) / 4;
    const y = T + (1 - i / 4) * (H - T - B);
    parts.push(
      `<line x1="${L}" y1="${y}" x2="${W - R}" y2="${y}" stroke="#eee"/><text x="${L - 4}" y="${y + 4}" text-anchor="end">${fmt(yv)}</text>`,
    );
    const xv = x0 + ((x1 - x0) * i) / 4;
    parts.push(`<text x="${px(xv)}" y="${H - B + 14}" text-anchor="middle">${Math.round(xv)}</text>`);
  }
  if (opts.xLabel) parts.push(`<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">${opts.xLabel}</text>`);
  series.forEach((s, k) => {
    const c = colors[k % colors.length];
    const pts = s.x.map((x, i) => [x, s.y[i]] as const).filter(([, y]) => Number.isFinite(tr(y)));
    // Long series are thinned to at most 600 points.
    const stride = Math.max(1, Math.ceil(pts.length / 600));
    const d = pts
      .filter((_, i) => i % stride === 0 || i === pts.length - 1)
      .map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`)
      .join(' ');
    if (pts.length === 1) parts.push(`<circle cx="${px(pts[0][0])}" cy="${py(pts[0][1])}" r="3" fill="${c}"/>`);
    else parts.push(`<polyline fill="none" stroke="${c}" stroke-width="1.5" points="${d}"/>`);
    parts.push(
      `<rect x="${W - R + 10}" y="${T + k * 16}" width="10" height="10" fill="${c}"/><text x="${W - R + 24}" y="${T + k * 16 + 9}">${s.name}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

export interface ReportRow {
  model: string;
  metrics?: RetrievalMetrics;
  parameters?: number;
  imageLatencyMs?: number;
  textLatencyMs?: number;
  throughput?: number;
  /** 10th-90th percentile of the timed runs (ms), when measured. */
  latencySpread?: { image: [number, number]; text: [number, number] };
  note?: string;
}

const f1 = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(1));

/** The paper's Tables 1 and 3 in one: R@K both ways, RSUM, parameters, encoder latency. */
export function resultsTable(rows: ReportRow[]): string {
  const head =
    '| model | i2t R@1 | i2t R@5 | i2t R@10 | t2i R@1 | t2i R@5 | t2i R@10 | RSUM | params | image ms (b=1) | text ms (b=1) |';
  const sep = '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
  const lines = rows.map((r) => {
    const m = r.metrics;
    const p = r.parameters === undefined ? 'n/a' : `${(r.parameters / 1e6).toFixed(2)}M`;
    const lat = (v?: number, s?: [number, number]) =>
      v === undefined ? 'n/a' : `${v.toFixed(2)}${s ? ` (${s[0].toFixed(2)}-${s[1].toFixed(2)})` : ''}`;
    return `| ${r.model}${r.note ? ` (${r.note})` : ''} | ${f1(m?.i2t_r1)} | ${f1(m?.i2t_r5)} | ${f1(m?.i2t_r10)} | ${f1(m?.t2i_r1)} | ${f1(m?.t2i_r5)} | ${f1(m?.t2i_r10)} | ${f1(m?.rsum)} | ${p} | ${lat(r.imageLatencyMs, r.latencySpread?.image)} | ${lat(r.textLatencyMs, r.latencySpread?.text)} |`;
  });
  return [head, sep, ...lines].join('\n');
}
