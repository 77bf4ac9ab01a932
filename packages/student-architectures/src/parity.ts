import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DistillError, tf } from '@distill/core';
import { loadHfEncoder } from './hf.js';
import { createVariables, type Params } from './params.js';
import { Rng } from '@distill/core';

type Nested = number | Nested[];
function flat(x: Nested, shape: number[] = []): { data: number[]; shape: number[] } {
  const data: number[] = [];
  const walk = (v: Nested, d: number) => {
    if (Array.isArray(v)) {
      if (shape.length <= d) shape.push(v.length);
      v.forEach((u) => walk(u, d + 1));
    } else data.push(v);
  };
  walk(x, 0);
  return { data, shape };
}

/**
 * Run an HF encoder folder (config.json, model.safetensors, reference.json = {inputs, outputs}) and
 * return the max absolute difference of each reference output.
 */
export function runHfParity(dir: string): Record<string, number> {
  const refPath = join(dir, 'reference.json');
  if (!existsSync(refPath)) throw new DistillError(`${dir} has no reference.json ({inputs, outputs}).`, 2);
  const ref = JSON.parse(readFileSync(refPath, 'utf8')) as {
    inputs: Record<string, Nested>;
    outputs: Record<string, Nested>;
  };
  const { encoder, values } = loadHfEncoder(dir, { addPooler: true, hiddenDropout: 0, attentionDropout: 0 });
  const vars = createVariables(encoder.specs(), '', encoder.modality, new Rng(0), values);
  const params: Params = Object.fromEntries(vars.map((v) => [v.spec.name, v.variable]));
  try {
    return tf.tidy(() => {
      let out;
      if (encoder.modality === 'image') {
        const px = flat(ref.inputs.pixel_values);
        out = encoder.forward(
          params,
          tf.tensor4d(px.data, px.shape as [number, number, number, number]) as never,
          false,
        );
      } else {
        const ids = flat(ref.inputs.input_ids);
        const mask = ref.inputs.attention_mask
          ? flat(ref.inputs.attention_mask)
          : { data: ids.data.map(() => 1), shape: ids.shape };
        out = encoder.forward(
          params,
          {
            ids: tf.tensor2d(ids.data, ids.shape as [number, number], 'int32'),
            mask: tf.tensor2d(mask.data, mask.shape as [number, number], 'int32'),
          } as never,
          false,
        );
      }
      const got: Record<string, tf.Tensor | undefined> = {
        last_hidden_state: out.lastHiddenState,
        pooler_output: out.poolerOutput,
      };
      const diffs: Record<string, number> = {};
      for (const [k, v] of Object.entries(ref.outputs)) {
        const t = got[k];
        if (!t) throw new DistillError(`reference output '${k}' is not produced by the ${encoder.type} encoder.`, 2);
        const r = flat(v);
        if (r.shape.join() !== t.shape.join())
          throw new DistillError(`${k}: shape [${t.shape}] differs from the reference [${r.shape}].`, 1);
        const a = t.dataSync();
        let m = 0;
        for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - r.data[i]));
        diffs[k] = m;
      }
      return diffs;
    });
  } finally {
    vars.forEach((v) => v.variable.dispose());
  }
}
