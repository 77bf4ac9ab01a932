import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import {
  atomicWriteJson,
  createLogger,
  DistillError,
  RunDirectory,
  type Container,
  type Logger,
  type RetrievalMetrics,
} from '@distill/core';
import { configHash, needsTeacher, type TrainConfig } from '@distill/training';
import { CLAIMS_METHOD, findingsMarkdownTable, specClaims, withVerdicts, type Finding } from './claims.js';
import {
  runLatency,
  runRanks,
  studentTestEmbeddings,
  teacherTestFeatures,
  teacherTestMetrics,
  warmTeacherCache,
} from './evaluate.js';
import { runFingerprint, type RunFingerprint } from './fingerprint.js';
import { svgBars, svgScatterPanels, svgSweep } from './plots.js';
import { planExperiment } from './plan.js';
import { defaultStore, reuseSummary, runScheduled, type RunOutcome, type Trainer } from './scheduler.js';
import { type ExperimentSpec, type PlannedRow, type PlannedRun, type RunFlags, type Scale } from './spec.js';
import { chanceRsum, meanStd, pca, seededRandom, type RunRanks } from './stats.js';
import { statisticsFromReplicates } from './verdicts.js';

export const METRIC_KEYS = ['i2t_r1', 'i2t_r5', 'i2t_r10', 't2i_r1', 't2i_r5', 't2i_r10', 'rsum'] as const;
type MetricKey = (typeof METRIC_KEYS)[number];
type MS = { mean: number; std: number };

export interface ResultRow {
  label: string;
  /** Seeds the row was trained at. */
  n: number;
  x?: number;
  i2t_r1: MS;
  i2t_r5: MS;
  i2t_r10: MS;
  t2i_r1: MS;
  t2i_r5: MS;
  t2i_r10: MS;
  rsum: MS;
  params?: number;
  /** Median ms per item at batch 1 (image, text tower) of seed 0's best student, where the spec asks for it. */
  latencyMs?: { image: number; text: number };
  paper?: { i2t?: number[]; t2i?: number[]; rsum: number };
  runs: { seed: number; dir: string; status: string; reason: string; rsum: number; steps: number; seconds: number }[];
  /** How many of its runs were reused stale (--reuse-stale): their code, teacher or dataset differ from now. */
  stale?: number;
}

export type { Finding } from './claims.js';

/** A difference in mean test RSUM against the spread of the rows it compares. */
export interface Gap {
  /** e.g. 'teacher: glyphs - dsmd-official', or a finding's claim. */
  between: string;
  /** Mean RSUM difference. */
  gap: number;
  /** The largest standard deviation over seeds of the rows compared (the teacher is one fixed model). */
  std: number;
  /** gap / std (Infinity when std is 0). */
  ratio: number;
}

/**
 * Each row's gap to the teacher, and each finding's effect, in units of the rows' standard deviation
 * over seeds: how far apart two results are against how much a result moves with the seed.
 */
export function gapsAgainstSpread(
  rows: ResultRow[],
  findings: Finding[],
  teacher?: { name: string; test: Pick<RetrievalMetrics, 'rsum'> },
): Gap[] {
  const gap = (between: string, g: number, std: number): Gap => ({
    between,
    gap: g,
    std,
    ratio: std > 0 ? g / std : g === 0 ? 0 : Infinity,
  });
  const stdOf = (labels: string[]) =>
    Math.max(...labels.map((l) => rows.find((r) => r.label === l)?.rsum.std ?? Number.NaN));
  return [
    ...(teacher
      ? rows.map((r) => gap(`teacher (${teacher.name}) - ${r.label}`, teacher.test.rsum - r.rsum.mean, r.rsum.std))
      : []),
    ...findings
      .filter((f) => f.unit !== 'cosine')
      .map((f) => gap(f.claim, f.effect.mean, stdOf(Object.keys(f.contrast)))),
  ];
}

