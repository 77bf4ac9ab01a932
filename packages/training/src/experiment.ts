import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  atomicWriteJson,
  createLogger,
  DistillError,
  readJsonFile,
  RunDirectory,
  tf,
  type Container,
  type Logger,
  type RetrievalMetrics,
} from '@distill/core';
import { measureLatency } from '@distill/eval';
import { hasCheckpoint } from './checkpoint.js';
import { configHash, openRunFolder } from './run-guard.js';
import type { TrainConfig } from './config.js';
import { loadStudent } from './saved-student.js';
import { createRunContext, evaluateEmbeddings, train, type RunContext, type TrainResult } from './trainer.js';
import { resultsTable, svgLinePlot, type ReportRow } from './report.js';
import { readFileSync } from 'node:fs';
import type { DualEncoderStudent } from '@distill/student-architectures';

export interface ExperimentResult {
  runDir: string;
  student: TrainResult;
  baseline?: TrainResult;
  teacher?: { name: string; test: RetrievalMetrics; parameters?: number };
  seconds: number;
  report: string;
}

function versions(): Record<string, string> {
  const require = createRequire(import.meta.url);
  const out: Record<string, string> = { node: process.version };
  for (const p of ['@distill/core', '@distill/training', '@tensorflow/tfjs', 'onnxruntime-node']) {
    try {
      out[p] = (require(`${p}/package.json`) as { version: string }).version;
    } catch {
      /* not installed */
    }
  }
  return out;
}

/** Median ms per item at batch 1 and the spread (10th-90th percentile) over the timed runs. */
export interface LatencySpread {
  median: number;
  lo: number;
  hi: number;
  runs: number;
}

/**
 * Encoder latency of a saved student folder as \`distill export\` measures it (the CLI passes serve's:
 * onnxruntime on the exported graphs); without it the report times distill's tfjs forward.
 */
export type SavedStudentLatency = (dir: string) => Promise<{ image: LatencySpread; text: LatencySpread; how: string }>;

async function latencyOf(student: DualEncoderStudent): Promise<{ image: number; text: number }> {
  const { crop } = student.preprocess;
  const px = tf.randomNormal([1, 3, crop, crop]) as tf.Tensor4D;
  const tok = student.tokenize(['a smiling face with heart eyes']);
  const [img] = await measureLatency(
    async () => {
      const o = tf.tidy(() => student.encodeImage(px, false));
      await o.data();
      o.dispose();
    },
    { batchSizes: [1], warmup: 3, iters: 15 },
  );
  const [txt] = await measureLatency(
    async () => {
      const o = tf.tidy(() => student.encodeText(tok, false));
      await o.data();
      o.dispose();
    },
    { batchSizes: [1], warmup: 3, iters: 15 },
  );
  tf.dispose([px, tok.ids, tok.mask]);
  return { image: img.medianMs, text: txt.medianMs };
}

interface MetricLine {
  step: number;
  components?: Record<string, number>;
  weights?: number[];
  loss?: number;
  epochEnd?: number;
  val?: RetrievalMetrics;
}

function plots(run: RunDirectory, dirs: { label: string; dir: string }[]): string[] {
  const files: string[] = [];
  const read = (d: string): MetricLine[] =>
    existsSync(`${d}/metrics.jsonl`)
      ? readFileSync(`${d}/metrics.jsonl`, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as MetricLine)
      : [];
  const main = read(dirs[0].dir).filter((m) => m.components);
  if (main.length) {
    const names = Object.keys(main[0].components!);
    run.writeFile(
      'losses.svg',
      svgLinePlot(
        `${dirs[0].label}: losses per step`,
        names.map((n) => ({ name: n, x: main.map((m) => m.step), y: main.map((m) => m.components![n]) })),
        { xLabel: 'step', logY: true },
      ),
    );
    run.writeFile(
      'balancer-weights.svg',
      svgLinePlot(
        `${dirs[0].label}: balancer weights`,
        names.map((n, i) => ({ name: n, x: main.map((m) => m.step), y: main.map((m) => m.weights![i]) })),
        { xLabel: 'step', logY: true },
      ),
    );
    files.push('losses.svg', 'balancer-weights.svg');
  }
  const series = dirs.map(({ label, dir }) => {
    const ep = read(dir).filter((m) => m.epochEnd);
    return { name: label, x: ep.map((m) => m.epochEnd!), y: ep.map((m) => m.val!.rsum) };
  });
  run.writeFile('val-rsum.svg', svgLinePlot('validation RSUM per epoch', series, { xLabel: 'epoch' }));
  files.push('val-rsum.svg');
  return files;
}

/**
 * The main job: teacher features -> distilled student -> (optional) no-teacher student of the same size
 * and budget -> test table + report. Re-running with resume picks up each part where it stopped.
 */
/**
 * The child-process entry that trains one student (baseline-worker.ts), as a file of this package:
 * dist/baseline-worker.js when built or installed; from the TypeScript sources (vitest, tsx) the
 * child loads src/baseline-worker.ts through tsx, with workspace packages resolved to their sources.
 */
