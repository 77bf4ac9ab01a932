/** Small standalone SVG plots of an experiment: bars with error bars, sweep curves with error bars, a PCA scatter. */

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const tick = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toPrecision(2));

function axisRange(lo: number, hi: number): [number, number] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (hi - lo < 1e-9) return [lo - 1, hi + 1];
  const pad = (hi - lo) * 0.05;
  return [lo - pad, hi + pad];
}

/** The title's font size: 13 px, or smaller so that it fits the plot's width. */
export function titleSize(title: string, W: number): number {
  return Math.max(6, Math.min(13, Math.floor((W - 16) / (0.6 * title.length))));
}

/** The opening lines of every plot: the svg element, a white background, the title. */
function svgHead(W: number, H: number, title: string): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    // a title wider than the plot (a character is about 0.6 of the font size) gets a smaller font rather than being clipped
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="${titleSize(title, W)}">${esc(title)}</text>`,
  ];
}

/** A dashed horizontal line at the chance level (RSUM of random rankings), labelled. */
function chanceLine(p: string[], { W, R, L }: Box, py: (v: number) => number, chance: number | undefined): void {
  if (chance === undefined || !Number.isFinite(chance)) return;
  const y = py(chance).toFixed(1);
  p.push(
    `<line x1="${L}" y1="${y}" x2="${W - R}" y2="${y}" stroke="#888" stroke-dasharray="4 3"/><text x="${W - R - 2}" y="${(py(chance) - 3).toFixed(1)}" text-anchor="end" fill="#666">chance ${tick(chance)}</text>`,
  );
}

interface Box {
  W: number;
  H: number;
  L: number;
  R: number;
  T: number;
  B: number;
}

/** The axes of a plot in `box`, its axis labels (x only when given) and 5 horizontal grid lines over [y0, y1]. */
function axes(
  p: string[],
  { W, H, L, R, T, B }: Box,
  y0: number,
  y1: number,
  py: (v: number) => number,
  labels: { x?: string; y: string },
): void {
  p.push(
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#333"/>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#333"/>`,
  );
  if (labels.x !== undefined)
    p.push(`<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle">${esc(labels.x)}</text>`);
  p.push(
    `<text x="14" y="${(T + H - B) / 2}" transform="rotate(-90 14 ${(T + H - B) / 2})" text-anchor="middle">${esc(labels.y)}</text>`,
  );
  for (let i = 0; i <= 4; i++) {
    const v = y0 + ((y1 - y0) * i) / 4;
    p.push(
      `<line x1="${L}" y1="${py(v)}" x2="${W - R}" y2="${py(v)}" stroke="#eee"/><text x="${L - 4}" y="${py(v) + 4}" text-anchor="end">${tick(v)}</text>`,
    );
  }
}

/** One bar per row (mean) with a +-std error bar; rows with a paper value get a hollow marker on a second axis label. */
export function svgBars(
  title: string,
  bars: { label: string; mean: number; std: number }[],
  yLabel = 'test RSUM',
  chance?: number,
): string {
  const W = Math.max(420, 70 + bars.length * 60),
    H = 340,
    L = 60,
    R = 20,
    T = 30,
    B = 90;
  const hi = Math.max(...bars.map((b) => b.mean + b.std), chance ?? 0, 0);
  const [y0, y1] = [0, axisRange(0, hi)[1]];
  const py = (v: number) => T + (1 - (v - y0) / (y1 - y0)) * (H - T - B);
  const bw = (W - L - R) / Math.max(1, bars.length);
  const p = svgHead(W, H, title);
  axes(p, { W, H, L, R, T, B }, y0, y1, py, { y: yLabel });
  bars.forEach((b, i) => {
    const x = L + i * bw + bw * 0.15;
    const w = bw * 0.7;
    const c = COLORS[i % COLORS.length];
    p.push(
      `<rect x="${x.toFixed(1)}" y="${py(b.mean).toFixed(1)}" width="${w.toFixed(1)}" height="${(py(0) - py(b.mean)).toFixed(1)}" fill="${c}" fill-opacity="0.75"/>`,
    );
    if (b.std > 0) {
      const cx = x + w / 2;
      const [a, z] = [py(b.mean - b.std), py(b.mean + b.std)];
      p.push(
        `<line x1="${cx}" y1="${a}" x2="${cx}" y2="${z}" stroke="#000"/><line x1="${cx - 5}" y1="${a}" x2="${cx + 5}" y2="${a}" stroke="#000"/><line x1="${cx - 5}" y1="${z}" x2="${cx + 5}" y2="${z}" stroke="#000"/>`,
      );
    }
    const lx = x + w / 2;
    p.push(
      `<text x="${lx}" y="${H - B + 12}" text-anchor="end" transform="rotate(-40 ${lx} ${H - B + 12})">${esc(b.label)}</text>`,
    );
  });
  chanceLine(p, { W, H, L, R, T, B }, py, chance);
  p.push('</svg>');
  return p.join('\n');
}