export function gapsMarkdownTable(gaps: Gap[]): string {
  if (gaps.length === 0) return '';
  const ratio = (r: number) => (Number.isFinite(r) ? r.toFixed(1) : 'n/a (std 0)');
  return [
    '| gap | RSUM | largest std over seeds | gap / std |',
    '|---|---:|---:|---:|',
    ...gaps.map(
      (g) => `| ${g.between} | ${g.gap >= 0 ? '+' : ''}${f1(g.gap)} | ${g.std.toFixed(2)} | ${ratio(g.ratio)} |`,
    ),
  ].join('\n');
}

export interface ExperimentResults {
  experiment: string;
  title: string;
  scale: Scale;
  seeds: number;
  setting: {
    dataset: string;
    teacher: string;
    student: string;
    preset: string;
    epochs: number;
    steps: number;
    trainImages?: number;
    testSubset?: number;
  };
  rows: ResultRow[];
  /** The RSUM of random rankings on this test split (the plots' dashed line). */
  chanceRsum?: number;
  /** The teacher's own test recall (specs with teacherRow). */
  teacher?: { name: string; test: RetrievalMetrics };
  findings: Finding[];
  /** Gaps to the teacher and findings' effects against the spread over seeds. */
  gaps?: Gap[];
  plots: string[];
  wallSeconds: number;
  store: string;
  /** How many runs were reused, trained or resumed, and why (fingerprints). */
  reuse: string;
  /** Runs reused although their fingerprint differs (--reuse-stale only); every report marks them. */
  staleRuns?: { label: string; seed: number; dir: string; reason: string }[];
}

export interface ExperimentOptions {
  /** The registries runs are planned, trained and evaluated in (the CLI's container, with its plugins). */
  container: Container;
  scale: Scale;
  /** Seeds per row (0..N-1), or 'auto': start at minSeeds and add seeds to the rows of undecided claims up to maxSeeds. */
  seeds: number | 'auto';
  /** With seeds 'auto': the seeds every row starts with (default 3) and the most a row gets (default 10). */
  minSeeds?: number;
  maxSeeds?: number;
  /** The preset every run starts from (default: the spec's preset for the scale, else smoke / emoji), e.g. glyphs to run a table on the main job's benchmark. */
  preset?: string;
  /** Reuse finished runs of the same config stored under another fingerprint (code, teacher, dataset), marked stale in every report. */
  reuseStale?: boolean;
  /** Each run's fingerprint (default: the code's sources, the teacher's files, the dataset's manifest; tests replace it). */
  fingerprint?: (run: PlannedRun) => RunFingerprint | Promise<RunFingerprint>;
  /** Training processes at a time (default: the cores, one onnxruntime thread each). */
  workers?: number;
  /** onnxruntime threads per training process (default: the cores / workers, at least 1). */
  threads?: number;
  out: string;
  /** The run store (default <cache>/runs, shared by experiments). */
  store?: string;
  flags?: RunFlags;
  logger?: Logger;
  /** Bootstrap replicates (default 1000). */
  replicates?: number;
  /** Only the rows with these labels (and the claims that compare only them). */
  only?: string[];
  /** Replaces the training processes (tests). */
  trainer?: Trainer;
  /** The runs were trained elsewhere (a cluster executor): report from the store, refuse to train a missing run. */
  collect?: boolean;
  /** The teacher's test recall for specs with teacherRow (default: from its cached features; tests replace it). */
  teacherMetrics?: (cfg: TrainConfig, log: Logger) => Promise<{ name: string; test: RetrievalMetrics } | undefined>;
  /** Skip the per-query re-evaluation (tests with a fake trainer): findings then have no interval. */
  ranks?: (cfg: TrainConfig, dir: string) => Promise<RunRanks>;
}

const f1 = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : 'n/a');
const pm = (m: MS, n: number) => (n > 1 ? `${f1(m.mean)} ± ${f1(m.std)}` : f1(m.mean));
const fmtParams = (p?: number) =>
  p === undefined ? 'n/a' : p >= 1e6 ? `${(p / 1e6).toFixed(2)}M` : `${(p / 1e3).toFixed(1)}K`;

