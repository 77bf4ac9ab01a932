/**
 * Loss methods (what `--losses` names): each is ONE definition of its components over `Ops<T>`
 * (`build`), run on tfjs by `loss` and inside the onnx engine's graph by `graph` + `feeds`. A method
 * declares the inputs it needs: teacher features, feature queues, and its own per-step inputs
 * computed on the host from plain arrays (`extraInputs` / `extraValues`: same-group targets, DCD's
 * teacher selection). Every method has every form.
 */
import {
  DistillError,
  graphOps,
  tf,
  type LossInputs,
  type Ops,
  type RegistryContext,
  type RegistryEntry,
} from '@distill/core';
import { type Graph, type Sym } from '@distill/autodiff';
import {
  clipKdLossOps,
  contrastiveLossOps,
  fitnetLossOps,
  groupTargetArray,
  kdLossOps,
  rkdLossOps,
} from './baselines.js';
import { tfLossOps } from './common.js';
import {
  dcdDualEncoderOps,
  dcdDualPlans,
  DCD_DEFAULTS,
  type DcdOptions,
  type DcdPlan,
  type DcdPlanTensors,
} from './dcd.js';
import { dsmdLossesOps, DSMD_COMPONENTS, DSMD_MODES, type DsmdComponent, type HingeReduction } from './dsmd.js';

/** The typed config of every loss method (registry defaults: `LOSS_DEFAULTS`). */
export interface LossMethodOptions {
  /** Temperature of the contrastive / KD / DCD similarity scores. */
  temperature: number;
  /** Hinge margin; default from the mode (paper 0, official 0.2). */
  margin?: number;
  /** Hinge reduction; default from the mode (paper max, official sum). */
  hardNegative?: HingeReduction;
  /** DCD: candidates kept per row, temperature of its distillation term, mix alpha (official 8, 1, 0.2). */
  dcd?: Partial<DcdOptions>;
}

export const LOSS_DEFAULTS: LossMethodOptions = { temperature: 0.05 };

/** Checks a loss config: one line per mistake, saying what to change. */
export function checkLossOptions(o: LossMethodOptions): LossMethodOptions {
  const bad = (what: string) => {
    throw new DistillError(`Loss options: ${what}.`, 2);
  };
  if (!(o.temperature > 0 && Number.isFinite(o.temperature)))
    bad(`temperature must be a positive number, got ${o.temperature}`);
  if (o.margin !== undefined && !Number.isFinite(o.margin)) bad(`margin must be a number, got ${o.margin}`);
  if (o.hardNegative !== undefined && o.hardNegative !== 'sum' && o.hardNegative !== 'max')
    bad(`hardNegative must be 'sum' or 'max', got '${o.hardNegative}'`);
  const d = o.dcd ?? {};
  if (d.topK !== undefined && !(Number.isInteger(d.topK) && d.topK >= 2))
    bad(`dcd.topK must be an integer >= 2, got ${d.topK}`);
  if (d.temperature !== undefined && !(d.temperature > 0))
    bad(`dcd.temperature must be positive, got ${d.temperature}`);
  if (d.alpha !== undefined && !(d.alpha >= 0 && d.alpha <= 1)) bad(`dcd.alpha must be in [0, 1], got ${d.alpha}`);
  return o;
}

/** A loss input beyond the student's embeddings, declared by the method. */
export interface LossInputSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int64';
}

/** A host value of such an input (int64 inputs hold integer indices). */
export interface HostTensor {
  data: Float32Array | Int32Array;
  dims: number[];
  dtype: 'float32' | 'int64';
}

/** The sizes a method's graph is built for. */
export interface LossShape {
  batch: number;
  dim: number;
  /** Rows of each feature queue (methods with `needsQueue`). */
  queueSize?: number;
}

/** One step's data as plain arrays (row-major): what the graph feeds and the extra inputs are computed from. */
export interface HostLossInputs {
  batch: number;
  dim: number;
  teacherImage?: Float32Array;
  teacherText?: Float32Array;
  imageQueue?: Float32Array;
  textQueue?: Float32Array;
  /** Group id of every row (rows of one image are positives of each other). */
  imageIds?: ArrayLike<number>;
}

/** The tensors a method's components are computed from, on one engine. */
export interface OpsLossInputs<T> {
  studentImage: T;
  studentText: T;
  teacherImage?: T;
  teacherText?: T;
  imageQueue?: T;
  textQueue?: T;
  /** The method's own inputs (`extraInputs`), by name. */
  extra: Record<string, T>;
}

