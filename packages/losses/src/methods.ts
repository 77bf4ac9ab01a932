import { DistillError, onnxOps as op, tf, type LossInputs, type Sym } from '@distill/core';
import { clipKdLoss, contrastiveLoss, fitnetLoss, kdLoss, rkdLoss } from './baselines.js';
import { dcdDualEncoder, DCD_DEFAULTS } from './dcd.js';
import { dsmdLosses, DSMD_COMPONENTS, DSMD_MODES, type DsmdComponent, type HingeReduction } from './dsmd.js';
import {
  contrastiveDistillGraph,
  contrastiveLossGraph,
  featureDistillGraph,
  hingePairGraph,
  similarityDistillGraph,
  type GraphLossInputs,
} from './graph.js';

export interface LossMethodOptions {
  temperature: number;
  /** Hinge margin; default from the mode (paper 0, official 0.2). */
  margin?: number;
  /** Hinge reduction; default from the mode (paper max, official sum). */
  hardNegative?: HingeReduction;
}

/** A named set of losses the trainer optimises (the balancer weighs its components). */
export interface LossMethod {
  name: string;
  description: string;
  needsTeacher: boolean;
  needsQueue: boolean;
  defaultBalancer: 'dsmd-paper' | 'dsmd-official' | 'static';
  /** Component names, in the order of the returned record. */
  components: string[];
  loss(inputs: LossInputs): Record<string, tf.Scalar>;
  /**
   * The same components written for the onnx engine's graph builder (same names and order), when the
   * method has them (dsmd, dsmd-official, DSMD component lists, none): then the whole step runs in onnxruntime.
   */
  graph?(inputs: GraphLossInputs): Record<string, Sym>;
}

function need<T>(x: T | undefined, what: string, method: string): T {
  if (x === undefined) throw new DistillError(`Loss method '${method}' needs ${what}.`);
  return x;
}

function teacherOf(x: LossInputs, method: string) {
  return { image: need(x.teacherImage, 'teacher image features', method), text: need(x.teacherText, 'teacher text features', method) };
}

const ALIASES: Record<string, DsmdComponent> = { cd: 'cd', con: 'cd', fd: 'fd', l1: 'fd', sd: 'sd', cos: 'sd', hnd: 'hnd' };

export const METHOD_NAMES = ['dsmd', 'dsmd-official', 'dcd', 'kd', 'fitnet', 'rkd', 'clip-kd', 'none'] as const;

export const METHOD_DESCRIPTIONS: Record<string, string> = {
  dsmd: 'DSMD, paper mode: cd + fd + sd + hnd (hardest negative, margin 0), dsmd-paper balancer',
  'dsmd-official': 'DSMD, official code: cd + fd + sd + hnd (sum over negatives, margin 0.2), dsmd-official balancer',
  dcd: 'DCD for dual encoders: teacher-selected hard candidates, entropy-weighted BCE + MSE on score matrices',
  kd: 'KL between teacher and student in-batch similarity distributions',
  fitnet: 'MSE feature hints',
  rkd: 'relational KD: distance + angle',
  'clip-kd': 'feature MSE + interactive contrastive (student image vs teacher text and vice versa)',
  none: "no teacher: the student's own symmetric contrastive loss (the no-teacher baseline)",
  'cd,fd,sd,hnd': 'any comma list of DSMD components (paper mode), e.g. cd,hnd for an ablation',
};

