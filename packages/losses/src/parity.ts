import { DistillError, graphOps, OnnxRunner, readJsonFile, tf, tfOps, type Ops } from '@distill/core';
import { Graph, type Sym } from '@distill/autodiff';
import {
  clipKdLoss,
  contrastiveLoss,
  fitnetLoss,
  infoNce,
  kdLoss,
  rkdAngle,
  rkdDistance,
  rkdLoss,
} from './baselines.js';
import { l2nOps } from './common.js';
import { dcdLossOps, dcdPlan } from './dcd.js';
import {
  contrastiveDistillPerSampleOps,
  cosinePerSampleOps,
  featureDistillOps,
  hardNegativeDistillOps,
  HND_PAIRS,
  similarityDistillOps,
} from './dsmd.js';
import { FeatureQueue } from './queue.js';

/** The fixture format of shared/parity/dsmd_public.json (see its `description`). */
export interface LossFixture {
  config: {
    batch_size: number;
    dim: number;
    queue_size_K: number;
    temperature_T: number;
    margins: number[];
    main_margin_for_e2e: number;
    balancer: { k: number; temperature: number; eps: number };
    normalize_eps?: number;
  };
  inputs: Record<string, number[][] | number[]>;
  outputs?: Record<string, unknown>;
}

type Value = number | number[] | number[][] | null;

/** Python's str() of a float, as the fixture names margins (0 -> "0.0", 0.2 -> "0.2"). */
function pyFloat(x: number): string {
  return Number.isInteger(x) ? `${x}.0` : String(x);
}

const mat = (x: unknown) => tf.tensor2d(x as number[][], undefined, 'float32');
const num = (t: tf.Tensor) => t.dataSync()[0];

/** A computed output: flat float32 values and their shape. */
interface Out {
  data: ArrayLike<number>;
  shape: readonly number[];
}
/** The fixture's value form of an output: a number, a row or a matrix. */
function valueOf(x: Out): Value {
  const v = Array.from(x.data);
  if (x.shape.length === 0) return v[0];
  if (x.shape.length === 1) return v;
  const n = x.shape[x.shape.length - 1];
  return Array.from({ length: v.length / n }, (_, i) => v.slice(i * n, (i + 1) * n));
}

/**
 * One step of the fixture's DSMD block over Ops<T> (the same definitions on every engine): the raw features
 * L2-normalised with the fixture's eps, the per-sample and mean losses of both modalities, and the hinge of
 * every pair for each reduction and margin. Keys without the `step<n>/` prefix.
 */
function dsmdStepOps<T>(
  o: Ops<T>,
  x: Record<'si' | 'st' | 'ti' | 'tt' | 'qi' | 'qt', T>,
  c: LossFixture['config'],
): Record<string, T> {
  const eps = c.normalize_eps ?? 1e-12;
  const s = { image: l2nOps(o, x.si, eps), text: l2nOps(o, x.st, eps) };
  const t = { image: l2nOps(o, x.ti, eps), text: l2nOps(o, x.tt, eps) };
  const out: Record<string, T> = {
    stu_img_norm: s.image,
    stu_txt_norm: s.text,
    tea_img_norm: t.image,
    tea_txt_norm: t.text,
  };
  out.con_img_per_sample = contrastiveDistillPerSampleOps(o, s.image, t.image, x.qi, c.temperature_T);
  out.con_txt_per_sample = contrastiveDistillPerSampleOps(o, s.text, t.text, x.qt, c.temperature_T);
  out.cos_img_per_sample = cosinePerSampleOps(o, s.image, t.image);
  out.cos_txt_per_sample = cosinePerSampleOps(o, s.text, t.text);
  const per = {
    con: { img: o.reduceMean(out.con_img_per_sample, [0]), txt: o.reduceMean(out.con_txt_per_sample, [0]) },
    l1: { img: featureDistillOps(o, s.image, t.image), txt: featureDistillOps(o, s.text, t.text) },
    cos: { img: similarityDistillOps(o, s.image, t.image), txt: similarityDistillOps(o, s.text, t.text) },
  };
  for (const [name, v] of Object.entries(per)) {
    out[`${name}_img`] = v.img;
    out[`${name}_txt`] = v.txt;
    out[`${name}_loss`] = o.add(v.img, v.txt);
  }
  for (const reduction of ['sum', 'max'] as const) {
    for (const m of c.margins) {
      const h = hardNegativeDistillOps(o, s, t, m, reduction);
      const key = `hnd_${reduction}_m${pyFloat(m)}/`;
      for (const pair of HND_PAIRS) out[key + pair] = h.pairs[pair];
      out[key + 'total'] = h.total;
    }
  }
  return out;
}