/** An onnxruntime feed. */
export type GraphFeed = { data: Float32Array | BigInt64Array; dims: number[] };

/** Graph input names of the inputs every method may read. */
export const GRAPH_INPUTS = {
  teacherImage: 'teacher_image',
  teacherText: 'teacher_text',
  imageQueue: 'image_queue',
  textQueue: 'text_queue',
} as const;

/** A named set of losses the trainer optimises (the balancer weighs its components). */
export interface LossMethod {
  name: string;
  description: string;
  needsTeacher: boolean;
  needsQueue: boolean;
  defaultBalancer: 'dsmd-paper' | 'dsmd-official' | 'static';
  /** Component names, in the order of the returned records. */
  components: string[];
  /** The method's own per-step inputs for a batch shape (computed on the host; no gradient). */
  extraInputs(shape: LossShape): LossInputSpec[];
  /** Their values for one step. */
  extraValues(x: HostLossInputs): Record<string, HostTensor>;
  /** The components, defined once for every engine. */
  build<T>(o: Ops<T>, x: OpsLossInputs<T>): Record<string, T>;
  /** tfjs: `build` on tfOps, the extra inputs as constants. */
  loss(inputs: LossInputs): Record<string, tf.Scalar>;
  /**
   * The onnx engine: `build` on graphOps in the student's graph, with graph inputs for the teacher
   * features, queues and extra inputs (named by `GRAPH_INPUTS` and `extraInputs`), fed by `feeds`.
   */
  graph(g: Graph, student: { image: Sym; text: Sym }, shape: LossShape): Record<string, Sym>;
  /** The feeds of `graph`'s inputs for one step. */
  feeds(x: HostLossInputs): Record<string, GraphFeed>;
}

function need<T>(x: T | undefined, what: string, method: string): T {
  if (x === undefined) throw new DistillError(`Loss method '${method}' needs ${what}.`);
  return x;
}

/** A loss method's definition: what `defineLossMethod` turns into a `LossMethod` (plugins define theirs the same way). */
export interface LossMethodDef {
  name: string;
  description: string;
  needsTeacher: boolean;
  needsQueue: boolean;
  defaultBalancer: LossMethod['defaultBalancer'];
  components: string[];
  extraInputs?(shape: LossShape): LossInputSpec[];
  extraValues?(x: HostLossInputs): Record<string, HostTensor>;
  build<T>(o: Ops<T>, x: OpsLossInputs<T>): Record<string, T>;
}