/** A sweep: mean over seeds against x, with +-std error bars (log x when asked). */
export function svgSweep(
  title: string,
  points: { x: number; mean: number; std: number }[],
  opts: { xLabel?: string; logX?: boolean; yLabel?: string; chance?: number } = {},
): string {
  const W = 520,
    H = 320,
    L = 60,
    R = 20,
    T = 30,
    B = 45;
  const tx = (v: number) => (opts.logX ? Math.log10(v) : v);
  const xs = points.map((q) => tx(q.x));
  const [x0, x1] = axisRange(Math.min(...xs), Math.max(...xs));
  const [y0, y1] = axisRange(
    Math.min(...points.map((q) => q.mean - q.std), opts.chance ?? Infinity),
    Math.max(...points.map((q) => q.mean + q.std)),
  );
  const px = (v: number) => L + ((tx(v) - x0) / (x1 - x0)) * (W - L - R);
  const py = (v: number) => T + (1 - (v - y0) / (y1 - y0)) * (H - T - B);
  const p = svgHead(W, H, title);
  axes(p, { W, H, L, R, T, B }, y0, y1, py, { x: opts.xLabel ?? 'x', y: opts.yLabel ?? 'test RSUM' });
  const sorted = [...points].sort((a, b) => a.x - b.x);
  for (const q of sorted) p.push(`<text x="${px(q.x)}" y="${H - B + 14}" text-anchor="middle">${tick(q.x)}</text>`);
  p.push(
    `<polyline fill="none" stroke="${COLORS[0]}" stroke-width="1.5" points="${sorted.map((q) => `${px(q.x).toFixed(1)},${py(q.mean).toFixed(1)}`).join(' ')}"/>`,
  );
  for (const q of sorted) {
    p.push(`<circle cx="${px(q.x)}" cy="${py(q.mean)}" r="3" fill="${COLORS[0]}"/>`);
    if (q.std > 0)
      p.push(
        `<line x1="${px(q.x)}" y1="${py(q.mean - q.std)}" x2="${px(q.x)}" y2="${py(q.mean + q.std)}" stroke="#000"/>`,
      );
  }
  chanceLine(p, { W, H, L, R, T, B }, py, opts.chance);
  p.push('</svg>');
  return p.join('\n');
}

/** Side-by-side 2-D scatters (e.g. teacher and student features in one PCA basis): images red, texts blue. */
export function svgScatterPanels(
  title: string,
  panels: { name: string; images: [number, number][]; texts: [number, number][] }[],
): string {
  const P = 300,
    T = 40,
    G = 20;
  const W = panels.length * (P + G) + G,
    H = P + T + 30;
  const all = panels.flatMap((q) => [...q.images, ...q.texts]);
  const [x0, x1] = axisRange(Math.min(...all.map((v) => v[0])), Math.max(...all.map((v) => v[0])));
  const [y0, y1] = axisRange(Math.min(...all.map((v) => v[1])), Math.max(...all.map((v) => v[1])));
  const p = svgHead(W, H, title);
  panels.forEach((q, k) => {
    const ox = G + k * (P + G);
    const px = (v: number) => ox + ((v - x0) / (x1 - x0)) * P;
    const py = (v: number) => T + (1 - (v - y0) / (y1 - y0)) * P;
    p.push(
      `<rect x="${ox}" y="${T}" width="${P}" height="${P}" fill="none" stroke="#333"/><text x="${ox + P / 2}" y="${T - 6}" text-anchor="middle">${esc(q.name)}</text>`,
    );
    for (const [a, b] of q.texts)
      p.push(`<circle cx="${px(a).toFixed(1)}" cy="${py(b).toFixed(1)}" r="1.6" fill="#1f4fd6" fill-opacity="0.5"/>`);
    for (const [a, b] of q.images)
      p.push(`<circle cx="${px(a).toFixed(1)}" cy="${py(b).toFixed(1)}" r="2" fill="#d62728" fill-opacity="0.7"/>`);
  });
  p.push(
    `<text x="${G}" y="${H - 8}">image features red, text features blue; axes: the first two principal components of all four sets together</text>`,
  );
  p.push('</svg>');
  return p.join('\n');
}
