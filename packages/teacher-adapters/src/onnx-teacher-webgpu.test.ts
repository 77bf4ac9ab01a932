import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LAVAPIPE_INSTALL, webgpuReport } from '@distill/core';
import { OnnxTeacher } from './onnx-teacher.js';

/** In-repo copy of shared/parity/hf-tiny/clip (image.onnx, text.onnx and PyTorch's reference.json). */
const clip = fileURLToPath(new URL('./fixtures/hf-tiny/clip', import.meta.url));
type Reference = {
  inputs: { pixel_values: number[][][][]; input_ids: number[][]; attention_mask: number[][] };
  outputs: { image_embeds: number[][]; text_embeds: number[][] };
};

// Teacher extraction with `--device webgpu` (executionProviders ['webgpu']): the same embeddings as the
// CPU provider and as PyTorch. Needs a Vulkan driver (lavapipe on a machine without a GPU).
const probe = await webgpuReport({ timeoutMs: 30_000 });
const skip = probe.session.ok ? '' : `no WebGPU (${probe.session.error}); to run it: ${probe.fix ?? LAVAPIPE_INSTALL}`;
if (skip) console.warn(`onnx-teacher-webgpu.test.ts: skipped: ${skip}`);

describe.skipIf(!!skip)(`ONNX teacher on WebGPU${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it("gives the CPU provider's embeddings (1e-5) and PyTorch's (1e-4) on fixtures/hf-tiny/clip", async () => {
    const ref = JSON.parse(readFileSync(`${clip}/reference.json`, 'utf8')) as Reference;
    const px = Float32Array.from(ref.inputs.pixel_values.flat(3));
    const n = ref.inputs.pixel_values.length;
    const [nT, L] = [ref.inputs.input_ids.length, ref.inputs.input_ids[0].length];
    const spec = { imageSize: ref.inputs.pixel_values[0][0].length, maxTextLength: L };
    const out: Record<string, { img: Float32Array; txt: Float32Array }> = {};
    for (const ep of ['cpu', 'webgpu']) {
      const t = await OnnxTeacher.load(clip, {
        preset: 'clip',
        requireTokenizer: false,
        threads: 1,
        spec,
        executionProviders: [ep],
      });
      out[ep] = {
        img: await t.imageEmbeddingsRaw(px, n),
        txt: await t.textEmbeddingsRaw(ref.inputs.input_ids.flat(), ref.inputs.attention_mask.flat(), nT, L),
      };
      await t.dispose();
    }
    const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) =>
      Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
    expect(out.webgpu.img).toHaveLength(ref.outputs.image_embeds.flat().length);
    expect(maxDiff(out.webgpu.img, out.cpu.img)).toBeLessThan(1e-5);
    expect(maxDiff(out.webgpu.txt, out.cpu.txt)).toBeLessThan(1e-5);
    expect(maxDiff(out.webgpu.img, ref.outputs.image_embeds.flat())).toBeLessThan(1e-4);
    expect(maxDiff(out.webgpu.txt, ref.outputs.text_embeds.flat())).toBeLessThan(1e-4);
  }, 60_000);
});
