import { beforeAll, describe, expect, it } from 'vitest';
import { createContainer, initRuntime, registryOf, Rng, TOKENS, tf } from '@distill/core';
import { Graph } from '@distill/autodiff';
import { clipKdLoss, contrastiveLoss, fitnetLoss, kdLoss, rkdLoss } from './baselines.js';
import { dcdDualEncoder, DCD_DEFAULTS } from './dcd.js';
import { hardNegativeDistill, l2n } from './dsmd.js';
import { register } from './index.js';
import {
  checkLossOptions,
  COMPONENT_LIST_ENTRY,
  isComponentList,
  LOSS_ENTRIES,
  METHOD_DESCRIPTIONS,
  METHOD_NAMES,
  resolveLossMethod,
  type LossMethod,
  type LossMethodOptions,
} from './methods.js';

// What `--losses <spec>` resolves to: names, components, flags, and each loss's values (same as the functions).
const m = (rows: number[][]) => tf.tensor2d(rows);
const inputs = () => ({
  studentImage: m([
    [1, 0],
    [0.6, 0.8],
    [0, 1],
  ]),
  studentText: m([
    [0.8, 0.6],
    [0, 1],
    [1, 0],
  ]),
  teacherImage: m([
    [0.6, 0.8],
    [1, 0],
    [0, 1],
  ]),
  teacherText: m([
    [1, 0],
    [0.8, 0.6],
    [0.6, 0.8],
  ]),
  imageQueue: m([
    [0, 1],
    [-1, 0],
  ]),
  textQueue: m([
    [1, 0],
    [0, -1],
  ]),
  imageIds: Int32Array.from([0, 0, 1]),
});
const values = (r: Record<string, tf.Scalar>) =>
  Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.dataSync()[0]]));
const s = () => ({ image: inputs().studentImage, text: inputs().studentText });
const t = () => ({ image: inputs().teacherImage, text: inputs().teacherText });

