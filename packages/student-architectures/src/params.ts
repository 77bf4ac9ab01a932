import { DistillError, Rng, tf, type ParamGroup } from '@distill/core';

/** How a parameter is initialised when no checkpoint provides it. */
export type Init =
  | { kind: 'normal'; std: number }
  | { kind: 'zeros' }
  | { kind: 'ones' }
  | { kind: 'constant'; value: number }
  | { kind: 'uniform'; limit: number }
  | { kind: 'xavierNormal'; gain: number; fanIn: number; fanOut: number }
  | { kind: 'heNormal'; fanIn: number };

/**
 * A parameter of an encoder. `name` is the Hugging Face weight name where one exists; `shape` is
 * distill's layout; `hf` says how the checkpoint's tensor maps onto it.
 */
export interface ParamSpec {
  name: string;
  shape: number[];
  init: Init;
  /** 'linear': HF [out, in] -> [in, out]; 'conv2d': HF [out, in, kh, kw] -> [kh, kw, in, out]; 'conv1d': [out,in,k] -> [k,in,out]; default: same layout. */
  hf?: 'linear' | 'conv2d' | 'conv1d';
  /** The checkpoint's shape when it differs from what `hf` implies (e.g. a patch conv stored as a linear). */
  hfDims?: number[];
}

export function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function countParams(specs: ParamSpec[]): number {
  return specs.reduce((a, s) => a + sizeOf(s.shape), 0);
}

/** The checkpoint's shape for a spec. */
export function hfShape(s: ParamSpec): number[] {
  if (s.hfDims) return s.hfDims;
  const sh = s.shape;
  if (s.hf === 'linear') return [sh[1], sh[0]];
  if (s.hf === 'conv2d') return [sh[3], sh[2], sh[0], sh[1]];
  if (s.hf === 'conv1d') return [sh[2], sh[1], sh[0]];
  return sh;
}

/** Convert a checkpoint tensor (row-major, hfShape) into distill's layout. */
export function fromHf(s: ParamSpec, data: Float32Array): Float32Array {
  const sh = s.shape;
  if (s.hf === 'linear') {
    const [inD, outD] = sh;
    const out = new Float32Array(inD * outD);
    for (let o = 0; o < outD; o++) for (let i = 0; i < inD; i++) out[i * outD + o] = data[o * inD + i];
    return out;
  }
  if (s.hf === 'conv2d') {
    const [kh, kw, cin, cout] = sh;
    const out = new Float32Array(data.length);
    for (let o = 0; o < cout; o++)
      for (let c = 0; c < cin; c++)
        for (let y = 0; y < kh; y++)
          for (let x = 0; x < kw; x++)
            out[((y * kw + x) * cin + c) * cout + o] = data[((o * cin + c) * kh + y) * kw + x];
    return out;
  }
  if (s.hf === 'conv1d') {
    const [k, cin, cout] = sh;
    const out = new Float32Array(data.length);
    for (let o = 0; o < cout; o++)
      for (let c = 0; c < cin; c++)
        for (let x = 0; x < k; x++) out[(x * cin + c) * cout + o] = data[(o * cin + c) * k + x];
    return out;
  }
  return data;
}

export function initValues(s: ParamSpec, rng: Rng): Float32Array {
  const n = sizeOf(s.shape);
  const i = s.init;
  switch (i.kind) {
    case 'zeros':
      return new Float32Array(n);
    case 'ones':
      return new Float32Array(n).fill(1);
    case 'constant':
      return new Float32Array(n).fill(i.value);
    case 'normal':
      return rng.normalArray(n, 0, i.std);
    case 'uniform':
      return rng.uniformArray(n, -i.limit, i.limit);
    case 'xavierNormal':
      return rng.normalArray(n, 0, i.gain * Math.sqrt(2 / (i.fanIn + i.fanOut)));
    case 'heNormal':
      return rng.normalArray(n, 0, Math.sqrt(2 / i.fanIn));
  }
}

/** Spec helpers. */
export const P = {
  linear(name: string, inD: number, outD: number, std = 0.02, bias = true): ParamSpec[] {
    const w: ParamSpec = { name: `${name}.weight`, shape: [inD, outD], init: { kind: 'normal', std }, hf: 'linear' };
    return bias ? [w, { name: `${name}.bias`, shape: [outD], init: { kind: 'zeros' } }] : [w];
  },
  layerNorm(name: string, d: number): ParamSpec[] {
    return [
      { name: `${name}.weight`, shape: [d], init: { kind: 'ones' } },
      { name: `${name}.bias`, shape: [d], init: { kind: 'zeros' } },
    ];
  },
};

/** Named tensors of one encoder, as the forward pass reads them. */
export type Params = Record<string, tf.Tensor>;

export interface WeightProblem {
  missing: string[];
  unexpected: string[];
  misShaped: { name: string; expected: number[]; got: number[] }[];
}

/** Describe a failed weight match in one message naming every problem. */
export function weightProblemMessage(what: string, p: WeightProblem, hint: string): string {
  const parts: string[] = [];
  if (p.missing.length) parts.push(`missing ${p.missing.length}: ${p.missing.join(', ')}`);
  if (p.unexpected.length) parts.push(`unexpected ${p.unexpected.length}: ${p.unexpected.join(', ')}`);
  if (p.misShaped.length)
    parts.push(
      `mis-shaped ${p.misShaped.length}: ${p.misShaped.map((m) => `${m.name} (expected [${m.expected}], got [${m.got}])`).join(', ')}`,
    );
  return `${what} does not match the model: ${parts.join('; ')}. ${hint}`;
}

/** Create tf variables for specs: from `values` where given, else initialised from `rng`. */
export function createVariables(
  specs: ParamSpec[],
  prefix: string,
  group: ParamGroup,
  rng: Rng,
  values?: Map<string, Float32Array>,
) {
  return specs.map((s) => {
    const v = values?.get(s.name) ?? initValues(s, rng.fork(s.name));
    if (v.length !== sizeOf(s.shape))
      throw new DistillError(`Parameter ${s.name}: ${v.length} values for shape [${s.shape}].`, 2);
    return {
      spec: s,
      name: `${prefix}${s.name}`,
      group,
      variable: tf.variable(
        tf.tensor(v, s.shape, 'float32'),
        true,
        `${prefix}${s.name}`.replace(/[^A-Za-z0-9_.\-/]/g, '_') + `_${nextId()}`,
      ),
    };
  });
}

let idCounter = 0;
function nextId(): number {
  return ++idCounter;
}