/** The results table (mean ± std over seeds) beside the paper's Flickr30K RSUM. */
export function resultsMarkdownTable(rows: ResultRow[]): string {
  const lat = rows.some((r) => r.latencyMs);
  const head = `| row | seeds | i2t R@1 | i2t R@5 | i2t R@10 | t2i R@1 | t2i R@5 | t2i R@10 | RSUM | params |${lat ? ' image ms (b=1) | text ms (b=1) |' : ''} paper RSUM (Flickr30K) |`;
  const sep = `|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|${lat ? '---:|---:|' : ''}---:|`;
  const ms = (r: ResultRow) =>
    lat
      ? ` ${r.latencyMs ? r.latencyMs.image.toFixed(2) : 'n/a'} | ${r.latencyMs ? r.latencyMs.text.toFixed(2) : 'n/a'} |`
      : '';
  return [
    head,
    sep,
    ...rows.map(
      (r) =>
        `| ${r.label}${r.stale ? ` (STALE: ${r.stale} run${r.stale > 1 ? 's' : ''})` : ''} | ${r.n} | ${METRIC_KEYS.map((k) => pm(r[k], r.n)).join(' | ')} | ${fmtParams(r.params)} |${ms(r)} ${r.paper ? r.paper.rsum.toFixed(1) : '-'} |`,
    ),
  ].join('\n');
}

export { findingsMarkdownTable } from './claims.js';

function rowStats(row: PlannedRow, outcomes: Map<string, RunOutcome>): ResultRow {
  const os = row.runs.map((r) => outcomes.get(r.hash)!);
  const stat = (k: MetricKey) => meanStd(os.map((o) => o.result.test[k]));
  return {
    label: row.label,
    n: os.length,
    ...(row.x !== undefined ? { x: row.x } : {}),
    ...(Object.fromEntries(METRIC_KEYS.map((k) => [k, stat(k)])) as Record<MetricKey, MS>),
    params: os[0]?.result.parameters.total,
    ...(row.paper ? { paper: row.paper } : {}),
    runs: os.map((o) => ({
      seed: o.run.seed,
      dir: o.dir,
      status: o.status,
      reason: o.reason,
      rsum: o.result.test.rsum,
      steps: o.result.steps,
      seconds: Math.round(o.result.seconds),
    })),
    ...(os.some((o) => o.status === 'stale') ? { stale: os.filter((o) => o.status === 'stale').length } : {}),
  };
}

