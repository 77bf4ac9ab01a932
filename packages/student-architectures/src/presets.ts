import { ALBERT_DEFAULT_EXTRA, BERT_DEFAULTS, type BertConfig } from './bert.js';
import type { GloveTextConfig } from './glove-text.js';
import { MOBILENET_V2_DEFAULTS, type MobileNetV2TowerConfig } from './mobilenet.js';
import { RESNET_DEFAULTS, type ResNetConfig } from './resnet.js';
import { TEXTCNN_DEFAULTS, type TextCnnConfig } from './textcnn.js';
import { VIT_DEFAULTS, type VitConfig } from './vit.js';

export type ImageEncoderType = 'vit' | 'deit' | 'resnet' | 'mobilenet-v2' | 'mobilenet-v2-frozen';
export type TextEncoderType = 'bert' | 'albert' | 'textcnn' | 'glove';
export type PresetName = 'tiny' | 'small' | 'base';
export const PRESETS: PresetName[] = ['tiny', 'small', 'base'];

export interface PairDef {
  name: string;
  description: string;
  image: ImageEncoderType;
  text: TextEncoderType;
}

/** The registered student pairs (image tower + text tower). */
export const PAIRS: PairDef[] = [
  {
    name: 'vit-bert',
    image: 'vit',
    text: 'bert',
    description: 'ViT image encoder (CLS) + BERT text encoder (pooler): the DSMD student',
  },
  {
    name: 'deit-albert',
    image: 'deit',
    text: 'albert',
    description: 'DeiT image encoder (mean of CLS and distillation tokens) + ALBERT text encoder (shared layers)',
  },
  {
    name: 'resnet-bert',
    image: 'resnet',
    text: 'bert',
    description: 'ResNet-style CNN (global pooling) + BERT text encoder',
  },
  {
    name: 'vit-textcnn',
    image: 'vit',
    text: 'textcnn',
    description: 'ViT image encoder + TextCNN (transformer-free) text encoder',
  },
  {
    name: 'resnet-textcnn',
    image: 'resnet',
    text: 'textcnn',
    description: 'ResNet-style CNN + TextCNN: no attention at all',
  },
  {
    name: 'mobilenet-bert',
    image: 'mobilenet-v2',
    text: 'bert',
    description:
      'MobileNetV2 truncated to its first inverted-residual blocks (ImageNet weights with --image-init mobilenetv2) + BERT text encoder',
  },
  {
    name: 'mobilenet-glove',
    image: 'mobilenet-v2-frozen',
    text: 'glove',
    description:
      "pretrained and frozen: MobileNetV2 ImageNet trunk + GloVe word vectors (words never seen in training still mean something), trained heads on both; teacher v3's family at a lower resolution",
  },
  {
    name: 'vit-glove',
    image: 'vit',
    text: 'glove',
    description: 'ViT image encoder from scratch + frozen GloVe word vectors under a trained pooling head',
  },
];

export type ImageConfigOf = {
  vit: VitConfig;
  deit: VitConfig;
  resnet: ResNetConfig;
  'mobilenet-v2': MobileNetV2TowerConfig;
  'mobilenet-v2-frozen': MobileNetV2TowerConfig;
};
export type TextConfigOf = {
  bert: BertConfig;
  albert: BertConfig;
  textcnn: TextCnnConfig;
  glove: Omit<GloveTextConfig, 'vocabSize'>;
};

const NO_DROPOUT = { hiddenDropout: 0, attentionDropout: 0 };

/**
 * Size presets. tiny: trains in minutes on 2 CPU cores with tfjs-wasm (64-px images as 4x4 patches of 16 px
 * = 17 tokens, 2 layers, dim 64);
 * small: a few M parameters per tower; base: the paper's size (ViT-B/16 224 px + BERT-base).
 */
/**
 * MobileNetV2 (`mobilenet-bert`): the converted network cut after an inverted-residual block, at a low
 * resolution (glyphs are small drawings): tiny = 64 px through block 5 (the 32-channel stage, an 8 x 8 map),
 * small = 96 px through block 9 (the 64-channel stage, 6 x 6); base = the whole trunk at 224 px (1280-d).
 * Frozen MobileNetV2 (`mobilenet-glove`): the trunk through block 12 (the last block that keeps ImageNet's
 * generality; teacher v3's layer) under a trained LayerNorm + linear + GELU head: tiny = 32 px (a 1 x 1 map;
 * 5x faster than teacher v3's 96 px) and a 256-wide head, small = 64 px (the glyphs' own size) and 256,
 * base = 96 px (teacher v3's trunk) and 512.
 */
