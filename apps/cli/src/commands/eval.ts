import { existsSync, readFileSync } from 'node:fs';
import { DistillError, initRuntime, type BackendChoice, readNpyIndices, readNpyMatrixF32 } from '@distill/core';
import { computeRecallAsync, headline } from '@distill/eval';
import type { CliCommand } from '../command.js';

/** Image index per text row: a JSON array or a 1-D integer .npy. */
function readTextImage(path: string): Int32Array {
  if (!existsSync(path)) throw new DistillError(`File not found: ${path} (expected a JSON array or .npy of image indices, one per text row).`);
  if (path.endsWith('.npy')) return readNpyIndices(path);
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new DistillError(`Could not parse ${path} as JSON: ${(e as Error).message}. Give a JSON array of image indices or an .npy file.`);
  }
  if (!Array.isArray(v) || v.some((x) => !Number.isInteger(x))) {
    throw new DistillError(`${path}: expected a JSON array of integer image indices (one per text row).`);
  }
  return Int32Array.from(v as number[]);
}

export const evalEmbeddingsCommand: CliCommand = {
  group: 'eval',
  command: 'embeddings',
  describe: 'Grouped Recall@1/5/10 and RSUM from precomputed embeddings (.npy float32 [N, D])',
  builder: (y) =>
    y
      .option('images', { type: 'string', demandOption: true, describe: 'image embeddings .npy [nImages, D]' })
      .option('texts', { type: 'string', demandOption: true, describe: 'text embeddings .npy [nTexts, D]' })
      .option('text-image', { type: 'string', demandOption: true, describe: 'image index of each text row: JSON array or .npy' })
      .option('ranks', { type: 'boolean', default: false, describe: 'also print median and mean ranks' })
      .option('engine', { choices: ['auto', 'onnx', 'tf', 'js'], default: 'auto', describe: 'matrix products: onnxruntime GEMM, tfjs, or plain loops' })
      .option('backend', { choices: ['auto', 'wasm', 'cpu'], default: 'wasm', describe: 'tfjs backend for the matrix products' }),
  async handler(args) {
    const images = readNpyMatrixF32(String(args.images));
    const texts = readNpyMatrixF32(String(args.texts));
    if (images.cols !== texts.cols) {
      throw new DistillError(`Embedding dims differ: ${args.images} has D=${images.cols}, ${args.texts} has D=${texts.cols}.`);
    }
    const t2i = readTextImage(String(args.textImage));
    await initRuntime(args.backend as BackendChoice, { quiet: true });
    const t0 = performance.now();
    const m = await computeRecallAsync(images.data, texts.data, images.cols, t2i, { engine: args.engine as 'auto' });
    const secs = (performance.now() - t0) / 1000;
    process.stderr.write(`evaluated ${images.rows} images x ${texts.rows} texts (dim ${images.cols}) in ${secs.toFixed(2)} s (${m.engine})\n`);
    const out: Record<string, number> = { ...headline(m) };
    if (args.ranks) Object.assign(out, { i2t_medr: m.i2t_medr, i2t_meanr: m.i2t_meanr, t2i_medr: m.t2i_medr, t2i_meanr: m.t2i_meanr });
    process.stdout.write(JSON.stringify(out) + '\n');
  },
};

export const evalCommands: CliCommand[] = [evalEmbeddingsCommand];
