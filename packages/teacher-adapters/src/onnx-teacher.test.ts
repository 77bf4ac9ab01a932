import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeModel, type NodeSpec, type TensorSpec } from '@distill/autodiff';
import { OnnxTeacher, tokenizerVocabSize } from './onnx-teacher.js';

/**
 * A tiny ONNX teacher folder written by the test (the export contract of onnx-teacher.ts):
 *   image.onnx  pixel_values [batch, 3, S, S] -> mean over pixels -> MatMul [3, D]            -> image_embeds [batch, D]
 *   text.onnx   input_ids, attention_mask [batch, L] -> word table [V, D] + position table [P, D]
 *               (positions 0..L-1, so more than P tokens fail inside onnxruntime), masked sum -> text_embeds [batch, D]
 *   tokenizer.json (WordPiece over `tokens` words), teacher.json.
 */
interface TinyTeacher {
  /** Model input sizes; a string is a symbolic (dynamic) dimension. */
  imageShape?: (number | string)[];
  textLength?: number | string;
  modelVocab?: number;
  positions?: number;
  imageDim?: number;
  textDim?: number;
  tokens?: number;
  spec?: Record<string, unknown>;
}

const f32 = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => f(i));
const i64 = (xs: number[]) => BigInt64Array.from(xs.map(BigInt));

