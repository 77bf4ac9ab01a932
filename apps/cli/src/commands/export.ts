import { resolve } from 'node:path';
import { initRuntime, type Container } from '@distill/core';
import { loadDataset } from '@distill/data';
import { computeRecallAsync } from '@distill/eval';
import {
  embedSplit,
  encoderLatency,
  exportQuantized,
  exportStudent,
  OnnxModel,
  PARITY_TOLERANCE,
} from '@distill/serve';
import type { CliCommand } from '../command.js';
import { splitOf } from '../flags.js';

const kb = (n: number) => `${(n / 1024).toFixed(0)} KiB`;

/** RSUM of an exported model on a dataset split (grouped captions, Recall@1/5/10 both ways). */
async function rsum(dir: string, dataset: string, split: string, container: Container): Promise<number> {
  const ds = await loadDataset(dataset, {}, container);
  const s = splitOf(ds, split, dataset);
  const model = await OnnxModel.load(dir);
  try {
    const e = await embedSplit(
      model,
      s.images.map((im) => ({ id: im.id, path: resolve(ds.imageRoot, im.path) })),
      s.captions.map((c) => c.text),
    );
    const m = await computeRecallAsync(e.images, e.texts, model.dim, Int32Array.from(s.captions.map((c) => c.image)), {
      engine: 'js',
    });
    return m.rsum;
  } finally {
    await model.dispose();
  }
}

export const exportCommand: CliCommand = {
  command: 'export <student>',
  describe:
    'Export a trained student (a run folder or a saved student) to ONNX: image.onnx, text.onnx, tokenizer.json, teacher.json',
  builder: (y) =>
    y
      .positional('student', {
        type: 'string',
        describe: 'run folder (its student/best is used) or saved student folder',
      })
      .option('out', {
        type: 'string',
        demandOption: true,
        describe: 'output folder (an ONNX teacher folder: --teacher clip --teacher-model <out> loads it)',
      })
      .option('force', { type: 'boolean', default: false, describe: 'write into a non-empty folder' })
      .option('quantize', {
        choices: ['int8'],
        describe:
          'also write <out>-int8: int8 MatMul/Gemm weights (dynamic quantization); reports size, latency and the RSUM change',
      })
      .option('eval-dataset', {
        type: 'string',
        default: 'emoji',
        describe: 'with --quantize: the dataset of the RSUM comparison',
      })
      .option('eval-split', { type: 'string', default: 'test', describe: 'with --quantize: its split' }),
  async handler(args, ctx) {
    await initRuntime('auto', { quiet: true });
    const out = String(args.out);
    const r = await exportStudent(String(args.student), out, { force: Boolean(args.force) });
    process.stdout.write(
      `exported ${r.files.join(', ')} to ${r.out} (dim ${r.dim}; image.onnx ${kb(r.bytes.image)}, text.onnx ${kb(r.bytes.text)}; dynamic batch)\n` +
        `parity: max |onnxruntime - distill| = ${r.parity.image.toExponential(2)} (image), ${r.parity.text.toExponential(2)} (text) at batch ${r.parity.batches.join(' and ')} (reference: ${r.parity.reference === 'tfjs' ? "distill's tfjs forward" : "the onnx engine's graph"}; tolerance ${PARITY_TOLERANCE})\n` +
        `model sha256 ${r.hash}\n`,
    );
    if (args.quantize !== 'int8') return;
    const qOut = `${out.replace(/\/+$/, '')}-int8`;
    const q = await exportQuantized(String(args.student), out, qOut);
    const lat = async (dir: string) => {
      const m = await OnnxModel.load(dir);
      try {
        return { b1: await encoderLatency(m, 1, 20), b64: await encoderLatency(m, 64, 5) };
      } finally {
        await m.dispose();
      }
    };
    const [lf, lq] = [await lat(out), await lat(qOut)];
    const [ds, split] = [String(args.evalDataset), String(args.evalSplit)];
    const [rf, rq] = [await rsum(out, ds, split, ctx.container), await rsum(qOut, ds, split, ctx.container)];
    const ms = (l: typeof lf) =>
      `image ${l.b1.image.toFixed(2)} / ${l.b64.image.toFixed(1)} ms, text ${l.b1.text.toFixed(2)} / ${l.b64.text.toFixed(1)} ms (batch 1 / 64)`;
    process.stdout.write(
      `int8: wrote ${qOut} (image.onnx ${kb(q.bytes.image)}, text.onnx ${kb(q.bytes.text)}; float32 ${kb(r.bytes.image)}, ${kb(r.bytes.text)})\n` +
        `int8: max |int8 - float32| of the unit embeddings ${q.maxDiff.image.toExponential(2)} (image), ${q.maxDiff.text.toExponential(2)} (text)\n` +
        `latency float32: ${ms(lf)}\nlatency int8:    ${ms(lq)}\n` +
        `${ds} ${split} RSUM: float32 ${rf.toFixed(2)}, int8 ${rq.toFixed(2)} (${rq - rf >= 0 ? '+' : ''}${(rq - rf).toFixed(2)})\n`,
    );
  },
};
