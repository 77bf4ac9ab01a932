import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DistillError, encodeSafetensors } from '@distill/core';
import { afterAll, describe, expect, it } from 'vitest';
import { encoderFromHfConfig, loadHfEncoder, type HfConfig } from './hf.js';
import { hfShape, sizeOf } from './params.js';
import { createStudent } from './student.js';

/**
 * The Hugging Face loader's errors, on tiny save_pretrained folders built here (no shared fixtures):
 * each is a DistillError (exit 2) whose one line names the folder or file and what is wrong.
 */

const tmp = mkdtempSync(join(tmpdir(), 'distill-hf-errors-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const BERT: HfConfig = {
  model_type: 'bert',
  vocab_size: 50,
  hidden_size: 8,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  intermediate_size: 16,
  max_position_embeddings: 16,
  type_vocab_size: 2,
  hidden_act: 'gelu',
  layer_norm_eps: 1e-12,
};
const VIT: HfConfig = {
  model_type: 'vit',
  image_size: 8,
  patch_size: 4,
  num_channels: 3,
  hidden_size: 8,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  intermediate_size: 16,
};

type Tensors = Record<string, { shape: number[]; data: Float32Array }>;
/** The checkpoint HF would save for `config` (every weight, HF names and layouts). */
function checkpointFor(config: HfConfig): Tensors {
  const t: Tensors = {};
  for (const s of encoderFromHfConfig(config).specs()) {
    const shape = hfShape(s);
    t[s.name] = { shape, data: new Float32Array(sizeOf(shape)).fill(0.01) };
  }
  return t;
}

let n = 0;
/** A folder with config.json (an object, or raw text) and, unless null, model.safetensors (tensors or raw bytes). */
function folder(config: HfConfig | string | null, weights: Tensors | Uint8Array | null): string {
  const dir = join(tmp, `m${n++}`);
  mkdirSync(dir);
  if (config !== null)
    writeFileSync(join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  if (weights !== null)
    writeFileSync(join(dir, 'model.safetensors'), weights instanceof Uint8Array ? weights : encodeSafetensors(weights));
  return dir;
}

/** The DistillError `f` throws (fails the test if it throws anything else, or nothing). */
function errorOf(f: () => unknown): DistillError {
  try {
    f();
  } catch (e) {
    expect(e, String((e as Error).stack)).toBeInstanceOf(DistillError);
    expect((e as DistillError).message).not.toContain('\n');
    return e as DistillError;
  }
  throw new Error('expected an error');
}

describe('Hugging Face loader errors (tiny folders built in the test)', () => {
  it('a complete folder loads: every weight matched (the control for the cases below)', () => {
    const { encoder, values } = loadHfEncoder(folder(BERT, checkpointFor(BERT)));
    expect(encoder.type).toBe('bert');
    expect(values.size).toBe(encoder.specs().length);
    expect(loadHfEncoder(folder(VIT, checkpointFor(VIT))).encoder.type).toBe('vit');
  });

  it('no config.json: names the folder and the expected layout', () => {
    const dir = folder(null, checkpointFor(BERT));
    const e = errorOf(() => loadHfEncoder(dir));
    expect(e.message).toBe(
      `${dir} has no config.json: expected a Hugging Face save_pretrained folder (config.json + model.safetensors).`,
    );
    expect(e.exitCode).toBe(2);
  });

  it('config.json that is not JSON: names the file', () => {
    const dir = folder('{"model_type": "bert",', null);
    const e = errorOf(() => loadHfEncoder(dir));
    expect(e.message).toContain(join(dir, 'config.json'));
    expect(e.message).toMatch(/JSON/);
    expect(e.exitCode).toBe(2);
  });

  it('an unsupported or absent model_type: names it and lists the supported ones', () => {
    const e = errorOf(() => loadHfEncoder(folder({ ...BERT, model_type: 'gpt2' }, checkpointFor(BERT))));
    expect(e.message).toBe("Unsupported model_type 'gpt2' in config.json. Supported: vit, deit, bert, albert.");
    expect(e.exitCode).toBe(2);
    const { model_type: _, ...noType } = BERT;
    expect(errorOf(() => loadHfEncoder(folder(noType, null))).message).toMatch(
      /model_type .*Supported: vit, deit, bert, albert/,
    );
  });

  it('a config.json lacking a size, or with relative position embeddings: names the field', () => {
    const { hidden_size: _, ...noHidden } = BERT;
    expect(errorOf(() => loadHfEncoder(folder(noHidden, null))).message).toBe(
      "config.json lacks numeric 'hidden_size'.",
    );
    expect(
      errorOf(() => loadHfEncoder(folder({ ...BERT, position_embedding_type: 'relative_key' }, null))).message,
    ).toMatch(/position_embedding_type 'relative_key' is not supported/);
  });

  it('no model.safetensors (e.g. only pytorch_model.bin): says how to re-save', () => {
    const dir = folder(BERT, null);
    writeFileSync(join(dir, 'pytorch_model.bin'), 'not read');
    const e = errorOf(() => loadHfEncoder(dir));
    expect(e.message).toBe(
      `${dir} has no model.safetensors (PyTorch .bin checkpoints are not supported: re-save with safe_serialization=True).`,
    );
    expect(e.exitCode).toBe(2);
  });

  it('a model.safetensors that is not one: names the file', () => {
    const dir = folder(BERT, new TextEncoder().encode('version https://git-lfs.github.com/spec/v1\n'));
    expect(errorOf(() => loadHfEncoder(dir)).message).toMatch(
      new RegExp(`^${join(dir, 'model.safetensors').replace(/[.]/g, '\\.')}: not a safetensors file`),
    );
  });

  it('weights that do not match config.json: every mis-shaped, missing and unexpected tensor named, with shapes', () => {
    const w = checkpointFor(BERT);
    // a checkpoint of a wider model (hidden 12) for a few tensors, one tensor dropped, one extra
    w['embeddings.word_embeddings.weight'] = { shape: [50, 12], data: new Float32Array(600) };
    w['encoder.layer.0.attention.self.query.weight'] = { shape: [12, 12], data: new Float32Array(144) };
    delete w['encoder.layer.0.output.dense.bias'];
    w['encoder.layer.1.output.dense.bias'] = { shape: [8], data: new Float32Array(8) }; // a layer config.json does not have
    const dir = folder(BERT, w);
    const e = errorOf(() => loadHfEncoder(dir));
    expect(e.exitCode).toBe(2);
    expect(e.message).toMatch(
      new RegExp(`^Checkpoint ${join(dir, 'model.safetensors').replace(/[.]/g, '\\.')} does not match the model: `),
    );
    expect(e.message).toContain('missing 1: encoder.layer.0.output.dense.bias');
    expect(e.message).toContain('unexpected 1: encoder.layer.1.output.dense.bias');
    expect(e.message).toContain(
      'mis-shaped 2: embeddings.word_embeddings.weight (expected [50,8], got [50,12]), encoder.layer.0.attention.self.query.weight (expected [8,8], got [12,12])',
    );
    expect(e.message).toMatch(/Check that config\.json describes these weights \(model_type 'bert'\)\.$/);
  });

  it('a tower init of the wrong kind for the pair: names both', () => {
    const vit = folder(VIT, checkpointFor(VIT));
    const e = errorOf(() => createStudent('vit-bert', { embedDim: 8, seed: 0, vocabSize: 50, textInit: vit }));
    expect(e.message).toBe(`textInit ${vit} is a 'vit' checkpoint, but pair 'vit-bert' needs 'bert'.`);
    const bert = folder(BERT, checkpointFor(BERT));
    expect(
      errorOf(() => createStudent('resnet-bert', { embedDim: 8, seed: 0, vocabSize: 50, imageInit: bert })).message,
    ).toBe(`imageInit ${bert} is a 'bert' checkpoint, but pair 'resnet-bert' needs 'resnet'.`);
  });
});
