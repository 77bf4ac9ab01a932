/**
 * A minimal protobuf writer for the parts of onnx.proto that the graph builder emits:
 * ModelProto { ir_version, opset_import, graph }, GraphProto { node, initializer, input, output },
 * NodeProto with attributes, TensorProto (raw_data) and ValueInfoProto with static shapes.
 * Field numbers are those of https://github.com/onnx/onnx/blob/main/onnx/onnx.proto (no package needed).
 */

export type OnnxDType = 'float32' | 'float64' | 'int64' | 'int8';
const ELEM_TYPE: Record<OnnxDType, number> = { float32: 1, float64: 11, int64: 7, int8: 3 };

export type AttrValue = number | string | number[] | { floats: number[] } | { float: number };

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  name: string;
  attrs?: Record<string, AttrValue>;
  domain?: string;
}

export interface TensorSpec {
  name: string;
  dtype: OnnxDType;
  dims: number[];
  data: Float32Array | Float64Array | BigInt64Array | Int8Array;
}

export interface ValueSpec {
  name: string;
  dtype: OnnxDType;
  /** Static sizes, or names for symbolic dimensions (dim_param, e.g. 'batch'). */
  shape: (number | string)[];
}

export interface ModelSpec {
  nodes: NodeSpec[];
  initializers: TensorSpec[];
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  opset: number;
  name?: string;
}

class Writer {
  private chunks: Uint8Array[] = [];
  private size = 0;

  private push(b: Uint8Array): void {
    this.chunks.push(b);
    this.size += b.length;
  }

  private varint(v: number | bigint): void {
    let n = BigInt.asUintN(64, BigInt(v));
    const out: number[] = [];
    while (n > 127n) {
      out.push(Number(n & 127n) | 128);
      n >>= 7n;
    }
    out.push(Number(n));
    this.push(Uint8Array.from(out));
  }

  private key(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, v: number | bigint): this {
    this.key(field, 0);
    this.varint(v);
    return this;
  }

  float(field: number, v: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
    return this;
  }

  bytes(field: number, b: Uint8Array): this {
    this.key(field, 2);
    this.varint(b.length);
    this.push(b);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, w: Writer): this {
    return this.bytes(field, w.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

function tensorProto(t: TensorSpec): Writer {
  const w = new Writer();
  for (const d of t.dims) w.int(1, d);
  w.int(2, ELEM_TYPE[t.dtype]);
  w.string(8, t.name);
  w.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  return w;
}

function valueInfo(v: ValueSpec): Writer {
  const shape = new Writer();
  for (const d of v.shape) shape.message(1, typeof d === 'string' ? new Writer().string(2, d) : new Writer().int(1, d));
  const tensorType = new Writer().int(1, ELEM_TYPE[v.dtype]).message(2, shape);
  return new Writer().string(1, v.name).message(2, new Writer().message(1, tensorType));
}

// AttributeProto.AttributeType
const FLOAT = 1;
const INT = 2;
const STRING = 3;
const FLOATS = 6;
const INTS = 7;

function attribute(name: string, v: AttrValue): Writer {
  const w = new Writer().string(1, name);
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: ${v} is not an integer (use { float: x })`);
    w.int(3, v).int(20, INT);
  } else if (typeof v === 'string') w.string(4, v).int(20, STRING);
  else if (Array.isArray(v)) {
    for (const x of v) w.int(8, x);
    w.int(20, INTS);
  } else if ('floats' in v) {
    for (const x of v.floats) w.float(7, x);
    w.int(20, FLOATS);
  } else w.float(2, v.float).int(20, FLOAT);
  return w;
}

function nodeProto(n: NodeSpec): Writer {
  const w = new Writer();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name).string(4, n.op);
  for (const [k, v] of Object.entries(n.attrs ?? {})) w.message(5, attribute(k, v));
  if (n.domain) w.string(7, n.domain);
  return w;
}

/** Serialises a model (IR version 9) to the bytes onnxruntime's InferenceSession.create accepts. */
export function encodeModel(m: ModelSpec): Uint8Array {
  const g = new Writer();
  for (const n of m.nodes) g.message(1, nodeProto(n));
  g.string(2, m.name ?? 'distill');
  for (const t of m.initializers) g.message(5, tensorProto(t));
  for (const v of m.inputs) g.message(11, valueInfo(v));
  for (const v of m.outputs) g.message(12, valueInfo(v));
  const model = new Writer()
    .int(1, 9)
    .string(2, 'distill')
    .message(8, new Writer().string(1, '').int(2, m.opset))
    .message(7, g);
  return model.finish();
}