export function baselineWorkerCommand(): { file: string; execArgv: string[] } {
  const js = new URL('./baseline-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(js))) return { file: fileURLToPath(js), execArgv: [] };
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  return {
    file: fileURLToPath(new URL('./baseline-worker.ts', import.meta.url)),
    execArgv: ['--conditions=@distill/source', '--import', tsx],
  };
}

/** Run `train()` in a child process (baseline-worker), resolving to its result.json. */
export function trainInChild(
  cfg: TrainConfig,
  dir: string,
  label: string,
  resume: boolean,
  log: Logger,
): Promise<TrainResult> {
  const done = join(dir, 'result.json');
  if (existsSync(done)) return Promise.resolve(readJsonFile<TrainResult>(done));
  mkdirSync(dir, { recursive: true });
  const cfgFile = join(dir, 'train-config.json');
  atomicWriteJson(cfgFile, cfg);
  const worker = baselineWorkerCommand();
  const args = [
    ...worker.execArgv,
    worker.file,
    cfgFile,
    dir,
    label,
    ...(resume && hasCheckpoint(dir) ? ['--resume'] : []),
  ];
  log.info(`${label}: training in a second process (log: ${join(dir, 'train.log')})`);
  return new Promise((resolvePromise, reject) => {
    const out = openSync(join(dir, 'train.log'), 'a');
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', out, out],
      env: { ...process.env, DISTILL_PROGRESS_INTERVAL_MS: '30000' },
    });
    const stop = () => child.kill('SIGTERM');
    process.once('exit', stop);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      process.removeListener('exit', stop);
      closeSync(out);
      if (code === 0 && existsSync(done)) resolvePromise(readJsonFile<TrainResult>(done));
      else
        reject(
          new DistillError(
            `The ${label} run failed (${signal ?? `exit code ${code}`}); see ${join(dir, 'train.log')}. Re-run with --resume to continue it.`,
          ),
        );
    });
  });
}

export async function runExperiment(
  cfg: TrainConfig,
  opts: {
    runDir: string;
    resume?: boolean;
    logger?: Logger;
    command?: string;
    parallelBaseline?: boolean;
    container: Container;
    latency?: SavedStudentLatency;
  },
): Promise<ExperimentResult> {
  // One run per folder at a time (run.lock, released on exit and on errors), and a folder that holds
  // another config's run is refused before any work.
  const log = opts.logger ?? createLogger();
  const lock = openRunFolder(opts.runDir, cfg, { resume: opts.resume, command: opts.command, logger: log });
  try {
    return await runExperimentInFolder(cfg, { ...opts, logger: log });
  } finally {
    lock.release();
  }
}