/** Resolve `--losses`: a method name or a comma list of DSMD components (cd, fd, sd, hnd). */
export function resolveLossMethod(spec: string, o: LossMethodOptions): LossMethod {
  const name = spec.trim();
  const dsmd = (mode: 'paper' | 'official', enabled: DsmdComponent[], label: string): LossMethod => {
    const margin = o.margin ?? DSMD_MODES[mode].margin;
    const reduction = o.hardNegative ?? DSMD_MODES[mode].reduction;
    const components = (['fd', 'sd', 'cd', 'hnd'] as DsmdComponent[]).filter((c) => enabled.includes(c)).map((c) => ({ fd: 'l1_loss', sd: 'cos_loss', cd: 'con_loss', hnd: 'hnd_loss' })[c]);
    return {
      name: label,
      description: METHOD_DESCRIPTIONS[label] ?? `DSMD components ${enabled.join(', ')} (paper mode)`,
      needsTeacher: true,
      needsQueue: enabled.includes('cd'),
      defaultBalancer: mode === 'paper' ? 'dsmd-paper' : 'dsmd-official',
      components,
      loss: (x) => {
        const t = teacherOf(x, label);
        const queues = enabled.includes('cd') ? { image: need(x.imageQueue, 'the image queue', label), text: need(x.textQueue, 'the text queue', label) } : undefined;
        return dsmdLosses({ image: x.studentImage, text: x.studentText }, t, queues, { temperature: o.temperature, margin, reduction, enabled });
      },
      graph: (x) => {
        const s = { image: x.studentImage, text: x.studentText };
        const t = { image: need(x.teacherImage, 'teacher image features', label), text: need(x.teacherText, 'teacher text features', label) };
        const out: Record<string, Sym> = {};
        if (enabled.includes('fd')) out.l1_loss = op.add(featureDistillGraph(s.image, t.image), featureDistillGraph(s.text, t.text));
        if (enabled.includes('sd')) out.cos_loss = op.add(similarityDistillGraph(s.image, t.image), similarityDistillGraph(s.text, t.text));
        if (enabled.includes('cd')) {
          const qi = need(x.imageQueue, 'the image queue', label);
          const qt = need(x.textQueue, 'the text queue', label);
          out.con_loss = op.add(contrastiveDistillGraph(s.image, t.image, qi, o.temperature), contrastiveDistillGraph(s.text, t.text, qt, o.temperature));
        }
        if (enabled.includes('hnd')) {
          const h = (a: Sym, c: Sym) => hingePairGraph(a, c, margin, reduction);
          out.hnd_loss = op.add(op.add(h(s.image, t.image), h(s.text, t.text)), op.add(h(s.image, t.text), h(s.text, t.image)));
        }
        return out;
      },
    };
  };
  const simple = (label: string, needsTeacher: boolean, f: (x: LossInputs) => tf.Scalar): LossMethod => ({
    name: label,
    description: METHOD_DESCRIPTIONS[label],
    needsTeacher,
    needsQueue: false,
    defaultBalancer: 'static',
    components: [label],
    loss: (x) => ({ [label]: f(x) }),
  });
  switch (name) {
    case 'dsmd':
      return dsmd('paper', DSMD_COMPONENTS, 'dsmd');
    case 'dsmd-official':
      return dsmd('official', DSMD_COMPONENTS, 'dsmd-official');
    case 'none':
      return {
        ...simple('contrastive', false, (x) => contrastiveLoss(x.studentImage, x.studentText, o.temperature, x.imageIds)),
        description: METHOD_DESCRIPTIONS.none,
        graph: (x) => ({ contrastive: contrastiveLossGraph(x.studentImage, x.studentText, o.temperature, need(x.targets, 'same-group targets', 'none')) }),
      };
    case 'kd':
      return simple('kd', true, (x) => kdLoss({ image: x.studentImage, text: x.studentText }, teacherOf(x, 'kd'), o.temperature));
    case 'fitnet':
      return simple('fitnet', true, (x) => fitnetLoss({ image: x.studentImage, text: x.studentText }, teacherOf(x, 'fitnet')));
    case 'rkd':
      return simple('rkd', true, (x) => rkdLoss({ image: x.studentImage, text: x.studentText }, teacherOf(x, 'rkd')));
    case 'clip-kd':
      return simple('clip-kd', true, (x) => clipKdLoss({ image: x.studentImage, text: x.studentText }, teacherOf(x, 'clip-kd'), o.temperature, x.imageIds));
    case 'dcd':
      return simple('dcd', true, (x) =>
        dcdDualEncoder({ image: x.studentImage, text: x.studentText }, teacherOf(x, 'dcd'), { ...DCD_DEFAULTS, scoreTemperature: o.temperature }),
      );
  }
  const parts = name.split(',').map((p) => p.trim()).filter(Boolean);
  const unknown = parts.filter((p) => !(p in ALIASES));
  if (parts.length === 0 || unknown.length) {
    throw new DistillError(
      `Unknown loss method '${spec}'. Use one of ${METHOD_NAMES.join(', ')}, or a comma list of DSMD components (cd, fd, sd, hnd).`,
      2,
    );
  }
  return dsmd('paper', [...new Set(parts.map((p) => ALIASES[p]))], parts.join(','));
}