/** The fixture's DCD block over Ops<T> (the teacher's plan `p` computed on the host). */
function dcdOps<T>(o: Ops<T>, x: Record<'scores' | 'idx' | 'teacher' | 'share' | 'rsum', T>): Record<string, T> {
  const r = dcdLossOps(
    o,
    x.scores,
    { studentIndex: x.idx, teacherSelected: x.teacher, entropyShare: x.share, rSum: x.rsum },
    { topK: 8, temperature: 1, alpha: 0.2 },
  );
  return { total_loss: r.total, d_loss: r.dLoss, nll_loss: r.nllLoss, student_selected_scores: r.studentSelected };
}

/** An input of an Ops computation: flat values and a shape (int: indices). */
interface In {
  data: Float32Array | Int32Array;
  shape: number[];
  int?: boolean;
}
type OpsFn<K extends string> = <T>(o: Ops<T>, x: Record<K, T>) => Record<string, T>;
const rows = (x: unknown): In => {
  const m = x as number[][];
  return { data: Float32Array.from(m.flat()), shape: [m.length, m[0].length] };
};

/** Runs an Ops computation on tfjs (synchronously, freeing every tensor it made). */
function onTfjs<K extends string>(f: OpsFn<K>, inputs: Record<K, In>): Record<string, Out> {
  const out: Record<string, Out> = {};
  tf.tidy(() => {
    const x = Object.fromEntries(
      Object.entries<In>(inputs).map(([k, v]) => [
        k,
        v.int ? tf.tensor(v.data, v.shape, 'int32') : tf.tensor(v.data, v.shape, 'float32'),
      ]),
    ) as Record<K, tf.Tensor>;
    for (const [k, v] of Object.entries(f(tfOps(), x))) out[k] = { data: v.dataSync(), shape: v.shape };
  });
  return out;
}

/** Runs an Ops computation as an onnx graph in onnxruntime (the onnx engine's ops). */
async function onGraph<K extends string>(
  f: OpsFn<K>,
  inputs: Record<K, In>,
  threads: number,
): Promise<Record<string, Out>> {
  const g = new Graph();
  const x = Object.fromEntries(
    Object.entries<In>(inputs).map(([k, v]) => [k, g.input(k, v.shape, { dtype: v.int ? 'int64' : 'float32' })]),
  ) as Record<K, Sym>;
  const y = f(graphOps(), x);
  const names = Object.keys(y);
  const runner = await OnnxRunner.create(
    g.encode(
      names.map((n) => y[n]),
      names,
    ),
    { threads },
  );
  const used = new Set(g.inputs.map((v) => v.name));
  const feeds = Object.fromEntries(
    Object.entries<In>(inputs)
      .filter(([k]) => used.has(k))
      .map(([k, v]) => [
        k,
        { data: v.int ? BigInt64Array.from(v.data, (n) => BigInt(n)) : (v.data as Float32Array), dims: v.shape },
      ]),
  );
  try {
    const res = await runner.run(feeds, names);
    return Object.fromEntries(names.map((n, i) => [n, { data: res[i], shape: y[n].shape }]));
  } finally {
    await runner.release();
  }
}

/**
 * Run distill's own implementations on a fixture's inputs with official semantics (float32, every
 * constant from `config`) and return the fixture's output keys with distill's values: the losses on
 * the tfjs engine, or with `runLossParityOnnx` the same definitions on the onnx engine.
 */