/** Figure 2: teacher and student test features in one PCA basis, and how much closer matched pairs are than shuffled ones. */
async function figure2(
  row: PlannedRow,
  outcomes: Map<string, RunOutcome>,
  out: RunDirectory,
  container: Container,
  log: Logger,
  replicates: number,
): Promise<{ plot?: string; finding?: Omit<Finding, 'pHolm' | 'verdict' | 'verdictKind'> }> {
  const run = row.runs[0];
  const o = outcomes.get(run.hash)!;
  const teacher = await teacherTestFeatures(run.config, container, log);
  if (!teacher) return {};
  const student = await studentTestEmbeddings(run.config, o.dir, container, log);
  if (student.dim !== teacher.dim) return {};
  const d = teacher.dim;
  const nI = teacher.images.length / d;
  const nT = teacher.texts.length / d;
  const unit = (a: Float32Array) => {
    const b = Float32Array.from(a);
    for (let i = 0; i < b.length / d; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += b[i * d + j] ** 2;
      const n = Math.sqrt(s) || 1;
      for (let j = 0; j < d; j++) b[i * d + j] /= n;
    }
    return b;
  };
  const sets = [unit(teacher.images), unit(teacher.texts), student.images, student.texts];
  const all = new Float32Array(sets.reduce((a, s) => a + s.length, 0));
  let off = 0;
  for (const s of sets) {
    all.set(s, off);
    off += s.length;
  }
  const n = all.length / d;
  const { projected, explained } = pca(all, n, d, 2);
  const pts = (start: number, count: number) =>
    Array.from(
      { length: count },
      (_, i) => [projected[(start + i) * 2], projected[(start + i) * 2 + 1]] as [number, number],
    );
  const svg = svgScatterPanels(
    `Figure 2: PCA of test features (PC1 ${(explained[0] * 100).toFixed(0)}%, PC2 ${(explained[1] * 100).toFixed(0)}%)`,
    [
      { name: 'teacher', images: pts(0, nI), texts: pts(nI, nT) },
      { name: `student (${row.label}, seed ${run.seed})`, images: pts(nI + nT, nI), texts: pts(2 * nI + nT, nT) },
    ],
  );
  out.writeFile('figure2-pca.svg', svg);
  // alignment: cosine of each student image feature with its own teacher feature minus with another image's
  const tI = sets[0];
  const cos = (i: number, j: number) => {
    let s = 0;
    for (let k = 0; k < d; k++) s += student.images[i * d + k] * tI[j * d + k];
    return s;
  };
  const matched = Float64Array.from({ length: nI }, (_, i) => cos(i, i));
  const other = Float64Array.from({ length: nI }, (_, i) => cos(i, (i + 1) % nI));
  const diff = (w?: Float64Array) => {
    let a = 0,
      c = 0;
    for (let i = 0; i < nI; i++) {
      const k = w ? w[i] : 1;
      a += k * (matched[i] - other[i]);
      c += k;
    }
    return a / c;
  };
  const rnd = seededRandom(7);
  const effects: number[] = [];
  const w = new Float64Array(nI);
  for (let b = 0; b < replicates; b++) {
    w.fill(0);
    for (let i = 0; i < nI; i++) w[Math.floor(rnd() * nI)]++;
    effects.push(diff(w));
  }
  const s = statisticsFromReplicates(diff(), effects);
  return {
    plot: 'figure2-pca.svg',
    finding: {
      claim:
        "Figure 2: the student's features align with the teacher's (cosine of an image's student and teacher features, minus that with another image's teacher feature)",
      better: [row.label],
      worse: ['shuffled teacher'],
      contrast: { [row.label]: 1 },
      effect: s.effect,
      unit: 'cosine',
      p: s.p,
      mde: s.mde,
      se: s.se,
      df: s.df,
      seeds: [run.seed],
      resampled: `${s.resampled}, seed ${run.seed}`,
      ...(o.status === 'stale' ? { stale: true } : {}),
    },
  };
}

