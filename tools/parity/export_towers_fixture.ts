/**
 * Writes the distill side of the ResNet / TextCNN tower reference fixture
 * (packages/student-architectures/src/fixtures/towers/): a tiny `resnet-textcnn` student with every
 * weight seeded and non-trivial (biases, residual scales and LayerNorm affine included), exported as
 * distill saves weights (model.safetensors, getStudentWeights names and layouts), its StudentConfig
 * (student.json) and fixed inputs (inputs.json). tools/parity/towers_reference.py then computes the
 * PyTorch outputs into reference.json.
 *
 *   node --conditions=@distill/source --import tsx tools/parity/export_towers_fixture.ts
 *   /usr/bin/python3 tools/parity/towers_reference.py
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initRuntime, repoRoot, Rng, tf, encodeSafetensors } from '@distill/core';
import { createStudent, getStudentWeights } from '@distill/student-architectures';

const out = join(repoRoot(), 'packages/student-architectures/src/fixtures/towers');
await initRuntime('cpu', { quiet: true });

const VOCAB = 40;
const s = createStudent('resnet-textcnn', {
  preset: 'tiny',
  embedDim: 7,
  seed: 11,
  vocabSize: VOCAB,
  maxLength: 12,
  overrides: {
    // stem 4 -> stage 0 (5 ch: a stride-1 projection shortcut), stage 1 (6 ch, 2 blocks: stride-2 projection + identity), stage 2 (8 ch, stride 2)
    // 24 px, stem patch 2: 12 x 12 -> 12 -> 6 -> 3 (an odd size in the last stage)
    image: {
      imageSize: 24,
      stemPatch: 2,
      stemChannels: 4,
      stageChannels: [5, 6, 8],
      blocksPerStage: [1, 2, 1],
      layerNormEps: 1e-5,
    },
    // widths 1 (a linear), 2 and 4 (even: asymmetric 'same' padding), 3
    text: { embeddingSize: 6, kernelWidths: [1, 2, 3, 4], filters: 5, dropout: 0.1 },
  },
});

// every parameter seeded and away from its init (zero biases, 0.1 scales, unit LayerNorm would hide errors)
const rng = new Rng(2026);
for (const v of s.variables()) {
  const n = v.variable.size;
  const r = rng.fork(v.name);
  let data: Float32Array;
  if (v.name.endsWith('.scale')) data = r.uniformArray(n, 0.4, 1.2);
  else if (v.name.endsWith('norm.weight')) data = Float32Array.from(r.normalArray(n, 1, 0.3));
  else if (v.name.endsWith('.bias')) data = r.normalArray(n, 0, 0.3);
  else if (v.name.endsWith('word_embeddings.weight')) data = r.normalArray(n, 0, 1);
  else data = Float32Array.from(v.variable.dataSync()); // He-normal conv / xavier projection weights from the seeded init
  v.variable.assign(tf.tensor(data, v.variable.shape, 'float32'));
}

const B = 3;
const S = 24;
const L = 9;
const lengths = [9, 5, 1];
// multiples of 1/64: exact in float32 and short in JSON
const pixels = Array.from(
  { length: B * 3 * S * S },
  (_, i) => Math.round((Math.sin(i * 0.37) * 1.5 + Math.cos(i * 0.011)) * 64) / 64,
);
const ids: number[] = [];
const mask: number[] = [];
for (let b = 0; b < B; b++) {
  for (let t = 0; t < L; t++) {
    const real = t < lengths[b];
    ids.push(real ? (b * 13 + t * 7 + 3) % VOCAB : 17); // padding carries a real token id: only the mask hides it
    mask.push(real ? 1 : 0);
  }
}

mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'model.safetensors'), encodeSafetensors(getStudentWeights(s)));
writeFileSync(join(out, 'student.json'), JSON.stringify(s.config, null, 2) + '\n');
writeFileSync(
  join(out, 'inputs.json'),
  JSON.stringify({
    pixels: { shape: [B, 3, S, S], data: pixels },
    ids: { shape: [B, L], data: ids },
    mask: { shape: [B, L], data: mask },
  }) + '\n',
);
s.dispose();
console.log(`wrote ${out}/{model.safetensors,student.json,inputs.json}`);