/** Adds the tfjs and graph forms to a definition (the same `build` for both). */
export function defineLossMethod(d: LossMethodDef): LossMethod {
  const extraInputs: (shape: LossShape) => LossInputSpec[] = d.extraInputs ?? (() => []);
  const extraValues: (x: HostLossInputs) => Record<string, HostTensor> = d.extraValues ?? (() => ({}));
  const teacherOf = <T>(x: { teacherImage?: T; teacherText?: T }) => ({
    teacherImage: d.needsTeacher ? need(x.teacherImage, 'teacher image features', d.name) : undefined,
    teacherText: d.needsTeacher ? need(x.teacherText, 'teacher text features', d.name) : undefined,
  });
  const queuesOf = <T>(x: { imageQueue?: T; textQueue?: T }) => ({
    imageQueue: d.needsQueue ? need(x.imageQueue, 'the image queue', d.name) : undefined,
    textQueue: d.needsQueue ? need(x.textQueue, 'the text queue', d.name) : undefined,
  });
  return {
    ...d,
    extraInputs,
    extraValues,
    loss(x) {
      const o = tfLossOps();
      const [batch, dim] = x.studentImage.shape;
      const t = teacherOf(x);
      const q = queuesOf(x);
      const host: HostLossInputs = {
        batch,
        dim,
        imageIds: x.imageIds,
        get teacherImage() {
          return t.teacherImage?.dataSync() as Float32Array | undefined;
        },
        get teacherText() {
          return t.teacherText?.dataSync() as Float32Array | undefined;
        },
      };
      const values = extraValues(host);
      return tf.tidy(() => {
        const like = x.studentImage;
        const extra = Object.fromEntries(
          Object.entries(values).map(([k, v]) => [
            k,
            v.dtype === 'int64' ? o.intConstant(like, v.data, v.dims) : o.constant(like, v.data, v.dims),
          ]),
        );
        return d.build(o, { studentImage: x.studentImage, studentText: x.studentText, ...t, ...q, extra });
      }) as Record<string, tf.Scalar>;
    },
    graph(g, e, shape) {
      const [B, D] = e.image.shape;
      const input = (name: string, dims: number[], dtype: 'float32' | 'int64' = 'float32') =>
        g.input(name, dims, { dtype });
      const t = d.needsTeacher
        ? {
            teacherImage: input(GRAPH_INPUTS.teacherImage, [B, D]),
            teacherText: input(GRAPH_INPUTS.teacherText, [B, D]),
          }
        : {};
      const K = d.needsQueue ? need(shape.queueSize, 'the queue size', d.name) : 0;
      const q = d.needsQueue
        ? { imageQueue: input(GRAPH_INPUTS.imageQueue, [K, D]), textQueue: input(GRAPH_INPUTS.textQueue, [K, D]) }
        : {};
      const extra = Object.fromEntries(
        extraInputs({ ...shape, batch: B, dim: D }).map((s) => [s.name, input(s.name, s.shape, s.dtype)]),
      );
      return d.build(graphOps(), { studentImage: e.image, studentText: e.text, ...t, ...q, extra });
    },
    feeds(x) {
      const { batch: B, dim: D } = x;
      const f: Record<string, GraphFeed> = {};
      if (d.needsTeacher) {
        f[GRAPH_INPUTS.teacherImage] = { data: need(x.teacherImage, 'teacher image features', d.name), dims: [B, D] };
        f[GRAPH_INPUTS.teacherText] = { data: need(x.teacherText, 'teacher text features', d.name), dims: [B, D] };
      }
      if (d.needsQueue) {
        const qi = need(x.imageQueue, 'the image queue', d.name);
        f[GRAPH_INPUTS.imageQueue] = { data: qi, dims: [qi.length / D, D] };
        const qt = need(x.textQueue, 'the text queue', d.name);
        f[GRAPH_INPUTS.textQueue] = { data: qt, dims: [qt.length / D, D] };
      }
      for (const [k, v] of Object.entries(extraValues(x))) {
        f[k] = {
          data: v.dtype === 'int64' ? BigInt64Array.from(v.data, (n) => BigInt(n)) : (v.data as Float32Array),
          dims: v.dims,
        };
      }
      return f;
    },
  };
}

/** Same-group targets [B, B] (the contrastive and CLIP-KD InfoNCE): an extra input named 'targets'. */
const TARGETS = {
  extraInputs: (s: LossShape): LossInputSpec[] => [{ name: 'targets', shape: [s.batch, s.batch], dtype: 'float32' }],
  extraValues: (x: HostLossInputs): Record<string, HostTensor> => ({
    targets: { data: groupTargetArray(x.imageIds, x.batch), dims: [x.batch, x.batch], dtype: 'float32' },
  }),
};

const ALIASES: Record<string, DsmdComponent> = {
  cd: 'cd',
  con: 'cd',
  fd: 'fd',
  l1: 'fd',
  sd: 'sd',
  cos: 'sd',
  hnd: 'hnd',
};

/** The registry's pattern entry: any comma list of DSMD components. */
export const COMPONENT_LIST_ENTRY = 'cd,fd,sd,hnd';

const DCD_PLAN_PARTS = ['index', 'teacher', 'share', 'rsum'] as const;
const dcdInputName = (dir: 'i2t' | 't2i', part: (typeof DCD_PLAN_PARTS)[number]) => `dcd_${dir}_${part}`;

/** DCD's extra inputs per direction: the student's selected positions (int64), teacher scores [B, K], shares [B], sum r []. */
function dcdInputs(B: number, K: number): LossInputSpec[] {
  return (['i2t', 't2i'] as const).flatMap((dir) => [
    { name: dcdInputName(dir, 'index'), shape: [B * K], dtype: 'int64' as const },
    { name: dcdInputName(dir, 'teacher'), shape: [B, K], dtype: 'float32' as const },
    { name: dcdInputName(dir, 'share'), shape: [B], dtype: 'float32' as const },
    { name: dcdInputName(dir, 'rsum'), shape: [], dtype: 'float32' as const },
  ]);
}

function dcdValues(p: { i2t: DcdPlan; t2i: DcdPlan }): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const dir of ['i2t', 't2i'] as const) {
    const x = p[dir];
    out[dcdInputName(dir, 'index')] = { data: x.studentIndex, dims: [x.studentIndex.length], dtype: 'int64' };
    out[dcdInputName(dir, 'teacher')] = { data: x.teacherSelected, dims: [x.batch, x.topK], dtype: 'float32' };
    out[dcdInputName(dir, 'share')] = { data: x.entropyShare, dims: [x.batch], dtype: 'float32' };
    out[dcdInputName(dir, 'rsum')] = { data: Float32Array.of(x.rSum), dims: [], dtype: 'float32' };
  }
  return out;
}