export const IMAGE_PRESETS: Record<PresetName, ImageConfigOf> = {
  tiny: {
    vit: {
      ...VIT_DEFAULTS,
      imageSize: 64,
      patchSize: 16,
      hiddenSize: 64,
      numHiddenLayers: 2,
      numAttentionHeads: 2,
      intermediateSize: 128,
    },
    deit: {
      ...VIT_DEFAULTS,
      imageSize: 64,
      patchSize: 16,
      hiddenSize: 64,
      numHiddenLayers: 2,
      numAttentionHeads: 2,
      intermediateSize: 128,
      distillationToken: true,
      feature: 'cls-dist',
    },
    resnet: {
      ...RESNET_DEFAULTS,
      imageSize: 64,
      stemChannels: 16,
      stemPatch: 4,
      stageChannels: [16, 32, 64],
      blocksPerStage: [1, 1, 1],
    },
    'mobilenet-v2': { ...MOBILENET_V2_DEFAULTS, imageSize: 64, layer: 'block_5' },
    'mobilenet-v2-frozen': { ...MOBILENET_V2_DEFAULTS, imageSize: 32, layer: 'block_12', frozen: true, hidden: 256 },
  },
  small: {
    vit: {
      ...VIT_DEFAULTS,
      imageSize: 64,
      patchSize: 8,
      hiddenSize: 256,
      numHiddenLayers: 4,
      numAttentionHeads: 4,
      intermediateSize: 1024,
    },
    deit: {
      ...VIT_DEFAULTS,
      imageSize: 64,
      patchSize: 8,
      hiddenSize: 256,
      numHiddenLayers: 4,
      numAttentionHeads: 4,
      intermediateSize: 1024,
      distillationToken: true,
      feature: 'cls-dist',
    },
    resnet: {
      ...RESNET_DEFAULTS,
      imageSize: 64,
      stemChannels: 64,
      stemPatch: 2,
      stageChannels: [64, 128, 256, 512],
      blocksPerStage: [1, 1, 1, 1],
    },
    'mobilenet-v2': { ...MOBILENET_V2_DEFAULTS, imageSize: 96, layer: 'block_9' },
    'mobilenet-v2-frozen': { ...MOBILENET_V2_DEFAULTS, imageSize: 64, layer: 'block_12', frozen: true, hidden: 256 },
  },
  base: {
    vit: { ...VIT_DEFAULTS },
    deit: { ...VIT_DEFAULTS, distillationToken: true, feature: 'cls-dist' },
    resnet: { ...RESNET_DEFAULTS },
    'mobilenet-v2': { ...MOBILENET_V2_DEFAULTS },
    'mobilenet-v2-frozen': { ...MOBILENET_V2_DEFAULTS, imageSize: 96, layer: 'block_12', frozen: true, hidden: 512 },
  },
};

/** The `glove` text tower: frozen GloVe under attention + mean pooling and a trained layer (tiny and small 256 wide, base 512 as teacher v3's). */
export const TEXT_PRESETS: Record<PresetName, TextConfigOf> = {
  tiny: {
    bert: {
      ...BERT_DEFAULTS,
      ...NO_DROPOUT,
      vocabSize: 2000,
      hiddenSize: 64,
      numHiddenLayers: 2,
      numAttentionHeads: 2,
      intermediateSize: 128,
      maxPositionEmbeddings: 32,
    },
    albert: {
      ...BERT_DEFAULTS,
      ...NO_DROPOUT,
      vocabSize: 2000,
      hiddenSize: 64,
      numHiddenLayers: 2,
      numAttentionHeads: 2,
      intermediateSize: 128,
      maxPositionEmbeddings: 32,
      hiddenAct: 'gelu_new',
      albert: { ...ALBERT_DEFAULT_EXTRA, embeddingSize: 32 },
    },
    textcnn: {
      ...TEXTCNN_DEFAULTS,
      vocabSize: 2000,
      embeddingSize: 64,
      kernelWidths: [2, 3, 4],
      filters: 64,
      dropout: 0,
    },
    glove: { pooling: 'attention', hidden: 256 },
  },
  small: {
    bert: {
      ...BERT_DEFAULTS,
      vocabSize: 30522,
      hiddenSize: 256,
      numHiddenLayers: 4,
      numAttentionHeads: 4,
      intermediateSize: 1024,
    },
    albert: {
      ...BERT_DEFAULTS,
      vocabSize: 30000,
      hiddenSize: 256,
      numHiddenLayers: 4,
      numAttentionHeads: 4,
      intermediateSize: 1024,
      hiddenAct: 'gelu_new',
      albert: { ...ALBERT_DEFAULT_EXTRA },
    },
    textcnn: { ...TEXTCNN_DEFAULTS, vocabSize: 30522, embeddingSize: 128, kernelWidths: [2, 3, 4, 5], filters: 128 },
    glove: { pooling: 'attention', hidden: 256 },
  },
  base: {
    bert: { ...BERT_DEFAULTS },
    albert: {
      ...BERT_DEFAULTS,
      vocabSize: 30000,
      hiddenAct: 'gelu_new',
      hiddenDropout: 0,
      attentionDropout: 0,
      albert: { ...ALBERT_DEFAULT_EXTRA },
    },
    textcnn: { ...TEXTCNN_DEFAULTS },
    glove: { pooling: 'attention', hidden: 512 },
  },
};

export function pairDef(name: string): PairDef | undefined {
  return PAIRS.find((p) => p.name === name);
}
