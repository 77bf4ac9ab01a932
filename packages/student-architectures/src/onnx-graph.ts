/**
 * The transformer students (ViT/DeiT + BERT/ALBERT) written for the onnx engine's graph builder:
 * the same math as vit.ts / bert.ts / ops.ts, parameter for parameter, so one set of weights runs
 * in either engine (ResNet and TextCNN too: the graph works in NCHW and transposes the NHWC /
 * [kh, kw, in, out] weights, differentiably). Dropout sites call `drop(x, rate)`, which the caller implements (the
 * engine multiplies by seeded masks fed as inputs); without it dropout is off.
 */
import { type Sym, onnxOps as op } from '@distill/core';
import type { BertConfig } from './bert.js';
import type { HiddenAct } from './ops.js';
import type { ResNetConfig } from './resnet.js';
import type { TextCnnConfig } from './textcnn.js';
import type { VitConfig } from './vit.js';

export type SymParams = Record<string, Sym>;
/** Dropout at one site: returns x with dropout `rate` applied (identity when rate is 0). */
export type DropFn = (x: Sym, rate: number) => Sym;
const noDrop: DropFn = (x) => x;

/** Hidden activations, as ops.ts's `activation`. */
export function activationGraph(x: Sym, act: HiddenAct): Sym {
  switch (act) {
    case 'gelu':
      return op.geluErf(x); // 0.5 x (1 + erf(x / sqrt 2))
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
      return op.geluTanh(x); // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    case 'quick_gelu':
      return op.mul(x, op.sigmoid(op.scale(x, 1.702))); // x sigmoid(1.702 x)
    case 'relu':
      return op.relu(x);
    case 'tanh':
      return op.tanh(x);
  }
}

/** Multi-head attention core on [B, L, D] q, k, v with an optional additive [B, 1, 1, L] mask; returns [B, L, D]. */
export function attentionGraph(q: Sym, k: Sym, v: Sym, heads: number, maskAdd?: Sym, dropProbs: (x: Sym) => Sym = (x) => x): Sym {
  const [B, L, D] = q.shape;
  const dh = D / heads;
  const qh = op.transpose(op.reshape(q, [B, L, heads, dh]), [0, 2, 1, 3]);
  const kt = op.transpose(op.reshape(k, [B, L, heads, dh]), [0, 2, 3, 1]);
  const vh = op.transpose(op.reshape(v, [B, L, heads, dh]), [0, 2, 1, 3]);
  let scores = op.matmul(op.scale(qh, 1 / Math.sqrt(dh)), kt); // softmax(q k^T / sqrt(dh) + mask)
  if (maskAdd) scores = op.add(scores, maskAdd);
  const ctx = op.matmul(dropProbs(op.softmax(scores)), vh);
  return op.reshape(op.transpose(ctx, [0, 2, 1, 3]), [B, L, D]);
}

const lin = (p: SymParams, name: string, x: Sym) => op.linear(x, p[`${name}.weight`], p[`${name}.bias`]);
const ln = (p: SymParams, name: string, x: Sym, eps: number) => op.layerNorm(x, p[`${name}.weight`], p[`${name}.bias`], eps);

/** Non-overlapping P x P patches of NCHW pixels -> [B * gh * gw, C * P * P] (patchify in vit.ts). */
function patchesOf(pixels: Sym, P: number): { patches: Sym; gh: number; gw: number } {
  const [B, C, H, W] = pixels.shape;
  const gh = H / P;
  const gw = W / P;
  const t = op.transpose(op.reshape(pixels, [B * C, gh, P, gw, P]), [0, 1, 3, 2, 4]);
  return { patches: op.reshape(op.transpose(op.reshape(t, [B, C, gh * gw, P * P]), [0, 2, 1, 3]), [B * gh * gw, C * P * P]), gh, gw };
}

/** A 'same' convolution (TensorFlow padding) of NCHW x with a distill-layout [kh, kw, in, out] weight. */
function convSame(x: Sym, w: Sym, b: Sym | undefined, stride: number): Sym {
  const [kh, kw] = w.shape;
  const [pt, pb] = op.samePads(x.shape[2], kh, stride);
  const [pl, pr] = op.samePads(x.shape[3], kw, stride);
  return op.conv2d(x, op.transpose(w, [3, 2, 0, 1]), b, stride, [pt, pl, pb, pr]);
}

