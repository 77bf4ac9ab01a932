import { DistillError, readJsonFile, tf } from '@distill/core';
import { DsmdOfficialBalancer } from '@distill/balancer';
import { clipKdLoss, contrastiveLoss, fitnetLoss, infoNce, kdLoss, rkdAngle, rkdDistance, rkdLoss } from './baselines.js';
import { dcdLoss } from './dcd.js';
import { contrastiveDistillPerSample, cosinePerSample, featureDistill, hardNegativeDistill, HND_PAIRS, l2n, similarityDistill } from './dsmd.js';
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
const arr = (t: tf.Tensor) => t.arraySync() as number[] | number[][];
const num = (t: tf.Tensor) => t.dataSync()[0];

/**
 * Run distill's own implementations on a fixture's inputs with official semantics (float32, every
 * constant from `config`) and return the fixture's output keys with distill's values.
 */
export function runLossParity(fx: LossFixture): Record<string, Value> {
  const c = fx.config;
  const out: Record<string, Value> = {};
  const K = c.queue_size_K;
  const D = c.dim;
  const iq = FeatureQueue.fromKeys(Float32Array.from((fx.inputs.i_queue_init as number[][]).flat()), K, D);
  const tq = FeatureQueue.fromKeys(Float32Array.from((fx.inputs.t_queue_init as number[][]).flat()), K, D);
  const e2e = new DsmdOfficialBalancer({ k: c.balancer.k, temperature: c.balancer.temperature, eps: c.balancer.eps });
  for (const step of [1, 2]) {
    const p = `step${step}/`;
    if (!fx.inputs[`stu_img_raw_step${step}`]) continue;
    tf.tidy(() => {
      const eps = c.normalize_eps ?? 1e-12;
      const s = { image: l2n(mat(fx.inputs[`stu_img_raw_step${step}`]), eps), text: l2n(mat(fx.inputs[`stu_txt_raw_step${step}`]), eps) };
      const t = { image: l2n(mat(fx.inputs[`tea_img_raw_step${step}`]), eps), text: l2n(mat(fx.inputs[`tea_txt_raw_step${step}`]), eps) };
      out[p + 'stu_img_norm'] = arr(s.image);
      out[p + 'stu_txt_norm'] = arr(s.text);
      out[p + 'tea_img_norm'] = arr(t.image);
      out[p + 'tea_txt_norm'] = arr(t.text);
      const conI = contrastiveDistillPerSample(s.image, t.image, iq.tensor, c.temperature_T);
      const conT = contrastiveDistillPerSample(s.text, t.text, tq.tensor, c.temperature_T);
      out[p + 'con_img_per_sample'] = arr(conI);
      out[p + 'con_txt_per_sample'] = arr(conT);
      out[p + 'cos_img_per_sample'] = arr(cosinePerSample(s.image, t.image));
      out[p + 'cos_txt_per_sample'] = arr(cosinePerSample(s.text, t.text));
      const con = { img: conI.mean(), txt: conT.mean() };
      const l1 = { img: featureDistill(s.image, t.image), txt: featureDistill(s.text, t.text) };
      const cos = { img: similarityDistill(s.image, t.image), txt: similarityDistill(s.text, t.text) };
      for (const [name, v] of [['con', con], ['l1', l1], ['cos', cos]] as const) {
        out[`${p}${name}_img`] = num(v.img);
        out[`${p}${name}_txt`] = num(v.txt);
        out[`${p}${name}_loss`] = num(v.img.add(v.txt));
      }
      let mainHnd = 0;
      for (const reduction of ['sum', 'max'] as const) {
        for (const m of c.margins) {
          const h = hardNegativeDistill(s, t, m, reduction);
          const key = `${p}hnd_${reduction}_m${pyFloat(m)}/`;
          for (const pair of HND_PAIRS) out[key + pair] = num(h.pairs[pair]);
          out[key + 'total'] = num(h.total);
          if (reduction === 'sum' && m === c.main_margin_for_e2e) mainHnd = num(h.total);
        }
      }
      const losses = [out[p + 'l1_loss'] as number, out[p + 'cos_loss'] as number, out[p + 'con_loss'] as number, mainHnd];
      const w = e2e.weights(losses);
      out[p + 'e2e_balancer_weights'] = w;
      out[p + 'e2e_total_loss'] = Math.fround(w.reduce((acc, wi, i) => acc + wi * losses[i], 0));
      // After the optimizer step: enqueue this step's normalised teacher features.
      iq.enqueue(t.image.dataSync() as Float32Array, t.image.shape[0]);
      tq.enqueue(t.text.dataSync() as Float32Array, t.text.shape[0]);
      out[p + 'queue_ptr_after'] = iq.ptr;
      if (step === 1) {
        out[p + 'i_queue_after'] = arr(iq.tensor);
        out[p + 't_queue_after'] = arr(tq.tensor);
      }
    });
  }
  iq.dispose();
  tq.dispose();

  // Balancer calls on the given loss sequence (a fresh balancer).
  if (fx.inputs.balancer_loss_sequence) {
    const b = new DsmdOfficialBalancer({ k: c.balancer.k, temperature: c.balancer.temperature, eps: c.balancer.eps });
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

  // DCD block.
  if (fx.inputs.dcd_teacher_scores_all) {
    tf.tidy(() => {
      const r = dcdLoss(mat(fx.inputs.dcd_teacher_scores_all), mat(fx.inputs.dcd_student_scores_all), { topK: 8, temperature: 1, alpha: 0.2 });
      out['dcd/total_loss'] = num(r.total);
      out['dcd/d_loss'] = num(r.dLoss);
      out['dcd/nll_loss'] = num(r.nllLoss);
      out['dcd/teacher_top8_indices'] = r.selection.teacherTopIndices;
      out['dcd/student_candidate_indices'] = r.selection.studentCandidateIndices;
      out['dcd/teacher_selected_scores'] = arr(r.teacherSelected);
      out['dcd/student_selected_scores'] = arr(r.studentSelected);
      out['dcd/t_entropy_share'] = arr(r.entropyShare);
      out['dcd/r_t_weight'] = arr(r.rWeight);
      tf.dispose([r.teacherSelected, r.studentSelected]);
    });
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
  return typeof fx === 'object' && fx !== null && typeof (fx as { inputs?: { s_image?: unknown } }).inputs?.s_image === 'object';
}

/**
 * distill's baseline losses (float32, on the active tfjs backend) on a baselines fixture's inputs, under
 * the fixture's output keys: info_nce_image_text, contrastive, kd, fitnet, rkd_distance_image,
 * rkd_angle_image, rkd, clip_kd.
 */
export function runBaselineParity(fx: BaselineFixture): Record<string, number> {
  const { inputs: x, temperature: tau, kd_temperature: tauKd } = fx;
  if (!(tau > 0) || !(tauKd > 0)) throw new DistillError(`baselines fixture: temperature and kd_temperature must be positive numbers (got ${tau}, ${tauKd}).`);
  return tf.tidy(() => {
    const s = { image: mat(x.s_image), text: mat(x.s_text) };
    const t = { image: mat(x.t_image), text: mat(x.t_text) };
    const ids = x.ids;
    if (!Array.isArray(ids) || ids.length !== s.image.shape[0]) {
      throw new DistillError(`baselines fixture: inputs.ids has ${Array.isArray(ids) ? ids.length : 'no'} entries for a batch of ${s.image.shape[0]}; give one group id per row.`);
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
export function runLossParityFile(path: string): Record<string, Value> {
  const fx = readJsonFile<unknown>(path);
  if (isBaselineFixture(fx)) return runBaselineParity(fx);
  const inputs = (fx as { inputs?: unknown; config?: unknown } | null)?.inputs;
  if (typeof inputs !== 'object' || inputs === null || typeof (fx as { config?: unknown }).config !== 'object') {
    throw new DistillError(`${path} is not a loss fixture: expected the format of shared/parity/dsmd_public.json (config, inputs) or of baselines.json (inputs.s_image, ...).`);
  }
  return runLossParity(fx as LossFixture);
}

/** Largest relative difference per key between computed values and the fixture's expected outputs. */
export function compareToFixture(got: Record<string, Value>, expected: Record<string, unknown>, floor = 1e-6): Record<string, number> {
  const res: Record<string, number> = {};
  for (const [k, e] of Object.entries(expected)) {
    if (k.startsWith('float32/')) continue;
    const g = got[k];
    const flat = (v: unknown): number[] => (v === null || v === undefined ? [] : Array.isArray(v) ? (v as unknown[]).flatMap(flat) : [v as number]);
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
export function formatParityReport(got: Record<string, Value>, rel: Record<string, number>): { lines: string[]; worst: number } {
  const keys = Object.keys(rel).sort((a, b) => rel[a] - rel[b] || a.localeCompare(b));
  const show = (v: Value | undefined) =>
    v === undefined ? 'missing' : typeof v === 'number' ? String(v) : v === null ? 'null' : `[${(v as unknown[]).flat().length} values]`;
  const lines = keys.map((k) => `${k} ${show(got[k])} rel=${rel[k].toExponential(2)}`);
  const worst = keys.reduce((m, k) => (Number.isNaN(rel[k]) ? Infinity : Math.max(m, rel[k])), 0);
  lines.push(`worst_rel=${worst.toExponential(2)}`);
  return { lines, worst };
}