async function report(
  spec: ExperimentSpec,
  rows: PlannedRow[],
  outcomes: Map<string, RunOutcome>,
  opts: ExperimentOptions & { out: string; reuse: string },
  log: Logger,
  t0: number,
): Promise<ExperimentResults> {
  const out = new RunDirectory(opts.out);
  const resultRows = rows.map((r) => rowStats(r, outcomes));
  if (spec.latency && !opts.trainer) {
    for (const [i, r] of rows.entries())
      resultRows[i].latencyMs = await runLatency(outcomes.get(r.runs[0].hash)!.dir, log);
  }
  const replicates = opts.replicates ?? 1000;
  const ranksOf = opts.ranks ?? ((c: TrainConfig, dir: string) => runRanks(c, dir, opts.container, log));
  const claims = await specClaims(spec, rows, outcomes, ranksOf, replicates);
  // the chance level of this test split, from the structure of a run's ranks
  const r00 = rows[0].runs[0];
  const probe = await ranksOf(r00.config, outcomes.get(r00.hash)!.dir).catch(() => undefined);
  const chance = probe?.textToImage?.length ? chanceRsum(probe.textToImage, probe.i2t.length) : undefined;
  let teacher: ExperimentResults['teacher'];
  if (spec.teacherRow) {
    let cfg: TrainConfig | undefined;
    for (const c of rows.flatMap((r) => r.runs.map((x) => x.config)))
      if (!cfg && (await needsTeacher(c, opts.container))) cfg = c;
    if (cfg)
      teacher = await (
        opts.teacherMetrics ?? ((c: TrainConfig, l: Logger) => teacherTestMetrics(c, opts.container, l))
      )(cfg, log);
  }
  const plots: string[] = [];
  const kind = spec.plot?.kind ?? 'bars';
  if (kind === 'sweep' && resultRows.every((r) => r.x !== undefined)) {
    out.writeFile(
      `${spec.name}-sweep.svg`,
      svgSweep(
        spec.title,
        resultRows.map((r) => ({ x: r.x!, mean: r.rsum.mean, std: r.rsum.std })),
        { xLabel: spec.plot?.x, logX: spec.plot?.logX, chance },
      ),
    );
    plots.push(`${spec.name}-sweep.svg`);
  }
  if (kind === 'pca') {
    const fig = await figure2(rows[0], outcomes, out, opts.container, log, replicates);
    if (fig.plot) plots.push(fig.plot);
    if (fig.finding) claims.push(fig.finding);
  }
  // one family per table: Holm over its claims
  const findings = withVerdicts(claims);
  const gaps = spec.teacherRow ? gapsAgainstSpread(resultRows, findings, teacher) : undefined;
  const staleRuns = rows.flatMap((r) =>
    r.runs
      .map((run) => outcomes.get(run.hash)!)
      .filter((o) => o.status === 'stale')
      .map((o) => ({ label: o.run.label, seed: o.run.seed, dir: o.dir, reason: o.reason })),
  );
  const seedCounts = [...new Set(resultRows.map((r) => r.n))].sort((a, b) => a - b);
  const seedsText =
    seedCounts.length === 1
      ? `${seedCounts[0]} seed${seedCounts[0] > 1 ? 's' : ''} per row (0..${seedCounts[0] - 1})`
      : `${seedCounts.join(' to ')} seeds per row (--seeds auto: more where a claim was undecided)`;
  out.writeFile(
    `${spec.name}-bars.svg`,
    svgBars(
      `${spec.title}: test RSUM, mean ± std over seeds`,
      resultRows.map((r) => ({ label: r.label, mean: r.rsum.mean, std: r.rsum.std })),
      'test RSUM',
      chance,
    ),
  );
  plots.push(`${spec.name}-bars.svg`);

  const c = rows[0].runs[0].config;
  const r0 = outcomes.get(rows[0].runs[0].hash)!.result;
  const results: ExperimentResults = {
    experiment: spec.name,
    title: spec.title,
    scale: opts.scale,
    seeds: opts.seeds === 'auto' ? Math.max(...resultRows.map((r) => r.n)) : opts.seeds,
    setting: {
      dataset: c.dataset.name,
      teacher: c.teacher.name,
      student: `${c.student.pair}/${c.student.preset}`,
      preset: opts.preset ?? spec.preset?.[opts.scale] ?? opts.scale,
      epochs: c.schedule.epochs,
      steps: r0.steps,
      trainImages: c.dataset.trainSubset,
      testSubset: c.dataset.evalSubset,
    },
    rows: resultRows,
    ...(teacher ? { teacher } : {}),
    ...(chance !== undefined ? { chanceRsum: chance } : {}),
    findings,
    ...(gaps ? { gaps } : {}),
    plots,
    wallSeconds: Math.round((Date.now() - t0) / 1000),
    store: opts.store ?? defaultStore(),
    reuse: opts.reuse,
    ...(staleRuns.length ? { staleRuns } : {}),
  };
  out.writeJson('results.json', results);
  const trained = resultRows
    .flatMap((r) => r.runs)
    .filter((r) => r.status === 'trained' || r.status === 'resumed').length;
  const md = [
    `# ${spec.title}`,
    '',
    spec.description ? `${spec.description.trim()}\n` : '',
    ...(staleRuns.length
      ? [
          `**STALE RUNS (--reuse-stale)**: ${staleRuns.length} run${staleRuns.length > 1 ? 's' : ''} below ${staleRuns.length > 1 ? 'were' : 'was'} computed by other code, another teacher or another dataset than now ` +
            `(${[...new Set(staleRuns.map((r) => r.reason))].join('; ')}): ${staleRuns.map((r) => `${r.label} seed ${r.seed}`).join(', ')}. Rows and claims that use them are marked STALE.`,
          '',
        ]
      : []),
    `Scale \`${opts.scale}\`, ${seedsText}; dataset \`${c.dataset.name}\`${c.dataset.evalSubset ? ` (test subset ${c.dataset.evalSubset} images)` : ''}, teacher \`${c.teacher.name}\`, ` +
      `student \`${c.student.pair}/${c.student.preset}\` unless the row says otherwise, ${c.schedule.epochs} epochs, batch ${c.batchSize}. ` +
      `Wall time ${results.wallSeconds} s (${trained} run${trained === 1 ? '' : 's'} of this table trained or resumed, the others reused from the run store ${results.store}). ` +
      `Runs of this command: ${opts.reuse}.`,
    '',
    'Test split, recall in percent, mean ± standard deviation over seeds' +
      (resultRows.some((r) => r.latencyMs)
        ? "; latency: median ms per item at batch 1 of seed 0's best student on this machine, measured after training"
        : '') +
      ". The last column is the paper's Flickr30K figure " +
      '(ViT-B/16 + BERT-base from pretrained weights, BEiT-3 teacher): compare the ordering of rows, not the values.',
    '',
    resultsMarkdownTable(resultRows),
    '',
    ...(chance !== undefined ? [`Chance (random rankings of this test split): RSUM ${f1(chance)}.`, ''] : []),
    ...(teacher
      ? [
          `Teacher \`${teacher.name}\` on the same test split (from its cached features): ${METRIC_KEYS.map((k) => `${k} ${f1(teacher.test[k])}`).join(', ')}.`,
          '',
        ]
      : []),
    ...(gaps?.length
      ? [
          '## Gaps against the spread over seeds',
          '',
          'Each gap in mean test RSUM, and the same gap in units of the largest standard deviation over seeds of the rows it compares.',
          '',
          gapsMarkdownTable(gaps),
          '',
        ]
      : []),
    ...(findings.length
      ? [
          '## Claims',
          '',
          `${CLAIMS_METHOD} Test images: ${replicates} bootstrap resamples.`,
          '',
          findingsMarkdownTable(findings),
          '',
        ]
      : []),
    ...plots.map((p) => `![${p}](${p})`),
    '',
  ].join('\n');
  out.writeFile('results.md', md);
  return results;
}