/** ResNet-style CNN features (resnet.ts): patchify stem, residual blocks x = relu(shortcut(x) + alpha F(x)), LN(global mean). */
export function resnetGraph(p: SymParams, c: ResNetConfig, pixels: Sym): Sym {
  const B = pixels.shape[0];
  const { patches, gh, gw } = patchesOf(pixels, c.stemPatch);
  const stem = op.relu(op.linear(patches, p['stem.weight'], p['stem.bias']));
  let x = op.transpose(op.reshape(stem, [B, gh, gw, c.stemChannels]), [0, 3, 1, 2]); // NCHW from here on
  c.stageChannels.forEach((_, si) => {
    for (let b = 0; b < c.blocksPerStage[si]; b++) {
      const q = `stages.${si}.blocks.${b}`;
      const stride = b === 0 && si > 0 ? 2 : 1;
      const conv = (name: string, inp: Sym, s: number) => convSame(inp, p[`${name}.weight`], p[`${name}.bias`], s);
      const y = conv(`${q}.conv2`, op.relu(conv(`${q}.conv1`, x, stride)), 1);
      const short = p[`${q}.shortcut.weight`] ? conv(`${q}.shortcut`, x, stride) : x;
      x = op.relu(op.add(short, op.mul(y, p[`${q}.scale`])));
    }
  });
  const pooled = op.reduceMean(x, [2, 3]);
  return op.layerNorm(pooled, p['norm.weight'], p['norm.bias'], c.layerNormEps);
}

/** TextCNN features (textcnn.ts): h_w = max_t relu(conv_w(x))_t over real tokens, concatenated over widths. */
export function textCnnGraph(p: SymParams, c: TextCnnConfig, ids: Sym, mask: Sym, drop: DropFn = noDrop): Sym {
  const g = ids.graph;
  const [B, L] = ids.shape;
  const m = op.reshape(mask, [B, L, 1]);
  const x = drop(op.mul(op.gather(p['embeddings.word_embeddings.weight'], ids), m), c.dropout);
  const xc = op.reshape(op.transpose(x, [0, 2, 1]), [B, c.embeddingSize, 1, L]); // NCHW with H = 1
  const neg = op.reshape(op.scale(op.sub(mask, g.scalar(1)), 1e4), [B, 1, L]); // 0 on tokens, -1e4 on padding
  const pooled = c.kernelWidths.map((w) => {
    const wt = op.reshape(p[`convs.${w}.weight`], [1, w, c.embeddingSize, c.filters]);
    const y = op.relu(convSame(xc, wt, p[`convs.${w}.bias`], 1)); // [B, F, 1, L]
    return op.reduceMax(op.add(op.reshape(y, [B, c.filters, L]), neg), [2]);
  });
  return op.concat(pooled, 1);
}

/** ViT / DeiT features from NCHW pixels [B, C, H, W] (a data input). */
export function vitGraph(p: SymParams, c: VitConfig, pixels: Sym, drop: DropFn = noDrop): Sym {
  const B = pixels.shape[0];
  const D = c.hiddenSize;
  const { patches, gh, gw } = patchesOf(pixels, c.patchSize);
  const emb = op.reshape(lin(p, 'embeddings.patch_embeddings.projection', patches), [B, gh * gw, D]);
  const toks = [op.expand(p['embeddings.cls_token'], [B, 1, D])];
  if (c.distillationToken) toks.push(op.expand(p['embeddings.distillation_token'], [B, 1, D]));
  let h = drop(op.add(op.concat([...toks, emb], 1), p['embeddings.position_embeddings']), c.hiddenDropout);
  const dropProbs = (x: Sym) => drop(x, c.attentionDropout);
  for (let l = 0; l < c.numHiddenLayers; l++) {
    const q = `encoder.layer.${l}`;
    const a = `${q}.attention.attention`;
    const x = ln(p, `${q}.layernorm_before`, h, c.layerNormEps);
    const ctx = attentionGraph(lin(p, `${a}.query`, x), lin(p, `${a}.key`, x), lin(p, `${a}.value`, x), c.numAttentionHeads, undefined, dropProbs);
    h = op.add(h, drop(lin(p, `${q}.attention.output.dense`, ctx), c.hiddenDropout));
    const y = ln(p, `${q}.layernorm_after`, h, c.layerNormEps);
    h = op.add(h, drop(lin(p, `${q}.output.dense`, activationGraph(lin(p, `${q}.intermediate.dense`, y), c.hiddenAct)), c.hiddenDropout));
  }
  const last = ln(p, 'layernorm', h, c.layerNormEps);
  const cls = op.reshape(op.sliceAxis(last, 1, 0, 1), [B, D]);
  if (c.feature === 'pooler') return activationGraph(lin(p, 'pooler.dense', cls), c.poolerAct);
  if (c.feature === 'cls-dist') return op.reduceMean(op.sliceAxis(last, 1, 0, 2), [1]);
  return cls;
}