async function runExperimentInFolder(
  cfg: TrainConfig,
  opts: {
    runDir: string;
    resume?: boolean;
    logger?: Logger;
    command?: string;
    parallelBaseline?: boolean;
    container: Container;
    latency?: SavedStudentLatency;
  },
): Promise<ExperimentResult> {
  const log = opts.logger ?? createLogger();
  const t0 = Date.now();
  const run = new RunDirectory(opts.runDir);
  // the setup, once: runtime, dataset, method, and the teacher (its features; its latency for the report)
  // (a saved-student teacher is timed from its folder with opts.latency, as the students are)
  const ctx = await createRunContext(cfg, {
    container: opts.container,
    logger: log,
    teacher: cfg.baseline ? 'report' : 'needed',
    teacherLatency: cfg.latency,
    timesSavedStudents: !!opts.latency,
  });
  const { rt, dataset, teacher: teacherFeatures } = ctx;
  if (!opts.resume || !run.exists('config.json')) {
    run.writeJson('config.json', {
      config: cfg,
      configHash: configHash(cfg),
      command: opts.command,
      versions: versions(),
      backend: rt.backend,
      seed: cfg.seed,
      datasetManifestHash: dataset.manifestHash,
      teacher: teacherFeatures ? { name: teacherFeatures.name, cacheKey: teacherFeatures.fingerprint } : null,
      created: new Date().toISOString(),
    });
  }

  const part = async (
    label: string,
    sub: string,
    c: TrainConfig,
    context: () => Promise<RunContext>,
  ): Promise<TrainResult> => {
    const dir = run.path(sub);
    if (existsSync(`${dir}/result.json`)) {
      log.info(`${label}: already finished in ${dir}`);
      return readJsonFile<TrainResult>(`${dir}/result.json`);
    }
    const resume = Boolean(opts.resume) && hasCheckpoint(dir);
    return train(c, { runDir: dir, resume, logger: log, label, context: await context() });
  };
  // The no-teacher baseline needs no teacher features: it trains in a second process (tfjs-wasm is
  // single-threaded, so this uses the second core) while the distilled student trains here.
  // Two training processes share the cores: each onnx engine gets half (unless --threads says otherwise).
  if (cfg.baseline && opts.parallelBaseline !== false && cfg.threads === 0)
    cfg = { ...cfg, threads: Math.max(1, Math.floor(cpus().length / 2)) };
  const baselineCfg: TrainConfig = { ...cfg, losses: 'none', balancer: undefined };
  const baselineJob = cfg.baseline
    ? opts.parallelBaseline === false
      ? undefined
      : trainInChild(baselineCfg, run.path('baseline'), 'no-teacher', Boolean(opts.resume), log)
    : undefined;
  const student = await part('student', 'student', cfg, async () => ctx);
  const baseline = cfg.baseline
    ? baselineJob
      ? await baselineJob
      : await part('no-teacher', 'baseline', baselineCfg, () =>
          createRunContext(baselineCfg, { container: ctx.container, from: ctx }),
        )
    : undefined;

  // ---- teacher on the test split (from its features)
  let teacher: ExperimentResult['teacher'];
  if (teacherFeatures?.splits.test) {
    const test = dataset.splits.test;
    const tf_ = teacherFeatures.splits.test;
    teacher = {
      name: teacherFeatures.name,
      test: await evaluateEmbeddings(
        {
          images: tf_.images,
          texts: tf_.texts,
          dim: teacherFeatures.dim,
          textToImage: Int32Array.from(test.captions, (c) => c.image),
        },
        { container: ctx.container },
      ),
      parameters: teacherFeatures.parameters,
    };
  }

  // ---- report
  const rows: ReportRow[] = [];
  let latencyHow = "distill's tfjs forward";
  const spread = (x: LatencySpread): [number, number] => [x.lo, x.hi];
  if (teacher) {
    let lat: { image: number; text: number; spread?: { image: [number, number]; text: [number, number] } } | undefined =
      ctx.teacherLatency;
    if (cfg.latency && opts.latency && ctx.teacherDir) {
      // a distill student as the teacher: timed as the students are (from its folder)
      const l = await opts.latency(ctx.teacherDir);
      lat = { image: l.image.median, text: l.text.median, spread: { image: spread(l.image), text: spread(l.text) } };
    }
    rows.push({
      model: `teacher: ${teacher.name}`,
      metrics: teacher.test,
      parameters: teacher.parameters,
      imageLatencyMs: lat?.image,
      textLatencyMs: lat?.text,
      latencySpread: lat?.spread,
    });
  }
  for (const [r, dir] of [
    [student, 'student'],
    [baseline, 'baseline'],
  ] as const) {
    if (!r) continue;
    let lat: { image: number; text: number; spread?: { image: [number, number]; text: [number, number] } } | undefined;
    if (cfg.latency && existsSync(run.path(dir, 'best', 'student.json'))) {
      if (opts.latency) {
        const l = await opts.latency(run.path(dir, 'best'));
        lat = { image: l.image.median, text: l.text.median, spread: { image: spread(l.image), text: spread(l.text) } };
        latencyHow = l.how;
      } else {
        const s = loadStudent(run.path(dir, 'best')).student;
        lat = await latencyOf(s);
        s.dispose();
      }
    }
    rows.push({
      model: `${r.label === 'student' ? `student (${cfg.losses})` : 'no-teacher student (contrastive)'}: ${cfg.student.pair}/${cfg.student.preset}`,
      metrics: r.test,
      parameters: r.parameters.total,
      imageLatencyMs: lat?.image,
      textLatencyMs: lat?.text,
      latencySpread: lat?.spread,
    });
  }
  const table = resultsTable(rows);
  const figs = plots(run, [
    { label: 'student', dir: run.path('student') },
    ...(baseline ? [{ label: 'no-teacher', dir: run.path('baseline') }] : []),
  ]);
  const seconds = (Date.now() - t0) / 1000;
  const report = [
    `# distill run: ${cfg.student.pair}/${cfg.student.preset} from ${cfg.teacher.name} on ${cfg.dataset.name}`,
    '',
    `Method \`${cfg.losses}\`, ${student.epochs} epochs (${student.steps} steps), batch ${cfg.batchSize}, seed ${cfg.seed}, trained on the ${student.engine ?? `tfjs-${rt.backend}`} engine. ` +
      `Best validation RSUM ${student.bestValRsum.toFixed(2)} at epoch ${student.bestEpoch}. Wall time of this invocation ${seconds.toFixed(0)} s ` +
      `(student training ${student.seconds.toFixed(0)} s${baseline ? `, no-teacher ${baseline.seconds.toFixed(0)} s` : ''}).`,
    '',
    `## Test split (${dataset.splits.test.images.length} images, ${dataset.splits.test.captions.length} captions)`,
    '',
    table,
    '',
    `Recall in percent; RSUM is the sum of the six. Latency: median ms per item at batch 1 on this machine (${latencyHow}${rows.some((r) => r.latencySpread) ? '; in brackets the 10th-90th percentile of the timed runs' : ''}).`,
    '',
    ...figs.map((f) => `![${f}](${f})`),
    '',
  ].join('\n');
  run.writeFile('report.md', report);
  const result: ExperimentResult = {
    runDir: run.root,
    student,
    baseline,
    teacher,
    seconds,
    report: run.path('report.md'),
  };
  run.writeJson('experiment.json', { ...result, table });
  return result;
}