const dcdTensors = <T>(extra: Record<string, T>, dir: 'i2t' | 't2i'): DcdPlanTensors<T> => ({
  studentIndex: extra[dcdInputName(dir, 'index')],
  teacherSelected: extra[dcdInputName(dir, 'teacher')],
  entropyShare: extra[dcdInputName(dir, 'share')],
  rSum: extra[dcdInputName(dir, 'rsum')],
});

/** A DSMD method: the enabled components in `mode` ('paper': hardest negative, margin 0; 'official': sum, margin 0.2). */
function dsmdMethod(
  o: LossMethodOptions,
  mode: 'paper' | 'official',
  enabled: readonly DsmdComponent[],
  label: string,
  description: string,
): LossMethod {
  const margin = o.margin ?? DSMD_MODES[mode].margin;
  const reduction = o.hardNegative ?? DSMD_MODES[mode].reduction;
  const cd = enabled.includes('cd');
  return defineLossMethod({
    name: label,
    description,
    needsTeacher: true,
    needsQueue: cd,
    defaultBalancer: mode === 'paper' ? 'dsmd-paper' : 'dsmd-official',
    components: DSMD_COMPONENTS.filter((c) => enabled.includes(c)).map(
      (c) => ({ fd: 'l1_loss', sd: 'cos_loss', cd: 'con_loss', hnd: 'hnd_loss' })[c],
    ),
    build: (ops, x) =>
      dsmdLossesOps(
        ops,
        { image: x.studentImage, text: x.studentText },
        { image: x.teacherImage!, text: x.teacherText! },
        cd ? { image: x.imageQueue!, text: x.textQueue! } : undefined,
        { temperature: o.temperature, margin, reduction, enabled: [...enabled] },
      ),
  });
}

/** A one-component method of a teacher loss over (student, teacher) pairs. */
function singleMethod(
  label: string,
  description: string,
  f: <T>(ops: Ops<T>, s: { image: T; text: T }, t: { image: T; text: T }, extra: Record<string, T>) => T,
  extra?: Pick<LossMethodDef, 'extraInputs' | 'extraValues'>,
): LossMethod {
  return defineLossMethod({
    name: label,
    description,
    needsTeacher: true,
    needsQueue: false,
    defaultBalancer: 'static',
    components: [label],
    ...extra,
    build: (ops, x) => ({
      [label]: f(
        ops,
        { image: x.studentImage, text: x.studentText },
        { image: x.teacherImage!, text: x.teacherText! },
        x.extra,
      ),
    }),
  });
}

/** A named loss method: its name, its description and how it is built from the loss options (definition and registration together). */
interface MethodEntry {
  name: string;
  description: string;
  method(o: LossMethodOptions, description: string): LossMethod;
}

/** The named loss methods, in the order `distill list loss` prints them: the one place their names and descriptions are written. */
const METHODS: readonly MethodEntry[] = [
  {
    name: 'dsmd',
    description: 'DSMD, paper mode: cd + fd + sd + hnd (hardest negative, margin 0), dsmd-paper balancer',
    method: (o, d) => dsmdMethod(o, 'paper', DSMD_COMPONENTS, 'dsmd', d),
  },
  {
    name: 'dsmd-official',
    description: 'DSMD, official code: cd + fd + sd + hnd (sum over negatives, margin 0.2), dsmd-official balancer',
    method: (o, d) => dsmdMethod(o, 'official', DSMD_COMPONENTS, 'dsmd-official', d),
  },
  {
    name: 'dcd',
    description:
      'DCD for dual encoders: teacher-selected hard candidates, entropy-weighted BCE + MSE on score matrices',
    method: (o, d) => {
      const opts = { ...DCD_DEFAULTS, ...o.dcd, scoreTemperature: o.temperature };
      return singleMethod(
        'dcd',
        d,
        (ops, s, _t, e) => dcdDualEncoderOps(ops, s, { i2t: dcdTensors(e, 'i2t'), t2i: dcdTensors(e, 't2i') }, opts),
        {
          extraInputs: (sh) => dcdInputs(sh.batch, opts.topK),
          extraValues: (x) =>
            dcdValues(
              dcdDualPlans(
                {
                  image: need(x.teacherImage, 'teacher image features', 'dcd'),
                  text: need(x.teacherText, 'teacher text features', 'dcd'),
                },
                x.batch,
                x.dim,
                opts,
              ),
            ),
        },
      );
    },
  },
  {
    name: 'kd',
    description: 'KL between teacher and student in-batch similarity distributions',
    method: (o, d) => singleMethod('kd', d, (ops, s, t) => kdLossOps(ops, s, t, o.temperature)),
  },
  {
    name: 'fitnet',
    description: 'MSE feature hints',
    method: (_o, d) => singleMethod('fitnet', d, (ops, s, t) => fitnetLossOps(ops, s, t)),
  },
  {
    name: 'rkd',
    description: 'relational KD: distance + angle',
    method: (_o, d) => singleMethod('rkd', d, (ops, s, t) => rkdLossOps(ops, s, t)),
  },
  {
    name: 'clip-kd',
    description: 'feature MSE + interactive contrastive (student image vs teacher text and vice versa)',
    method: (o, d) =>
      singleMethod('clip-kd', d, (ops, s, t, e) => clipKdLossOps(ops, s, t, o.temperature, e.targets), TARGETS),
  },
  {
    name: 'none',
    description: "no teacher: the student's own symmetric contrastive loss (the no-teacher baseline)",
    method: (o, d) =>
      defineLossMethod({
        name: 'contrastive',
        description: d,
        needsTeacher: false,
        needsQueue: false,
        defaultBalancer: 'static',
        components: ['contrastive'],
        ...TARGETS,
        build: (ops, x) => ({
          contrastive: contrastiveLossOps(ops, x.studentImage, x.studentText, o.temperature, x.extra.targets),
        }),
      }),
  },
];