export function runLossParity(fx: LossFixture, balancer?: ParityBalancerFactory): Record<string, Value> {
  const gen = lossParitySteps(fx, balancer);
  let r = gen.next();
  while (!r.done) r = gen.next(onTfjs(r.value.f, r.value.inputs));
  return r.value;
}

/** `runLossParity` with the losses run as onnx graphs by onnxruntime (`threads` intra-op threads). */
export async function runLossParityOnnx(
  fx: LossFixture,
  balancer?: ParityBalancerFactory,
  threads = 2,
): Promise<Record<string, Value>> {
  const gen = lossParitySteps(fx, balancer);
  let r = gen.next();
  while (!r.done) r = gen.next(await onGraph(r.value.f, r.value.inputs, threads));
  return r.value;
}

type Request = { f: OpsFn<string>; inputs: Record<string, In> };

/** The official DSMD balancer as the parity replay needs it: its weights and, after each call, its trace. */
export interface ParityBalancer {
  weights(losses: number[]): number[];
  lastTrace?: { magnitudeAdjustment: number[]; adjustedLosses: number[]; lossRates?: number[] };
}

/**
 * Makes the fixture's balancer from its config (`dsmd-official` with k, temperature, eps): passed in
 * by the caller (the CLI and the tests hand @distill/balancer's), so losses do not depend on balancer.
 */
export type ParityBalancerFactory = (cfg: { k: number; temperature: number; eps: number }) => ParityBalancer;