function tinyTeacher(o: TinyTeacher = {}): string {
  const S = 8;
  const imageShape = o.imageShape ?? ['batch', 3, S, S];
  const L = o.textLength ?? 'length';
  const [V, P, Di, Dt] = [o.modelVocab ?? 12, o.positions ?? 16, o.imageDim ?? 4, o.textDim ?? o.imageDim ?? 4];
  const dir = mkdtempSync(join(tmpdir(), 'distill-teacher-'));
  const image = encodeModel({
    opset: 13,
    inputs: [{ name: 'pixel_values', dtype: 'float32', shape: imageShape }],
    outputs: [{ name: 'image_embeds', dtype: 'float32', shape: ['batch', Di] }],
    initializers: [{ name: 'w', dtype: 'float32', dims: [3, Di], data: f32(3 * Di, (i) => Math.sin(i + 1)) }],
    nodes: [
      {
        op: 'ReduceMean',
        inputs: ['pixel_values'],
        outputs: ['m'],
        name: 'mean',
        attrs: { axes: [2, 3], keepdims: 0 },
      },
      { op: 'MatMul', inputs: ['m', 'w'], outputs: ['image_embeds'], name: 'proj' },
    ],
  });
  const init: TensorSpec[] = [
    { name: 'words', dtype: 'float32', dims: [V, Dt], data: f32(V * Dt, (i) => Math.cos(i + 1)) },
    { name: 'pos', dtype: 'float32', dims: [P, Dt], data: f32(P * Dt, (i) => 0.01 * i) },
    { name: 'one', dtype: 'int64', dims: [], data: i64([1]) },
    { name: 'zero', dtype: 'int64', dims: [], data: i64([0]) },
    { name: 'axis2', dtype: 'int64', dims: [1], data: i64([2]) },
    { name: 'axis1', dtype: 'int64', dims: [1], data: i64([1]) },
  ];
  const nodes: NodeSpec[] = [
    { op: 'Gather', inputs: ['words', 'input_ids'], outputs: ['e'], name: 'embed' },
    { op: 'Shape', inputs: ['input_ids'], outputs: ['shape'], name: 'shape' },
    { op: 'Gather', inputs: ['shape', 'one'], outputs: ['len'], name: 'len', attrs: { axis: 0 } },
    { op: 'Range', inputs: ['zero', 'len', 'one'], outputs: ['positions'], name: 'range' },
    { op: 'Gather', inputs: ['pos', 'positions'], outputs: ['p'], name: 'posembed' },
    { op: 'Add', inputs: ['e', 'p'], outputs: ['ep'], name: 'add' },
    { op: 'Cast', inputs: ['attention_mask'], outputs: ['mf'], name: 'cast', attrs: { to: 1 } },
    { op: 'Unsqueeze', inputs: ['mf', 'axis2'], outputs: ['mu'], name: 'unsq' },
    { op: 'Mul', inputs: ['ep', 'mu'], outputs: ['masked'], name: 'mask' },
    { op: 'ReduceSum', inputs: ['masked', 'axis1'], outputs: ['text_embeds'], name: 'sum', attrs: { keepdims: 0 } },
  ];
  const text = encodeModel({
    opset: 13,
    inputs: [
      { name: 'input_ids', dtype: 'int64', shape: ['batch', L] },
      { name: 'attention_mask', dtype: 'int64', shape: ['batch', L] },
    ],
    outputs: [{ name: 'text_embeds', dtype: 'float32', shape: ['batch', Dt] }],
    initializers: init,
    nodes,
  });
  writeFileSync(join(dir, 'image.onnx'), image);
  writeFileSync(join(dir, 'text.onnx'), text);
  const words = [
    '[PAD]',
    '[UNK]',
    'a',
    'red',
    'cat',
    'blue',
    'dog',
    'on',
    'the',
    'mat',
    'big',
    'sun',
    'sky',
    'tree',
    'car',
    'hat',
    'cup',
    'box',
    'pen',
    'map',
  ];
  const vocab = Object.fromEntries(words.slice(0, o.tokens ?? V).map((w, i) => [w, i]));
  writeFileSync(
    join(dir, 'tokenizer.json'),
    JSON.stringify({
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [0, 1].map((id) => ({
        id,
        content: words[id],
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      })),
      normalizer: {
        type: 'BertNormalizer',
        clean_text: true,
        handle_chinese_chars: true,
        strip_accents: null,
        lowercase: true,
      },
      pre_tokenizer: { type: 'BertPreTokenizer' },
      post_processor: null,
      decoder: null,
      model: {
        type: 'WordPiece',
        unk_token: '[UNK]',
        continuing_subword_prefix: '##',
        max_input_chars_per_word: 100,
        vocab,
      },
    }),
  );
  const spec = {
    name: 'tiny',
    imageSize: S,
    mean: [0.5, 0.5, 0.5],
    std: [0.5, 0.5, 0.5],
    maxTextLength: 10,
    dim: 0,
    inputs: { pixels: 'pixel_values', ids: 'input_ids', mask: 'attention_mask' },
    outputs: { image: 'image_embeds', text: 'text_embeds' },
    ...o.spec,
  };
  writeFileSync(join(dir, 'teacher.json'), JSON.stringify(spec));
  return dir;
}