const COMPONENT_LIST_DESCRIPTION = 'any comma list of DSMD components (paper mode), e.g. cd,hnd for an ablation';

/** The named methods' names (from their entries). */
export const METHOD_NAMES: readonly string[] = METHODS.map((m) => m.name);

/** Each entry's description by name, the component-list pattern's included (from the entries). */
export const METHOD_DESCRIPTIONS: Record<string, string> = Object.fromEntries([
  ...METHODS.map((m) => [m.name, m.description]),
  [COMPONENT_LIST_ENTRY, COMPONENT_LIST_DESCRIPTION],
]);

/** Resolve `--losses`: a method name or a comma list of DSMD components (cd, fd, sd, hnd). */
export function resolveLossMethod(spec: string, o: LossMethodOptions): LossMethod {
  const name = spec.trim();
  const entry = METHODS.find((m) => m.name === name);
  if (entry) return entry.method(o, entry.description);
  const parts = name
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const unknown = parts.filter((p) => !(p in ALIASES));
  if (parts.length === 0 || unknown.length) {
    throw new DistillError(
      `Unknown loss method '${spec}'. Use one of ${METHOD_NAMES.join(', ')}, or a comma list of DSMD components (cd, fd, sd, hnd).`,
      2,
    );
  }
  const label = parts.join(',');
  const enabled = [...new Set(parts.map((p) => ALIASES[p]))];
  return dsmdMethod(
    o,
    'paper',
    enabled,
    label,
    METHOD_DESCRIPTIONS[label] ?? `DSMD components ${enabled.join(', ')} (paper mode)`,
  );
}

/** True when `spec` is a comma list of DSMD components (no method name is one: they are told apart). */
export function isComponentList(spec: string): boolean {
  const parts = spec
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  return parts.length > 0 && parts.every((p) => p in ALIASES);
}

/**
 * The registry entries of every loss method (`register(container)` binds them under TOKENS.LossRegistry):
 * the named methods, and a pattern entry that accepts any comma list of DSMD components. `create`
 * checks the config and resolves the name it was chosen for.
 */
export type LossEntry = RegistryEntry<LossMethodOptions, LossMethod> & { matches?(name: string): boolean };

export const LOSS_ENTRIES: readonly LossEntry[] = [
  ...METHODS.map((m) => ({
    name: m.name,
    description: m.description,
    defaults: LOSS_DEFAULTS,
    create: (cfg: LossMethodOptions) => m.method(checkLossOptions(cfg), m.description),
  })),
  {
    name: COMPONENT_LIST_ENTRY,
    description: COMPONENT_LIST_DESCRIPTION,
    defaults: LOSS_DEFAULTS,
    matches: (n: string) => isComponentList(n),
    create: (cfg: LossMethodOptions, ctx: RegistryContext & { name?: string }) =>
      resolveLossMethod(ctx.name ?? COMPONENT_LIST_ENTRY, checkLossOptions(cfg)),
  },
];