/** The fixture's blocks in order: yields each Ops computation to run, receives its outputs (host work in between). */
function* lossParitySteps(
  fx: LossFixture,
  balancer?: ParityBalancerFactory,
): Generator<Request, Record<string, Value>, Record<string, Out>> {
  const c = fx.config;
  const officialBalancer = (): ParityBalancer => {
    if (!balancer)
      throw new DistillError(
        "This fixture replays the dsmd-official balancer: pass one (the CLI passes @distill/balancer's).",
      );
    return balancer({ k: c.balancer.k, temperature: c.balancer.temperature, eps: c.balancer.eps });
  };
  const out: Record<string, Value> = {};
  const K = c.queue_size_K;
  const D = c.dim;
  const iq = FeatureQueue.fromKeys(Float32Array.from((fx.inputs.i_queue_init as number[][]).flat()), K, D);
  const tq = FeatureQueue.fromKeys(Float32Array.from((fx.inputs.t_queue_init as number[][]).flat()), K, D);
  const e2e = fx.inputs.stu_img_raw_step1 || fx.inputs.stu_img_raw_step2 ? officialBalancer() : undefined;
  try {
    for (const step of [1, 2]) {
      const p = `step${step}/`;
      if (!fx.inputs[`stu_img_raw_step${step}`]) continue;
      const raw = (k: string) => rows(fx.inputs[`${k}_raw_step${step}`]);
      const inputs = {
        si: raw('stu_img'),
        st: raw('stu_txt'),
        ti: raw('tea_img'),
        tt: raw('tea_txt'),
        qi: { data: iq.rows, shape: [K, D] },
        qt: { data: tq.rows, shape: [K, D] }, // read before the enqueue below
      };
      const got: Record<string, Out> = yield { f: ((o, x) => dsmdStepOps(o, x as never, c)) as OpsFn<string>, inputs };
      for (const [k, v] of Object.entries(got)) out[p + k] = valueOf(v);
      const mainHnd = got[`hnd_sum_m${pyFloat(c.main_margin_for_e2e)}/total`];
      const losses = [
        out[p + 'l1_loss'] as number,
        out[p + 'cos_loss'] as number,
        out[p + 'con_loss'] as number,
        mainHnd ? mainHnd.data[0] : 0,
      ];
      const w = e2e!.weights(losses);
      out[p + 'e2e_balancer_weights'] = w;
      out[p + 'e2e_total_loss'] = Math.fround(w.reduce((acc, wi, i) => acc + wi * losses[i], 0));
      // After the optimizer step: enqueue this step's normalised teacher features.
      iq.enqueue(Float32Array.from(got.tea_img_norm.data), got.tea_img_norm.shape[0]);
      tq.enqueue(Float32Array.from(got.tea_txt_norm.data), got.tea_txt_norm.shape[0]);
      out[p + 'queue_ptr_after'] = iq.ptr;
      if (step === 1) {
        out[p + 'i_queue_after'] = valueOf({ data: iq.rows, shape: [K, D] });
        out[p + 't_queue_after'] = valueOf({ data: tq.rows, shape: [K, D] });
      }
    }
  } finally {
    iq.dispose();
    tq.dispose();
  }

  // Balancer calls on the given loss sequence (a fresh balancer).
  if (fx.inputs.balancer_loss_sequence) {
    const b = officialBalancer();
    (fx.inputs.balancer_loss_sequence as number[][]).forEach((losses, i) => {
      const w = b.weights(losses);
      const tr = b.lastTrace!;
      const p = `balancer/call${i + 1}/`;
      out[p + 'weights'] = w;
      out[p + 'magnitude_adjustment'] = tr.magnitudeAdjustment;
      out[p + 'adjusted_losses'] = tr.adjustedLosses;
      out[p + 'loss_rates'] = tr.lossRates ?? null;
      out[p + 'weighted_total'] = w.reduce((acc, wi, m) => acc + wi * losses[m], 0);
    });
  }

  // DCD block: the teacher's plan on the host, the student's part over Ops.
  if (fx.inputs.dcd_teacher_scores_all) {
    const plan = dcdPlan(fx.inputs.dcd_teacher_scores_all as number[][], 8);
    const scores = rows(fx.inputs.dcd_student_scores_all);
    const got: Record<string, Out> = yield {
      f: ((o, x) => dcdOps(o, x as never)) as OpsFn<string>,
      inputs: {
        scores,
        idx: { data: plan.studentIndex, shape: [plan.studentIndex.length], int: true },
        teacher: { data: plan.teacherSelected, shape: [plan.batch, plan.topK] },
        share: { data: plan.entropyShare, shape: [plan.batch] },
        rsum: { data: Float32Array.of(plan.rSum), shape: [] },
      },
    };
    for (const [k, v] of Object.entries(got)) out[`dcd/${k}`] = valueOf(v);
    out['dcd/teacher_top8_indices'] = plan.selection.teacherTopIndices;
    out['dcd/student_candidate_indices'] = plan.selection.studentCandidateIndices;
    out['dcd/teacher_selected_scores'] = valueOf({ data: plan.teacherSelected, shape: [plan.batch, plan.topK] });
    out['dcd/t_entropy_share'] = Array.from(plan.entropyShare);
    out['dcd/r_t_weight'] = Array.from(plan.rWeight);
  }
  return out;
}

/**
 * The fixture format of shared/parity/baselines.json (formulas: spec/baseline-losses.md): L2-normalised
 * student and teacher features [B, D], group ids, and the baseline losses' float64 reference values.
 */
export interface BaselineFixture {
  temperature: number;
  kd_temperature: number;
  inputs: { s_image: number[][]; s_text: number[][]; t_image: number[][]; t_text: number[][]; ids: number[] };
  outputs?: Record<string, number>;
}

export function isBaselineFixture(fx: unknown): fx is BaselineFixture {
  return (
    typeof fx === 'object' &&
    fx !== null &&
    typeof (fx as { inputs?: { s_image?: unknown } }).inputs?.s_image === 'object'
  );
}

/**
 * distill's baseline losses (float32, on the active tfjs backend) on a baselines fixture's inputs, under
 * the fixture's output keys: info_nce_image_text, contrastive, kd, fitnet, rkd_distance_image,
 * rkd_angle_image, rkd, clip_kd.
 */
