/**
 * The transformer students (ViT/DeiT + BERT/ALBERT) written for the onnx engine's graph builder:
 * the same math as vit.ts / bert.ts / ops.ts, parameter for parameter, so one set of weights runs
 * in either engine. ResNet and TextCNN towers, and dropout, are not written here: students that
 * need them train on tfjs (see `onnxSupport`).
 */
import { type Sym, onnxOps as op } from '@distill/core';
import type { BertConfig } from './bert.js';
import type { HiddenAct } from './ops.js';
import type { VitConfig } from './vit.js';

export type SymParams = Record<string, Sym>;

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
export function attentionGraph(q: Sym, k: Sym, v: Sym, heads: number, maskAdd?: Sym): Sym {
  const [B, L, D] = q.shape;
  const dh = D / heads;
  const qh = op.transpose(op.reshape(q, [B, L, heads, dh]), [0, 2, 1, 3]);
  const kt = op.transpose(op.reshape(k, [B, L, heads, dh]), [0, 2, 3, 1]);
  const vh = op.transpose(op.reshape(v, [B, L, heads, dh]), [0, 2, 1, 3]);
  let scores = op.matmul(op.scale(qh, 1 / Math.sqrt(dh)), kt); // softmax(q k^T / sqrt(dh) + mask)
  if (maskAdd) scores = op.add(scores, maskAdd);
  const ctx = op.matmul(op.softmax(scores), vh);
  return op.reshape(op.transpose(ctx, [0, 2, 1, 3]), [B, L, D]);
}

const lin = (p: SymParams, name: string, x: Sym) => op.linear(x, p[`${name}.weight`], p[`${name}.bias`]);
const ln = (p: SymParams, name: string, x: Sym, eps: number) => op.layerNorm(x, p[`${name}.weight`], p[`${name}.bias`], eps);

/** ViT / DeiT features from NCHW pixels [B, C, H, W] (a data input). */
export function vitGraph(p: SymParams, c: VitConfig, pixels: Sym): Sym {
  const [B, C, H, W] = pixels.shape;
  const P = c.patchSize;
  const gh = H / P;
  const gw = W / P;
  const D = c.hiddenSize;
  // non-overlapping patches, (c, y, x) inside, row-major patch order (as patchify in vit.ts)
  const t = op.transpose(op.reshape(pixels, [B * C, gh, P, gw, P]), [0, 1, 3, 2, 4]);
  const patches = op.reshape(op.transpose(op.reshape(t, [B, C, gh * gw, P * P]), [0, 2, 1, 3]), [B * gh * gw, C * P * P]);
  const emb = op.reshape(lin(p, 'embeddings.patch_embeddings.projection', patches), [B, gh * gw, D]);
  const toks = [op.expand(p['embeddings.cls_token'], [B, 1, D])];
  if (c.distillationToken) toks.push(op.expand(p['embeddings.distillation_token'], [B, 1, D]));
  let h = op.add(op.concat([...toks, emb], 1), p['embeddings.position_embeddings']);
  for (let l = 0; l < c.numHiddenLayers; l++) {
    const q = `encoder.layer.${l}`;
    const a = `${q}.attention.attention`;
    const x = ln(p, `${q}.layernorm_before`, h, c.layerNormEps);
    const ctx = attentionGraph(lin(p, `${a}.query`, x), lin(p, `${a}.key`, x), lin(p, `${a}.value`, x), c.numAttentionHeads);
    h = op.add(h, lin(p, `${q}.attention.output.dense`, ctx));
    const y = ln(p, `${q}.layernorm_after`, h, c.layerNormEps);
    h = op.add(h, lin(p, `${q}.output.dense`, activationGraph(lin(p, `${q}.intermediate.dense`, y), c.hiddenAct)));
  }
  const last = ln(p, 'layernorm', h, c.layerNormEps);
  const cls = op.reshape(op.sliceAxis(last, 1, 0, 1), [B, D]);
  if (c.feature === 'pooler') return activationGraph(lin(p, 'pooler.dense', cls), c.poolerAct);
  if (c.feature === 'cls-dist') return op.reduceMean(op.sliceAxis(last, 1, 0, 2), [1]);
  return cls;
}

/** BERT / ALBERT features from int64 ids [B, L] and a float 1/0 mask [B, L] (data inputs). */
export function bertGraph(p: SymParams, c: BertConfig, ids: Sym, mask: Sym): Sym {
  const g = ids.graph;
  const [B, L] = ids.shape;
  const D = c.hiddenSize;
  const words = op.gather(p['embeddings.word_embeddings.weight'], ids);
  const pos = op.sliceAxis(p['embeddings.position_embeddings.weight'], 0, 0, L);
  const type0 = op.sliceAxis(p['embeddings.token_type_embeddings.weight'], 0, 0, 1);
  let h = ln(p, 'embeddings.LayerNorm', op.add(op.add(words, pos), type0), c.layerNormEps);
  const maskAdd = op.reshape(op.scale(op.sub(mask, g.scalar(1)), 1e9), [B, 1, 1, L]); // (1 - mask) * -1e9
  // post-LN: a = LN(h + Attn(h)); h = LN(a + FFN(a))
  const block = (n: string[]) => {
    const [qn, kn, vn, on, aln, fin, fon, oln] = n;
    const ctx = attentionGraph(lin(p, qn, h), lin(p, kn, h), lin(p, vn, h), c.numAttentionHeads, maskAdd);
    const a = ln(p, aln, op.add(h, lin(p, on, ctx)), c.layerNormEps);
    h = ln(p, oln, op.add(a, lin(p, fon, activationGraph(lin(p, fin, a), c.hiddenAct))), c.layerNormEps);
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
