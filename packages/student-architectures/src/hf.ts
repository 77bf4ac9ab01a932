import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DistillError, readSafetensors, type SafeTensor } from '@distill/core';
import { createBert, type BertConfig } from './bert.js';
import type { Encoder } from './encoder.js';
import type { HiddenAct } from './ops.js';
import { fromHf, hfShape, type WeightProblem, weightProblemMessage } from './params.js';
import { createVit, type VitConfig } from './vit.js';

/** A Hugging Face config.json (only the fields distill reads). */
export type HfConfig = Record<string, unknown> & { model_type?: string };

export const HF_MODEL_TYPES = ['vit', 'deit', 'bert', 'albert'] as const;

export function readHfConfig(dir: string): HfConfig {
  const path = join(dir, 'config.json');
  if (!existsSync(path))
    throw new DistillError(
      `${dir} has no config.json: expected a Hugging Face save_pretrained folder (config.json + model.safetensors).`,
      2,
    );
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as HfConfig;
  } catch (e) {
    throw new DistillError(
      `${path} is not valid JSON (${(e as Error).message}): expected the config.json of a Hugging Face save_pretrained folder.`,
      2,
    );
  }
}

const num = (c: HfConfig, k: string, d?: number): number => {
  const v = c[k] ?? d;
  if (typeof v !== 'number') throw new DistillError(`config.json lacks numeric '${k}'.`, 2);
  return v;
};

/** Map an HF config.json to distill's encoder config. */
export function vitConfigFromHf(c: HfConfig): Partial<VitConfig> {
  return {
    imageSize: num(c, 'image_size'),
    patchSize: num(c, 'patch_size'),
    numChannels: num(c, 'num_channels', 3),
    hiddenSize: num(c, 'hidden_size'),
    numHiddenLayers: num(c, 'num_hidden_layers'),
    numAttentionHeads: num(c, 'num_attention_heads'),
    intermediateSize: num(c, 'intermediate_size'),
    hiddenAct: (c.hidden_act as HiddenAct) ?? 'gelu',
    layerNormEps: num(c, 'layer_norm_eps', 1e-12),
    qkvBias: (c.qkv_bias as boolean) ?? true,
    distillationToken: c.model_type === 'deit',
    poolerAct: (c.pooler_act as HiddenAct) ?? 'tanh',
    hiddenDropout: num(c, 'hidden_dropout_prob', 0),
    attentionDropout: num(c, 'attention_probs_dropout_prob', 0),
    initializerRange: num(c, 'initializer_range', 0.02),
  };
}

export function bertConfigFromHf(c: HfConfig): Partial<BertConfig> {
  const base: Partial<BertConfig> = {
    vocabSize: num(c, 'vocab_size'),
    hiddenSize: num(c, 'hidden_size'),
    numHiddenLayers: num(c, 'num_hidden_layers'),
    numAttentionHeads: num(c, 'num_attention_heads'),
    intermediateSize: num(c, 'intermediate_size'),
    hiddenAct: (c.hidden_act as HiddenAct) ?? 'gelu',
    layerNormEps: num(c, 'layer_norm_eps', 1e-12),
    maxPositionEmbeddings: num(c, 'max_position_embeddings', 512),
    typeVocabSize: num(c, 'type_vocab_size', 2),
    hiddenDropout: num(c, 'hidden_dropout_prob', 0.1),
    attentionDropout: num(c, 'attention_probs_dropout_prob', 0.1),
    initializerRange: num(c, 'initializer_range', 0.02),
  };
  if (c.model_type === 'albert') {
    base.albert = {
      embeddingSize: num(c, 'embedding_size'),
      numHiddenGroups: num(c, 'num_hidden_groups', 1),
      innerGroupNum: num(c, 'inner_group_num', 1),
    };
  }
  if (c.position_embedding_type && c.position_embedding_type !== 'absolute') {
    throw new DistillError(
      `position_embedding_type '${String(c.position_embedding_type)}' is not supported (only 'absolute').`,
      2,
    );
  }
  return base;
}

/** Build the encoder an HF config describes; `overrides` (e.g. feature, addPooler) win. */
export function encoderFromHfConfig(c: HfConfig, overrides: Record<string, unknown> = {}): Encoder {
  switch (c.model_type) {
    case 'vit':
    case 'deit':
      return createVit({ ...vitConfigFromHf(c), ...overrides }) as Encoder;
    case 'bert':
    case 'albert':
      return createBert({ ...bertConfigFromHf(c), ...overrides }) as Encoder;
    default:
      throw new DistillError(
        `Unsupported model_type '${String(c.model_type)}' in config.json. Supported: ${HF_MODEL_TYPES.join(', ')}.`,
        2,
      );
  }
}

/**
 * Match checkpoint tensors (HF names, HF layouts) to an encoder's parameters and convert them.
 * A common head prefix (`vit.`, `bert.`, `albert.`, `deit.`) is stripped. Throws a DistillError
 * listing every missing, unexpected and mis-shaped weight.
 */
export function matchHfWeights(
  encoder: Encoder,
  tensors: Map<string, SafeTensor>,
  where: string,
): Map<string, Float32Array> {
  const specs = encoder.specs();
  const wanted = new Set(specs.map((s) => s.name));
  const byName = new Map<string, SafeTensor>();
  for (const [k, v] of tensors) {
    let name = k;
    for (const pre of ['vit.', 'deit.', 'bert.', 'albert.', 'model.']) {
      if (name.startsWith(pre) && wanted.has(name.slice(pre.length))) name = name.slice(pre.length);
    }
    byName.set(name, v);
  }
  const problem: WeightProblem = { missing: [], unexpected: [], misShaped: [] };
  const out = new Map<string, Float32Array>();
  for (const s of specs) {
    const t = byName.get(s.name);
    if (!t) {
      problem.missing.push(s.name);
      continue;
    }
    const want = hfShape(s);
    if (want.length !== t.shape.length || want.some((d, i) => d !== t.shape[i])) {
      problem.misShaped.push({ name: s.name, expected: want, got: t.shape });
      continue;
    }
    out.set(s.name, fromHf(s, t.data));
  }
  for (const k of byName.keys()) if (!wanted.has(k) && !encoder.ignorable?.(k)) problem.unexpected.push(k);
  if (problem.missing.length || problem.unexpected.length || problem.misShaped.length) {
    throw new DistillError(
      weightProblemMessage(
        `Checkpoint ${where}`,
        problem,
        `Check that config.json describes these weights (model_type '${encoder.type}').`,
      ),
      2,
    );
  }
  return out;
}

/** Load a `save_pretrained` folder: its config, the encoder it describes, and converted weights. */
export function loadHfEncoder(
  dir: string,
  overrides: Record<string, unknown> = {},
): { config: HfConfig; encoder: Encoder; values: Map<string, Float32Array> } {
  const config = readHfConfig(dir);
  const encoder = encoderFromHfConfig(config, overrides);
  const path = join(dir, 'model.safetensors');
  if (!existsSync(path))
    throw new DistillError(
      `${dir} has no model.safetensors (PyTorch .bin checkpoints are not supported: re-save with safe_serialization=True).`,
      2,
    );
  const values = matchHfWeights(encoder, readSafetensors(path), path);
  return { config, encoder, values };
}