/** What the command prints at the end: the rows, the teacher's RSUM, the claims and the gaps. */
function summaryTables(r: ExperimentResults): string {
  const parts = [resultsMarkdownTable(r.rows)];
  if (r.staleRuns?.length)
    parts.unshift(
      `STALE: ${r.staleRuns.length} run(s) reused with --reuse-stale (${r.staleRuns.map((x) => `${x.label} seed ${x.seed}`).join(', ')})`,
    );
  if (r.teacher) parts.push(`teacher ${r.teacher.name}: test RSUM ${f1(r.teacher.test.rsum)}`);
  if (r.findings.length) parts.push(findingsMarkdownTable(r.findings));
  if (r.gaps?.length) parts.push(gapsMarkdownTable(r.gaps));
  return parts.join('\n\n');
}

/** The trainer of a collecting experiment: a run the cluster did not finish is named, never trained here. */
const refuseToTrain: Trainer = async (job) => {
  throw new DistillError(
    `Run '${job.label}' seed ${job.config.seed} has no result in the store (${job.dir}): its task did not finish. Submit the experiment again (only the missing tasks run), or see ${join(job.dir, 'train.log')}.`,
    1,
  );
};

/**
 * `distill experiment <name>`: plan every row x seed, train what the store lacks (in parallel child
 * processes), evaluate, and write results.json, results.md and the plots per experiment under `out`
 * (`out/<name>/` when the name expands to several experiments).
 */