/** BERT / ALBERT features from int64 ids [B, L] and a float 1/0 mask [B, L] (data inputs). */
export function bertGraph(p: SymParams, c: BertConfig, ids: Sym, mask: Sym, drop: DropFn = noDrop): Sym {
  const g = ids.graph;
  const [B, L] = ids.shape;
  const D = c.hiddenSize;
  const words = op.gather(p['embeddings.word_embeddings.weight'], ids);
  const pos = op.sliceAxis(p['embeddings.position_embeddings.weight'], 0, 0, L);
  const type0 = op.sliceAxis(p['embeddings.token_type_embeddings.weight'], 0, 0, 1);
  let h = drop(ln(p, 'embeddings.LayerNorm', op.add(op.add(words, pos), type0), c.layerNormEps), c.hiddenDropout);
  const dropProbs = (x: Sym) => drop(x, c.attentionDropout);
  const maskAdd = op.reshape(op.scale(op.sub(mask, g.scalar(1)), 1e9), [B, 1, 1, L]); // (1 - mask) * -1e9
  // post-LN: a = LN(h + Attn(h)); h = LN(a + FFN(a))
  const block = (n: string[]) => {
    const [qn, kn, vn, on, aln, fin, fon, oln] = n;
    const ctx = attentionGraph(lin(p, qn, h), lin(p, kn, h), lin(p, vn, h), c.numAttentionHeads, maskAdd, dropProbs);
    const a = ln(p, aln, op.add(h, drop(lin(p, on, ctx), c.hiddenDropout)), c.layerNormEps);
    h = ln(p, oln, op.add(a, drop(lin(p, fon, activationGraph(lin(p, fin, a), c.hiddenAct)), c.hiddenDropout)), c.layerNormEps);
  };
  if (c.albert) {
    h = lin(p, 'encoder.embedding_hidden_mapping_in', h);
    const { numHiddenGroups: G, innerGroupNum: I } = c.albert;
    for (let l = 0; l < c.numHiddenLayers; l++) {
      const gi = Math.floor(l / (c.numHiddenLayers / G));
      for (let i = 0; i < I; i++) {
        const q = `encoder.albert_layer_groups.${gi}.albert_layers.${i}`;
        block([`${q}.attention.query`, `${q}.attention.key`, `${q}.attention.value`, `${q}.attention.dense`, `${q}.attention.LayerNorm`, `${q}.ffn`, `${q}.ffn_output`, `${q}.full_layer_layer_norm`]);
      }
    }
  } else {
    for (let l = 0; l < c.numHiddenLayers; l++) {
      const q = `encoder.layer.${l}`;
      block([`${q}.attention.self.query`, `${q}.attention.self.key`, `${q}.attention.self.value`, `${q}.attention.output.dense`, `${q}.attention.output.LayerNorm`, `${q}.intermediate.dense`, `${q}.output.dense`, `${q}.output.LayerNorm`]);
    }
  }
  const cls = op.reshape(op.sliceAxis(h, 1, 0, 1), [B, D]);
  if (c.feature === 'cls') return cls;
  if (c.feature === 'mean') {
    const m = op.reshape(mask, [B, L, 1]);
    return op.div(op.reduceSum(op.mul(h, m), [1]), op.reduceSum(m, [1])); // sum(h m) / sum(m) (tfjs also clamps sum(m) at 1)
  }
  return op.tanh(lin(p, c.albert ? 'pooler' : 'pooler.dense', cls)); // pooler = tanh(W h_CLS + b)
}