describe('resolveLossMethod', () => {
  beforeAll(async () => {
    await initRuntime('cpu', { quiet: true });
  });
  const o: LossMethodOptions = { temperature: 0.5 };
  const meta = (x: LossMethod) => [x.name, x.components, x.needsTeacher, x.needsQueue, x.defaultBalancer];

  it('names the single-loss methods, their flags and balancer', () => {
    expect(meta(resolveLossMethod('kd', o))).toEqual(['kd', ['kd'], true, false, 'static']);
    expect(meta(resolveLossMethod('fitnet', o))).toEqual(['fitnet', ['fitnet'], true, false, 'static']);
    expect(meta(resolveLossMethod('rkd', o))).toEqual(['rkd', ['rkd'], true, false, 'static']);
    expect(meta(resolveLossMethod('clip-kd', o))).toEqual(['clip-kd', ['clip-kd'], true, false, 'static']);
    expect(meta(resolveLossMethod('dcd', o))).toEqual(['dcd', ['dcd'], true, false, 'static']);
    expect(meta(resolveLossMethod(' none ', o))).toEqual(['contrastive', ['contrastive'], false, false, 'static']);
    expect(meta(resolveLossMethod('dsmd', o))).toEqual([
      'dsmd',
      ['l1_loss', 'cos_loss', 'con_loss', 'hnd_loss'],
      true,
      true,
      'dsmd-paper',
    ]);
    expect(meta(resolveLossMethod('dsmd-official', o))).toEqual([
      'dsmd-official',
      ['l1_loss', 'cos_loss', 'con_loss', 'hnd_loss'],
      true,
      true,
      'dsmd-official',
    ]);
    for (const name of ['kd', 'fitnet', 'rkd', 'clip-kd', 'dcd', 'dsmd', 'dsmd-official'])
      expect(resolveLossMethod(name, o).description).toBe(METHOD_DESCRIPTIONS[name]);
    expect(resolveLossMethod('none', o).description).toBe(METHOD_DESCRIPTIONS.none);
  });

  it('every single-loss method returns the value of its function', () => {
    const x = inputs();
    const ids = x.imageIds;
    expect(values(resolveLossMethod('kd', o).loss(x))).toEqual({
      kd: expect.closeTo(kdLoss(s(), t(), 0.5).dataSync()[0], 6),
    });
    expect(values(resolveLossMethod('fitnet', o).loss(x))).toEqual({
      fitnet: expect.closeTo(fitnetLoss(s(), t()).dataSync()[0], 6),
    });
    expect(values(resolveLossMethod('rkd', o).loss(x))).toEqual({
      rkd: expect.closeTo(rkdLoss(s(), t()).dataSync()[0], 6),
    });
    expect(values(resolveLossMethod('clip-kd', o).loss(x))).toEqual({
      'clip-kd': expect.closeTo(clipKdLoss(s(), t(), 0.5, ids).dataSync()[0], 6),
    });
    expect(values(resolveLossMethod('none', o).loss(x))).toEqual({
      contrastive: expect.closeTo(contrastiveLoss(s().image, s().text, 0.5, ids).dataSync()[0], 6),
    });
    // DCD picks topK = 8 candidates per row: a batch of 10.
    const rand = (seed: number) => l2n(tf.tensor2d(new Rng(seed).normalArray(40), [10, 4]));
    const big = { studentImage: rand(1), studentText: rand(2), teacherImage: rand(3), teacherText: rand(4) };
    const dcd = dcdDualEncoder(
      { image: big.studentImage, text: big.studentText },
      { image: big.teacherImage, text: big.teacherText },
      { ...DCD_DEFAULTS, scoreTemperature: 0.5 },
    ).dataSync()[0];
    expect(values(resolveLossMethod('dcd', o).loss(big))).toEqual({ dcd: expect.closeTo(dcd, 6) });
    expect(values(resolveLossMethod('dcd', { temperature: 0.05 }).loss(big)).dcd).not.toBeCloseTo(dcd, 3);
    // The group ids reach the losses that use them: without them the values differ.
    const noIds = { ...x, imageIds: undefined };
    expect(resolveLossMethod('none', o).loss(noIds).contrastive.dataSync()[0]).not.toBeCloseTo(
      values(resolveLossMethod('none', o).loss(x)).contrastive,
      3,
    );
    expect(resolveLossMethod('clip-kd', o).loss(noIds)['clip-kd'].dataSync()[0]).not.toBeCloseTo(
      values(resolveLossMethod('clip-kd', o).loss(x))['clip-kd'],
      3,
    );
  });

  it('a method that needs a teacher or queues says which input is missing', () => {
    const x = inputs();
    for (const name of ['kd', 'fitnet', 'rkd', 'clip-kd', 'dcd']) {
      expect(() => resolveLossMethod(name, o).loss({ ...x, teacherImage: undefined })).toThrow(
        new RegExp(`^Loss method '${name}' needs teacher image features.$`),
      );
      expect(() => resolveLossMethod(name, o).loss({ ...x, teacherText: undefined })).toThrow(
        `Loss method '${name}' needs teacher text features.`,
      );
    }
    expect(() => resolveLossMethod('dsmd', o).loss({ ...x, teacherText: undefined })).toThrow(
      "Loss method 'dsmd' needs teacher text features.",
    );
    expect(() => resolveLossMethod('dsmd', o).loss({ ...x, imageQueue: undefined })).toThrow(
      "Loss method 'dsmd' needs the image queue.",
    );
    expect(() => resolveLossMethod('cd', o).loss({ ...x, textQueue: undefined })).toThrow(
      "Loss method 'cd' needs the text queue.",
    );
    // Without cd no queue is needed.
    expect(
      Object.keys(resolveLossMethod('fd,hnd', o).loss({ ...x, imageQueue: undefined, textQueue: undefined })),
    ).toEqual(['l1_loss', 'hnd_loss']);
  });

  it('DSMD component lists: aliases, order, duplicates, margins and reductions', () => {
    const x = inputs();
    const l = resolveLossMethod(' con , l1,cos,hnd,cd ', o);
    expect(l.name).toBe('con,l1,cos,hnd,cd');
    expect(l.components).toEqual(['l1_loss', 'cos_loss', 'con_loss', 'hnd_loss']);
    expect(l.description).toBe('DSMD components cd, fd, sd, hnd (paper mode)');
    expect(l.defaultBalancer).toBe('dsmd-paper');
    expect(l.needsTeacher).toBe(true);
    expect(resolveLossMethod('sd', o).components).toEqual(['cos_loss']);
    // paper mode: hardest negative, margin 0; official: sum, margin 0.2; both overridable.
    const hnd = (margin: number, reduction: 'sum' | 'max') =>
      hardNegativeDistill(s(), t(), margin, reduction).total.dataSync()[0];
    expect(values(resolveLossMethod('hnd', o).loss(x)).hnd_loss).toBeCloseTo(hnd(0, 'max'), 6);
    expect(values(resolveLossMethod('dsmd-official', o).loss(x)).hnd_loss).toBeCloseTo(hnd(0.2, 'sum'), 6);
    expect(values(resolveLossMethod('dsmd', { ...o, margin: 0.3, hardNegative: 'sum' }).loss(x)).hnd_loss).toBeCloseTo(
      hnd(0.3, 'sum'),
      6,
    );
    expect(hnd(0.3, 'sum')).not.toBeCloseTo(hnd(0, 'max'), 3);
    expect(hnd(0.2, 'sum')).not.toBeCloseTo(hnd(0, 'max'), 3);
  });

  it('describes every method (the --losses help)', () => {
    expect(Object.keys(METHOD_DESCRIPTIONS)).toEqual([...METHOD_NAMES, 'cd,fd,sd,hnd']);
    expect(METHOD_DESCRIPTIONS).toEqual({
      dsmd: expect.stringMatching(/^DSMD, paper mode: .*margin 0\), dsmd-paper balancer$/),
      'dsmd-official': expect.stringMatching(/^DSMD, official code: .*margin 0.2\), dsmd-official balancer$/),
      dcd: expect.stringMatching(/^DCD for dual encoders/),
      kd: expect.stringMatching(/^KL between teacher and student/),
      fitnet: 'MSE feature hints',
      rkd: 'relational KD: distance + angle',
      'clip-kd': expect.stringMatching(/^feature MSE \+ interactive contrastive/),
      none: expect.stringMatching(/^no teacher: the student's own symmetric contrastive loss/),
      'cd,fd,sd,hnd': expect.stringMatching(/^any comma list of DSMD components/),
    });
  });

  it('graph feeds say which input is missing too', () => {
    const host = { batch: 3, dim: 2 };
    const teacher = { teacherImage: new Float32Array(6), teacherText: new Float32Array(6) };
    expect(() => resolveLossMethod('dsmd', o).feeds(host)).toThrow("Loss method 'dsmd' needs teacher image features.");
    expect(() => resolveLossMethod('dsmd', o).feeds({ ...host, teacherImage: new Float32Array(6) })).toThrow(
      "Loss method 'dsmd' needs teacher text features.",
    );
    expect(() => resolveLossMethod('cd', o).feeds({ ...host, ...teacher })).toThrow(
      "Loss method 'cd' needs the image queue.",
    );
    expect(() => resolveLossMethod('cd', o).feeds({ ...host, ...teacher, imageQueue: new Float32Array(8) })).toThrow(
      "Loss method 'cd' needs the text queue.",
    );
    expect(() => resolveLossMethod('dcd', o).feeds(host)).toThrow("Loss method 'dcd' needs teacher image features.");
    // DCD's own inputs are computed from the teacher rows, and say so when asked without them.
    expect(() => resolveLossMethod('dcd', o).extraValues(host)).toThrow(
      "Loss method 'dcd' needs teacher image features.",
    );
    expect(() => resolveLossMethod('dcd', o).extraValues({ ...host, teacherImage: new Float32Array(6) })).toThrow(
      "Loss method 'dcd' needs teacher text features.",
    );
    // A queue method's graph needs the queue size.
    const g = new Graph();
    expect(() =>
      resolveLossMethod('cd', o).graph(g, { image: g.input('si', [3, 2]), text: g.input('st', [3, 2]) }, host),
    ).toThrow("Loss method 'cd' needs the queue size.");
    // Feeds carry exactly the declared inputs: teacher rows, queues ([K, D] from the array length), extra inputs.
    const f = resolveLossMethod('cd', o).feeds({
      ...host,
      ...teacher,
      imageQueue: new Float32Array(8),
      textQueue: new Float32Array(8),
    });
    expect(Object.fromEntries(Object.entries(f).map(([k, v]) => [k, v.dims]))).toEqual({
      teacher_image: [3, 2],
      teacher_text: [3, 2],
      image_queue: [4, 2],
      text_queue: [4, 2],
    });
    const none = resolveLossMethod('none', o).feeds({ ...host, imageIds: [0, 0, 1] });
    expect(Object.keys(none)).toEqual(['targets']);
    expect(Array.from(none.targets.data as Float32Array)).toEqual([0.5, 0.5, 0, 0.5, 0.5, 0, 0, 0, 1]);
    expect(resolveLossMethod('none', o).extraInputs({ batch: 3, dim: 2 })).toEqual([
      { name: 'targets', shape: [3, 3], dtype: 'float32' },
    ]);
    expect(resolveLossMethod('kd', o).extraInputs({ batch: 3, dim: 2 })).toEqual([]);
  });

  it('empty entries of a component list are ignored', () => {
    expect(resolveLossMethod('cd,', o).components).toEqual(['con_loss']);
    expect(resolveLossMethod(',hnd,,', o).name).toBe('hnd');
  });

  it('unknown methods list the choices', () => {
    const msg = `Use one of ${METHOD_NAMES.join(', ')}, or a comma list of DSMD components (cd, fd, sd, hnd).`;
    expect(METHOD_NAMES).toEqual(['dsmd', 'dsmd-official', 'dcd', 'kd', 'fitnet', 'rkd', 'clip-kd', 'none']);
    expect(() => resolveLossMethod('', o)).toThrow(`Unknown loss method ''. ${msg}`);
    expect(() => resolveLossMethod(' , ', o)).toThrow(`Unknown loss method ' , '.`);
    expect(() => resolveLossMethod('kd,cd', o)).toThrow(`Unknown loss method 'kd,cd'.`);
  });

  it('register binds every method under TOKENS.LossRegistry, with temperature 0.05 by default, and a pattern entry for component lists', async () => {
    const c = createContainer();
    register(c);
    register(c);
    const reg = registryOf<LossMethodOptions, LossMethod>(c, TOKENS.LossRegistry, 'loss');
    expect(reg.names()).toEqual([...METHOD_NAMES, COMPONENT_LIST_ENTRY]);
    expect(reg.names()).toEqual(LOSS_ENTRIES.map((e) => e.name));
    expect(reg.get('kd').description).toBe(METHOD_DESCRIPTIONS.kd);
    expect(reg.get('kd').defaults).toEqual({ temperature: 0.05 });
    const kd = await reg.create('kd', {}, { container: c });
    expect(kd.loss(inputs()).kd.dataSync()[0]).toBeCloseTo(kdLoss(s(), t(), 0.05).dataSync()[0], 5);
    const kd2 = await reg.create('kd', { temperature: 0.5 }, { container: c });
    expect(kd2.loss(inputs()).kd.dataSync()[0]).toBeCloseTo(kdLoss(s(), t(), 0.5).dataSync()[0], 5);
    // The component-list entry is a pattern entry: it accepts any comma list and resolves the name it was chosen for.
    const pattern = reg.get(COMPONENT_LIST_ENTRY) as (typeof LOSS_ENTRIES)[number];
    expect(['cd,hnd', ' hnd, cd ', 'kd,cd', 'dsmd'].map((n) => pattern.matches?.(n))).toEqual([
      true,
      true,
      false,
      false,
    ]);
    const ablation = await pattern.create({ temperature: 0.05 }, { container: c, name: ' hnd, cd ' } as never);
    expect([ablation.name, ablation.components]).toEqual(['hnd,cd', ['con_loss', 'hnd_loss']]);
    expect((await pattern.create({ temperature: 0.05 }, { container: c })).components).toEqual([
      'l1_loss',
      'cos_loss',
      'con_loss',
      'hnd_loss',
    ]);
    expect(() => reg.get('xx')).toThrow(/^Unknown loss 'xx'/);
    await expect(reg.create('dsmd', { temperature: 0 }, { container: c })).rejects.toThrow(
      /^Loss options: temperature must be a positive number, got 0.$/,
    );
  });

  it('component lists are told apart from method names', () => {
    expect(['cd', 'cd,hnd', ' fd , sd ', 'l1,cos,con,hnd', 'cd,'].map(isComponentList)).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
    for (const name of METHOD_NAMES) expect(isComponentList(name)).toBe(false);
    expect(['dsmd', 'kd', 'kd,cd', '', ' , ', 'cd,xx'].map(isComponentList)).toEqual([
      false,
      false,
      false,
      false,
      false,
      false,
    ]);
  });

  it('the loss config is checked, one line per mistake', () => {
    expect(checkLossOptions({ temperature: 0.1, hardNegative: 'sum' })).toEqual({
      temperature: 0.1,
      hardNegative: 'sum',
    });
    expect(() => checkLossOptions({ temperature: '0.1' as never })).toThrow(
      'Loss options: temperature must be a positive number, got 0.1.',
    );
    expect(
      checkLossOptions({
        temperature: 0.1,
        margin: 0.3,
        hardNegative: 'max',
        dcd: { topK: 4, temperature: 2, alpha: 0.5 },
      }),
    ).toEqual({ temperature: 0.1, margin: 0.3, hardNegative: 'max', dcd: { topK: 4, temperature: 2, alpha: 0.5 } });
    const bad = (x: Partial<LossMethodOptions>) => () =>
      checkLossOptions({ temperature: 0.1, ...x } as LossMethodOptions);
    expect(bad({ temperature: -1 })).toThrow('Loss options: temperature must be a positive number, got -1.');
    expect(bad({ temperature: Number.POSITIVE_INFINITY })).toThrow(
      /temperature must be a positive number, got Infinity/,
    );
    expect(bad({ margin: Number.NaN })).toThrow('Loss options: margin must be a number, got NaN.');
    expect(bad({ hardNegative: 'mean' as never })).toThrow(
      "Loss options: hardNegative must be 'sum' or 'max', got 'mean'.",
    );
    expect(bad({ dcd: { topK: 1 } })).toThrow('Loss options: dcd.topK must be an integer >= 2, got 1.');
    expect(bad({ dcd: { topK: 2.5 } })).toThrow(/dcd.topK must be an integer >= 2, got 2.5/);
    expect(bad({ dcd: { temperature: 0 } })).toThrow('Loss options: dcd.temperature must be positive, got 0.');
    expect(bad({ dcd: { alpha: 1.5 } })).toThrow('Loss options: dcd.alpha must be in [0, 1], got 1.5.');
    expect(bad({ dcd: { alpha: -0.1 } })).toThrow(/got -0.1/);
    expect(bad({ dcd: { topK: 2, alpha: 0, temperature: 1 } })).not.toThrow();
    expect(bad({ margin: 0, dcd: { alpha: 1 } })).not.toThrow();
  });

  it('DCD options reach the loss', () => {
    const rand = (seed: number) => l2n(tf.tensor2d(new Rng(seed).normalArray(40), [10, 4]));
    const big = { studentImage: rand(1), studentText: rand(2), teacherImage: rand(3), teacherText: rand(4) };
    const base = resolveLossMethod('dcd', o).loss(big).dcd.dataSync()[0];
    const alt = resolveLossMethod('dcd', { ...o, dcd: { alpha: 0.9, topK: 4 } })
      .loss(big)
      .dcd.dataSync()[0];
    const ref = dcdDualEncoder(
      { image: big.studentImage, text: big.studentText },
      { image: big.teacherImage, text: big.teacherText },
      { ...DCD_DEFAULTS, alpha: 0.9, topK: 4, scoreTemperature: 0.5 },
    ).dataSync()[0];
    expect(alt).toBeCloseTo(ref, 6);
    expect(alt).not.toBeCloseTo(base, 3);
  });
});