describe('OnnxTeacher on a tiny export built by the test', () => {
  it('loads, checks itself and encodes images and captions into L2-normalised rows', async () => {
    const t = await OnnxTeacher.load(tinyTeacher(), { threads: 1 });
    expect(t.dim).toBe(4);
    const img = await t.encodeImages(
      f32(2 * 3 * 8 * 8, (i) => (i % 7) / 7),
      2,
    );
    const txt = await t.encodeTexts(['a red cat', 'the big blue dog on the mat']);
    for (const rows of [img, txt])
      for (let r = 0; r < 2; r++) expect(Math.hypot(...rows.subarray(r * 4, r * 4 + 4))).toBeCloseTo(1, 5);
    await t.dispose();
  });

  it('counts the tokenizer vocabulary from its model and added tokens', () => {
    expect(tokenizerVocabSize({ model: { vocab: { a: 0, b: 5 } }, added_tokens: [{ id: 7 }] })).toBe(8);
    expect(
      tokenizerVocabSize({
        model: {
          vocab: [
            ['a', 0],
            ['b', -1],
          ],
        },
      }),
    ).toBe(2);
    expect(tokenizerVocabSize({ model: {} })).toBeUndefined();
  });

  it('an image size that differs from the model input is refused at load, naming the setting', async () => {
    const dir = tinyTeacher({ spec: { imageSize: 16 } });
    await expect(OnnxTeacher.load(dir, { threads: 1 })).rejects.toThrow(
      `${dir}/image.onnx input 'pixel_values' takes 8x8 images (shape [batch, 3, 8, 8]), but teacher.json says imageSize 16. Set "imageSize": 8 in teacher.json.`,
    );
  });

  it('a tokenizer with more ids than the model vocabulary is refused at load', async () => {
    const dir = tinyTeacher({ modelVocab: 12, tokens: 20 });
    await expect(OnnxTeacher.load(dir, { threads: 1 })).rejects.toThrow(
      new RegExp(
        `^${dir}/tokenizer\\.json has 20 tokens, but ${dir}/text\\.onnx fails on token id 19: .*The model has a smaller vocabulary`,
      ),
    );
  });

  it('a maxTextLength beyond the model limit is refused at load (static length from metadata, dynamic by a run)', async () => {
    const fixed = tinyTeacher({ textLength: 8 });
    await expect(OnnxTeacher.load(fixed, { threads: 1 })).rejects.toThrow(
      `${fixed}/text.onnx input 'input_ids' takes at most 8 tokens (shape [batch, 8]), but teacher.json says maxTextLength 10. Set "maxTextLength": 8 in teacher.json.`,
    );
    const dynamic = tinyTeacher({ positions: 16, spec: { maxTextLength: 32 } });
    await expect(OnnxTeacher.load(dynamic, { threads: 1 })).rejects.toThrow(
      new RegExp(
        `^${dynamic}/text\\.onnx fails on 32 tokens \\(teacher\\.json maxTextLength 32\\): .*Lower "maxTextLength"`,
      ),
    );
  });

  it('a static text length shorter than maxTextLength is padded to, so captions of any length encode', async () => {
    const t = await OnnxTeacher.load(tinyTeacher({ textLength: 12 }), { threads: 1 });
    const txt = await t.encodeTexts(['a cat', 'a red cat on the mat with a big hat and a cup and a pen']);
    expect(txt.length).toBe(8);
    await t.dispose();
  });

  it('fixed batch sizes, models onnxruntime cannot load, missing settings and towers of different widths are refused at load', async () => {
    const b1 = tinyTeacher({ imageShape: [1, 3, 8, 8] });
    await expect(OnnxTeacher.load(b1, { threads: 1 })).rejects.toThrow(
      /image\.onnx input 'pixel_values' has a fixed batch size 1 .*Re-export it with a dynamic batch axis/,
    );
    const rank = tinyTeacher({ imageShape: ['batch', 3, 64] });
    await expect(OnnxTeacher.load(rank, { threads: 1 })).rejects.toThrow(
      new RegExp(`^onnxruntime cannot load ${rank}/image\\.onnx: .*ReduceMean.*Re-export the teacher`),
    );
    const dims = tinyTeacher({ imageDim: 4, textDim: 6 });
    await expect(OnnxTeacher.load(dims, { threads: 1 })).rejects.toThrow(
      /image\.onnx outputs 4-d embeddings but .*text\.onnx outputs 6-d/,
    );
    const lacks = tinyTeacher({ spec: { imageSize: undefined, mean: [0.5] } });
    await expect(OnnxTeacher.load(lacks, { threads: 1 })).rejects.toThrow(/teacher\.json lacks valid imageSize, mean /);
  });

  it('an unparsable tokenizer.json is a DistillError naming the file', async () => {
    const dir = tinyTeacher();
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'tokenizer.json'), '{ not json');
    await expect(OnnxTeacher.load(dir, { threads: 1 })).rejects.toThrow(
      new RegExp(`^Cannot parse ${dir}/tokenizer\\.json`),
    );
  });
});