export function runBaselineParity(fx: BaselineFixture): Record<string, number> {
  const { inputs: x, temperature: tau, kd_temperature: tauKd } = fx;
  if (!(tau > 0) || !(tauKd > 0))
    throw new DistillError(
      `baselines fixture: temperature and kd_temperature must be positive numbers (got ${tau}, ${tauKd}).`,
    );
  return tf.tidy(() => {
    const s = { image: mat(x.s_image), text: mat(x.s_text) };
    const t = { image: mat(x.t_image), text: mat(x.t_text) };
    const ids = x.ids;
    if (!Array.isArray(ids) || ids.length !== s.image.shape[0]) {
      throw new DistillError(
        `baselines fixture: inputs.ids has ${Array.isArray(ids) ? ids.length : 'no'} entries for a batch of ${s.image.shape[0]}; give one group id per row.`,
      );
    }
    return {
      info_nce_image_text: num(infoNce(s.image, s.text, tau, ids)),
      contrastive: num(contrastiveLoss(s.image, s.text, tau, ids)),
      kd: num(kdLoss(s, t, tauKd)),
      fitnet: num(fitnetLoss(s, t)),
      rkd_distance_image: num(rkdDistance(s.image, t.image)),
      rkd_angle_image: num(rkdAngle(s.image, t.image)),
      rkd: num(rkdLoss(s, t)),
      clip_kd: num(clipKdLoss(s, t, tau, ids)),
    };
  });
}

/** Run a fixture of either format (dsmd_public.json or baselines.json) through distill's losses. */
export function runLossParityFile(path: string, balancer?: ParityBalancerFactory): Record<string, Value> {
  const fx = readJsonFile<unknown>(path);
  if (isBaselineFixture(fx)) return runBaselineParity(fx);
  const inputs = (fx as { inputs?: unknown; config?: unknown } | null)?.inputs;
  if (typeof inputs !== 'object' || inputs === null || typeof (fx as { config?: unknown }).config !== 'object') {
    throw new DistillError(
      `${path} is not a loss fixture: expected the format of shared/parity/dsmd_public.json (config, inputs) or of baselines.json (inputs.s_image, ...).`,
    );
  }
  return runLossParity(fx as LossFixture, balancer);
}

/** Largest relative difference per key between computed values and the fixture's expected outputs. */
export function compareToFixture(
  got: Record<string, Value>,
  expected: Record<string, unknown>,
  floor = 1e-6,
): Record<string, number> {
  const res: Record<string, number> = {};
  for (const [k, e] of Object.entries(expected)) {
    if (k.startsWith('float32/')) continue;
    const g = got[k];
    const flat = (v: unknown): number[] =>
      v === null || v === undefined ? [] : Array.isArray(v) ? (v as unknown[]).flatMap(flat) : [v as number];
    const ge = flat(e);
    const gg = flat(g);
    if (ge.length !== gg.length) {
      res[k] = Infinity;
      continue;
    }
    res[k] = ge.reduce((m, v, i) => Math.max(m, Math.abs(v - gg[i]) / Math.max(Math.abs(v), floor)), 0);
  }
  return res;
}

/** One line per output key (`key value rel=<x>`, ascending), then `worst_rel=<x>`: what `distill parity losses` prints. */
export function formatParityReport(
  got: Record<string, Value>,
  rel: Record<string, number>,
): { lines: string[]; worst: number } {
  const keys = Object.keys(rel).sort((a, b) => rel[a] - rel[b] || a.localeCompare(b));
  const show = (v: Value | undefined) =>
    v === undefined
      ? 'missing'
      : typeof v === 'number'
        ? String(v)
        : v === null
          ? 'null'
          : `[${(v as unknown[]).flat().length} values]`;
  const lines = keys.map((k) => `${k} ${show(got[k])} rel=${rel[k].toExponential(2)}`);
  const worst = keys.reduce((m, k) => (Number.isNaN(rel[k]) ? Infinity : Math.max(m, rel[k])), 0);
  lines.push(`worst_rel=${worst.toExponential(2)}`);
  return { lines, worst };
}