export async function runExperiments(
  nameOrPath: string,
  opts: ExperimentOptions,
): Promise<{ results: ExperimentResults[]; table: string }> {
  const log = opts.logger ?? createLogger();
  const t0 = Date.now();
  const auto = opts.seeds === 'auto';
  // the first plan checks the flags (seeds, workers, threads, --only) and numbers the tasks as the cluster executors do
  const first0 = planExperiment(nameOrPath, opts);
  const { specs, threads } = first0;
  const seeds0 = auto ? (opts.minSeeds ?? 3) : (opts.seeds as number);
  const maxSeeds = auto ? (opts.maxSeeds ?? 10) : seeds0;
  const workers = opts.workers ?? availableParallelism();
  // seeds per row label of each spec (--seeds auto grows those of undecided claims)
  const seedsFor = specs.map(
    (spec) => Object.fromEntries(spec.runs.map((r) => [r.label, seeds0])) as Record<string, number>,
  );
  const plan = () => planExperiment(nameOrPath, { ...opts, seedsFor }).plans;
  let plans = first0.plans;
  const store = opts.store ?? defaultStore();
  const ranksOf = opts.ranks ?? ((c: TrainConfig, dir: string) => runRanks(c, dir, opts.container, log));
  const fingerprint = opts.fingerprint ?? ((run: PlannedRun) => runFingerprint(run.config, opts.container));
  /** The first outcome of each run in this command (what was reused, trained, and why). */
  const first = new Map<string, RunOutcome>();
  let outcomes = new Map<string, RunOutcome>();
  for (let round = 1; ; round++) {
    const allRuns = plans.flatMap((p) => p.rows.flatMap((r) => r.runs));
    const unique = new Set(allRuns.map((r) => r.hash)).size;
    log.info(
      `experiment ${nameOrPath}${auto ? ` (seeds auto, round ${round})` : ''}: ${specs.length} table${specs.length > 1 ? 's' : ''}, ${allRuns.length} runs (${unique} distinct), ${workers} at a time, run store ${store}`,
    );
    if (!opts.trainer && !opts.collect)
      await warmTeacherCache(
        allRuns.map((r) => r.config),
        (c) => needsTeacher(c, opts.container),
        opts.container,
        log,
      );
    let finished = 0;
    outcomes = await runScheduled(allRuns, {
      store,
      workers,
      log,
      trainer: opts.collect ? refuseToTrain : opts.trainer,
      fingerprint,
      reuseStale: opts.reuseStale,
      after: async (o) => {
        finished++;
        if (!first.has(o.run.hash)) first.set(o.run.hash, o);
        log.info(
          `[${finished}/${unique}] ${o.run.label} seed ${o.run.seed}: ${o.status} (${o.reason}), test RSUM ${o.result.test.rsum.toFixed(2)}`,
        );
        await ranksOf(o.run.config, o.dir);
      },
    });
    if (!auto) break;
    // add a seed to every row of each undecided claim (all rows of a claim share its seeds)
    let grew = false;
    for (const [i, { spec, rows }] of plans.entries()) {
      const findings = withVerdicts(await specClaims(spec, rows, outcomes, ranksOf, opts.replicates ?? 1000));
      const grow = new Set(
        findings.filter((f) => f.verdictKind === 'inconclusive').flatMap((f) => Object.keys(f.contrast)),
      );
      for (const label of grow) {
        if (seedsFor[i][label] < maxSeeds) {
          seedsFor[i][label]++;
          grew = true;
        }
      }
      const undecided = findings.filter((f) => f.verdictKind === 'inconclusive').length;
      log.info(
        `${spec.name}: ${findings.length - undecided} of ${findings.length} claims decided${undecided && grew ? `; adding a seed to ${[...grow].filter((l) => seedsFor[i][l] <= maxSeeds).join(', ')}` : ''}`,
      );
    }
    if (!grew) break;
    plans = plan();
  }
  const reuse = reuseSummary(first.values());
  log.info(`runs: ${reuse}`);
  const results: ExperimentResults[] = [];
  for (const { spec, rows } of plans) {
    const dir = specs.length > 1 ? join(opts.out, spec.name) : opts.out;
    results.push(await report(spec, rows, outcomes, { ...opts, out: dir, store, reuse }, log, t0));
  }
  if (specs.length > 1) {
    atomicWriteJson(join(opts.out, 'results.json'), { experiment: nameOrPath, experiments: results });
    new RunDirectory(opts.out).writeFile(
      'results.md',
      results
        .map(
          (r) =>
            `## ${r.title}\n\n${resultsMarkdownTable(r.rows)}\n\n${findingsMarkdownTable(r.findings)}\n\n[details](${r.experiment}/results.md)\n`,
        )
        .join('\n'),
    );
  }
  const table = results.map((r) => `${r.title}\n${summaryTables(r)}`).join('\n\n');
  return { results, table };
}

