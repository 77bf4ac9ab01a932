/**
 * Dropout masks drawn on the device: a counter-based generator as an ONNX graph, so that a WebGPU
 * step uploads a few scalars instead of the masks (at vit-bert `base`, batch 64: 48.8M floats, 186 MiB
 * per step, and ~3 s of JS to draw them). Element e of site s at step t gets
 *   x = e * 0x9E3779B1 + key(seed, t, s)            (int32, wrapping)
 *   3 rounds, c = 0x85EBCA6B, 0xC2B2AE35, 0x27D4EB2F:  x = x + x / 2^16;  x = x (2x + 1);  x = x c
 *   u = x / 2^8  (a 24-bit value in (-2^23, 2^23));  mask = [u >= rate 2^24 - 2^23] / (1 - rate)
 * written with the ops WebGPU runs on int32 (Mul and Add wrap, Div truncates; `BitwiseXor`,
 * `BitShift` and casts from int64 have no WebGPU kernel, so a murmur-style xor-shift finaliser is
 * out): the division carries high bits down, x (2x + 1) (an invertible map mod 2^32) is the
 * non-linear step that xor gives murmur (shift-and-add alone stays nearly linear: the masks of two
 * steps were correlated, 0.0067 instead of rate^2 = 0.01), the odd multiplier spreads the low bits
 * up. int32 constants are built from exact float halves. The key
 * mixes (seed, step, site) on the host (`dropoutKey`). Every node runs on WebGPU and the CPU
 * provider computes the same bits (tested); the element index is built from per-axis ranges, so a
 * site may hold up to 2^31 elements.
 */
import { encodeModel, type NodeSpec, type TensorSpec } from '@distill/autodiff';
import type { DropoutSite } from './onnx-engine.js';

const CAST_INT32 = 6;
const ROUNDS = [0x85ebca6b, 0xc2b2ae35, 0x27d4eb2f];
const CAST_FLOAT = 1;

/** (seed, step, site) -> a 32-bit key (murmur3's fmix32 of a mix of the three), as the graph's two exact float halves. */
export function dropoutKey(seed: number, step: number, site: number): { hi: number; lo: number; key: number } {
  const fmix = (h: number) => {
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    return (h ^ (h >>> 16)) | 0;
  };
  const key = fmix(fmix(fmix(seed | 0) + Math.imul(step | 0, 0x27d4eb2f)) + Math.imul(site + 1, 0x165667b1));
  const lo = key & 0xffff;
  return { hi: (key - lo) / 65536, lo, key };
}

/** The hash of element indices as JS computes it (the reference for tests): u in (-2^23, 2^23). */
export function hashIndex(e: number, key: number): number {
  const div = (x: number, d: number) => Math.trunc(x / d);
  let x = (Math.imul(e, 0x9e3779b1) + key) | 0;
  for (const c of ROUNDS) {
    x = (x + div(x, 65536)) | 0;
    x = Math.imul(x, (2 * x + 1) | 0);
    x = Math.imul(x, c);
  }
  return div(x, 256);
}

/**
 * The mask graph of these sites: inputs `key_hi_<s>`, `key_lo_<s>` (float scalars, `dropoutKey`),
 * outputs the sites' masks by their names (float, 0 or 1/(1-rate)).
 */
export function buildDropoutMaskGraph(sites: readonly DropoutSite[]): Uint8Array {
  const nodes: NodeSpec[] = [];
  const inits: TensorSpec[] = [];
  let k = 0;
  const fresh = (p: string) => `${p}_${k++}`;
  const node = (op: string, inputs: string[], attrs?: NodeSpec['attrs']) => {
    const out = fresh(op.toLowerCase());
    nodes.push({ op, name: out, inputs, outputs: [out], ...(attrs ? { attrs } : {}) });
    return out;
  };
  const floatConst = (data: ArrayLike<number>, dims: number[]) => {
    const name = fresh('c');
    inits.push({ name, dtype: 'float32', dims, data: Float32Array.from(data) });
    return name;
  };
  const toInt = (x: string) => node('Cast', [x], { to: CAST_INT32 });
  const i65536 = toInt(floatConst([65536], []));
  /** An int32 constant from its two exact float halves. */
  const int32 = (v: number) => {
    const lo = v & 0xffff;
    return node('Add', [
      node('Mul', [toInt(floatConst([((v | 0) - lo) / 65536], [])), i65536]),
      toInt(floatConst([lo], [])),
    ]);
  };
  const G = int32(0x9e3779b1);
  const C = ROUNDS.map(int32);
  const [D16, D8, ONE] = [65536, 256, 1].map((d) => toInt(floatConst([d], [])));
  const ranges = new Map<string, string>();
  const outputs: string[] = [];
  sites.forEach((site, s) => {
    // element index: sum_d i_d * stride_d, from per-axis ranges (broadcast)
    let idx: string | undefined;
    let stride = 1;
    for (let d = site.shape.length - 1; d >= 0; d--) {
      const n = site.shape[d];
      const dims = site.shape.map((_, j) => (j === d ? n : 1));
      const key = `${dims.join('x')}*${stride}`;
      let r = ranges.get(key);
      if (!r) {
        r = toInt(
          floatConst(
            Float32Array.from({ length: n }, (_, i) => i),
            dims,
          ),
        );
        if (stride !== 1) r = node('Mul', [r, int32(stride)]);
        ranges.set(key, r);
      }
      idx = idx ? node('Add', [idx, r]) : r;
      stride *= n;
    }
    const hi = `key_hi_${s}`;
    const lo = `key_lo_${s}`;
    const key = node('Add', [node('Mul', [toInt(hi), i65536]), toInt(lo)]);
    let x = node('Add', [node('Mul', [idx!, G]), key]);
    for (const c of C) {
      x = node('Add', [x, node('Div', [x, D16])]);
      x = node('Mul', [x, node('Add', [node('Add', [x, x]), ONE])]);
      x = node('Mul', [x, c]);
    }
    const u = node('Cast', [node('Div', [x, D8])], { to: CAST_FLOAT });
    // mask = (1 - [u < t]) / (1 - rate) = [u >= t] / (1 - rate)  (Less has a WebGPU kernel)
    const dropped = node('Cast', [node('Less', [u, floatConst([site.rate * 2 ** 24 - 2 ** 23], [])])], {
      to: CAST_FLOAT,
    });
    const scale = 1 / (1 - site.rate);
    nodes.push({
      op: 'Add',
      name: `mask_${s}`,
      inputs: [node('Mul', [dropped, floatConst([-scale], [])]), floatConst([scale], [])],
      outputs: [site.name],
    });
    outputs.push(site.name);
  });
  return encodeModel({
    nodes,
    initializers: inits,
    inputs: sites.flatMap((_, s) =>
      [`key_hi_${s}`, `key_lo_${s}`].map((name) => ({ name, dtype: 'float32' as const, shape: [] })),
    ),
    outputs: sites.map((site) => ({ name: site.name, dtype: 'float32' as const, shape: site.shape })),
    opset: 20,
  });
}
