import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initRuntime, readSafetensors } from '@distill/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { encoderFromHfConfig, loadHfEncoder, matchHfWeights, readHfConfig } from './hf.js';
import { runHfParity } from './parity.js';

/** In-repo copies of shared/parity/hf-tiny/<model> (config.json, model.safetensors, reference.json). */
const tiny = (m: string) => fileURLToPath(new URL(`./fixtures/hf-tiny/${m}`, import.meta.url));

describe('Hugging Face parity (fixtures/hf-tiny)', () => {
  beforeAll(async () => {
    await initRuntime('wasm', { quiet: true });
  });

  for (const model of ['vit', 'deit', 'bert', 'albert']) {
    it(`${model}: last_hidden_state and pooler_output within 1e-4 of PyTorch`, () => {
      const diffs = runHfParity(tiny(model));
      expect(Object.keys(diffs).sort()).toEqual(['last_hidden_state', 'pooler_output']);
      for (const d of Object.values(diffs)) expect(d).toBeLessThanOrEqual(1e-4);
    });
  }

  it('reads sizes, activation and eps from config.json', () => {
    const albert = encoderFromHfConfig(readHfConfig(tiny('albert')));
    expect(albert.type).toBe('albert');
    expect(albert.config).toMatchObject({ hiddenAct: 'gelu_new', layerNormEps: 1e-12, albert: { embeddingSize: 16 } });
    expect(encoderFromHfConfig(readHfConfig(tiny('deit'))).type).toBe('deit');
  });

  it('rejects a checkpoint with a missing, an unexpected and a mis-shaped weight, naming each', () => {
    const { encoder } = loadHfEncoder(tiny('bert'));
    const tensors = readSafetensors(join(tiny('bert'), 'model.safetensors'));
    tensors.delete('encoder.layer.1.output.dense.bias');
    const q = tensors.get('encoder.layer.0.attention.self.query.weight')!;
    tensors.set('encoder.layer.0.attention.self.query.weight', { ...q, shape: [16, 64] });
    tensors.set('encoder.layer.9.extra.weight', { dtype: 'F32', shape: [1], data: new Float32Array(1) });
    let msg = '';
    try {
      matchHfWeights(encoder, tensors, 'test.safetensors');
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/missing 1: encoder\.layer\.1\.output\.dense\.bias/);
    expect(msg).toMatch(/unexpected 1: encoder\.layer\.9\.extra\.weight/);
    expect(msg).toMatch(/encoder\.layer\.0\.attention\.self\.query\.weight \(expected \[32,32\], got \[16,64\]\)/);
  });

  it('strips a task-head prefix such as "bert." and accepts an unused ViT pooler', () => {
    const { encoder } = loadHfEncoder(tiny('bert'));
    const prefixed = new Map(
      [...readSafetensors(join(tiny('bert'), 'model.safetensors'))].map(([k, v]) => [`bert.${k}`, v]),
    );
    expect(matchHfWeights(encoder, prefixed, 'x').size).toBe(encoder.specs().length);
    const vit = loadHfEncoder(tiny('vit'), { addPooler: false });
    expect(vit.values.has('pooler.dense.weight')).toBe(false);
  });
});