/**
 * `distill train --seeds N`: one configuration at seeds seed..seed+N-1 (and, when the config trains the
 * no-teacher baseline, that student at the same seeds) as a one-row experiment through the run store;
 * mean and standard deviation per metric in <out>/results.json and results.md.
 */
export async function runSeeds(
  cfg: TrainConfig,
  opts: {
    container: Container;
    seeds: number;
    out: string;
    workers?: number;
    store?: string;
    logger?: Logger;
    reuseStale?: boolean;
  },
): Promise<{ results: ExperimentResults; table: string }> {
  if (!Number.isInteger(opts.seeds) || opts.seeds < 1)
    throw new DistillError(`--seeds expects a whole number >= 1, got ${opts.seeds}.`, 2);
  const rows: ExperimentSpec['runs'] = [{ label: `${cfg.losses}: ${cfg.student.pair}/${cfg.student.preset}` }];
  if (cfg.baseline && cfg.losses !== 'none')
    rows.push({
      label: `no teacher: ${cfg.student.pair}/${cfg.student.preset}`,
      set: { losses: 'none', balancer: undefined },
    });
  const spec: ExperimentSpec = {
    name: 'seeds',
    title: `${cfg.losses} on ${cfg.dataset.name}, ${opts.seeds} seeds`,
    runs: rows,
    teacherRow: await needsTeacher(cfg, opts.container),
    findings:
      rows.length > 1
        ? [
            {
              claim: 'The distilled student beats the same student without a teacher',
              better: [rows[0].label],
              worse: [rows[1].label],
            },
          ]
        : [],
  };
  const log = opts.logger ?? createLogger();
  const workers = opts.workers ?? availableParallelism();
  const threads = cfg.threads || Math.max(1, Math.floor(availableParallelism() / workers));
  const planned: PlannedRow[] = rows.map((r) => ({
    label: r.label,
    runs: Array.from({ length: opts.seeds }, (_, i) => {
      const c: TrainConfig = {
        ...cfg,
        ...(r.set as Partial<TrainConfig>),
        seed: cfg.seed + i,
        baseline: false,
        threads,
      };
      return { label: r.label, seed: c.seed, config: c, hash: configHash(c) };
    }),
  }));
  const t0 = Date.now();
  const store = opts.store ?? defaultStore();
  await warmTeacherCache(
    planned.flatMap((r) => r.runs.map((x) => x.config)),
    (c) => needsTeacher(c, opts.container),
    opts.container,
    log,
  );
  const outcomes = await runScheduled(
    planned.flatMap((r) => r.runs),
    {
      store,
      workers,
      log,
      fingerprint: (run) => runFingerprint(run.config, opts.container),
      reuseStale: opts.reuseStale,
      after: async (o) => {
        log.info(
          `${o.run.label} seed ${o.run.seed}: ${o.status} (${o.reason}), test RSUM ${o.result.test.rsum.toFixed(2)}`,
        );
        await runRanks(o.run.config, o.dir, opts.container, log);
      },
    },
  );
  const reuse = reuseSummary(outcomes.values());
  log.info(`runs: ${reuse}`);
  const results = await report(
    spec,
    planned,
    outcomes,
    { container: opts.container, scale: 'full', seeds: opts.seeds, out: opts.out, store, reuse },
    log,
    t0,
  );
  const table = summaryTables(results);
  return { results, table };
}
