import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DistillError, readJsonFile } from '@distill/core';
import { OnnxTeacher } from './onnx-teacher.js';

interface Reference {
  inputs: { pixel_values: number[][][][]; input_ids: number[][]; attention_mask: number[][] };
  outputs: { image_embeds: number[][]; text_embeds: number[][] };
}

/**
 * Run an exported teacher folder (image.onnx, text.onnx, reference.json) through the `clip` preset
 * machinery with preprocessing bypassed, and return the max abs difference of each output.
 */
export async function runOnnxTeacherParity(
  dir: string,
  preset = 'clip',
): Promise<{ image_embeds: number; text_embeds: number }> {
  if (!existsSync(dir)) throw new DistillError(`Folder not found: ${dir}`, 2);
  const refPath = join(dir, 'reference.json');
  if (!existsSync(refPath)) {
    throw new DistillError(
      `${dir} has no reference.json ({inputs, outputs}: pixel_values, input_ids, attention_mask -> image_embeds, text_embeds, from the PyTorch model).`,
      2,
    );
  }
  const ref = readJsonFile<Reference>(refPath);
  const px = ref.inputs.pixel_values;
  const n = px.length;
  const size = px[0][0].length;
  const L0 = ref.inputs.input_ids[0].length;
  // The reference model's own image size and text length (the preset's are the full-size model's).
  const teacher = await OnnxTeacher.load(dir, {
    preset,
    requireTokenizer: false,
    threads: 1,
    spec: { imageSize: size, maxTextLength: L0 },
  });
  const img = await teacher.imageEmbeddingsRaw(Float32Array.from(px.flat(3)), n);
  const L = ref.inputs.input_ids[0].length;
  const txt = await teacher.textEmbeddingsRaw(
    ref.inputs.input_ids.flat(),
    ref.inputs.attention_mask.flat(),
    ref.inputs.input_ids.length,
    L,
  );
  await teacher.dispose();
  const diff = (got: Float32Array, want: number[][]) =>
    want.flat().reduce((m, v, i) => Math.max(m, Math.abs(v - got[i])), 0);
  return { image_embeds: diff(img, ref.outputs.image_embeds), text_embeds: diff(txt, ref.outputs.text_embeds) };
}
