import { existsSync, readFileSync } from 'node:fs';
import { DistillError, initRuntime, readNpyIndices, readNpyMatrixF32 } from '@distill/core';
import { tfjsBackendFor, type TrainBackend } from '@distill/training';
import {
  computeRecallAsync,
  evaluateQueries,
  formatQueryEvaluation,
  headline,
  QUERY_SETS,
  readQueries,
  unmatchableQueries,
} from '@distill/eval';
import { VectorIndex } from '@distill/serve';
import type { CliCommand } from '../command.js';
import { declareFlags } from '../flags.js';

/** Image index per text row: a JSON array or a 1-D integer .npy. */
function readTextImage(path: string): Int32Array {
  if (!existsSync(path))
    throw new DistillError(
      `File not found: ${path} (expected a JSON array or .npy of image indices, one per text row).`,
    );
  if (path.endsWith('.npy')) return readNpyIndices(path);
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new DistillError(
      `Could not parse ${path} as JSON: ${(e as Error).message}. Give a JSON array of image indices or an .npy file.`,
    );
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
  builder: (y, ctx) =>
    declareFlags(y, ctx, ['backend'], {
      defaults: { backend: 'wasm' },
      notes: { backend: 'the tfjs backend of the matrix products when they run on tfjs' },
    })
      .option('images', { type: 'string', demandOption: true, describe: 'image embeddings .npy [nImages, D]' })
      .option('texts', { type: 'string', demandOption: true, describe: 'text embeddings .npy [nTexts, D]' })
      .option('text-image', {
        type: 'string',
        demandOption: true,
        describe: 'image index of each text row: JSON array or .npy',
      })
      .option('ranks', { type: 'boolean', default: false, describe: 'also print median and mean ranks' })
      .option('engine', {
        choices: ['auto', 'onnx', 'tf', 'js'],
        default: 'auto',
        describe: 'matrix products: onnxruntime GEMM, tfjs, or plain loops',
      }),
  async handler(args) {
    const images = readNpyMatrixF32(String(args.images));
    const texts = readNpyMatrixF32(String(args.texts));
    if (images.cols !== texts.cols) {
      throw new DistillError(
        `Embedding dims differ: ${args.images} has D=${images.cols}, ${args.texts} has D=${texts.cols}.`,
      );
    }
    const t2i = readTextImage(String(args.textImage));
    await initRuntime(tfjsBackendFor(args.backend as TrainBackend), { quiet: true });
    const t0 = performance.now();
    const m = await computeRecallAsync(images.data, texts.data, images.cols, t2i, { engine: args.engine as 'auto' });
    const secs = (performance.now() - t0) / 1000;
    process.stderr.write(
      `evaluated ${images.rows} images x ${texts.rows} texts (dim ${images.cols}) in ${secs.toFixed(2)} s (${m.engine})\n`,
    );
    const out: Record<string, number> = { ...headline(m) };
    if (args.ranks)
      Object.assign(out, {
        i2t_medr: m.i2t_medr,
        i2t_meanr: m.i2t_meanr,
        t2i_medr: m.t2i_medr,
        t2i_meanr: m.t2i_meanr,
      });
    process.stdout.write(JSON.stringify(out) + '\n');
  },
};

export const evalQueriesCommand: CliCommand = {
  group: 'eval',
  command: 'queries',
  describe:
    'Search quality on everyday queries: hit@1/5/10 of text -> image search over an index (distill index build), and the misses',
  builder: (y) =>
    y
      .option('index', {
        type: 'string',
        demandOption: true,
        describe: 'index folder (distill index build); searched with the model that built it',
      })
      .option('queries', {
        type: 'string',
        demandOption: true,
        describe: `query file, one "query<TAB>pattern" a line (a right image has a caption the pattern matches), or a shipped set: ${QUERY_SETS.join(', ')}`,
      })
      .option('k', { type: 'number', default: 10, describe: 'a query is a miss when no right image is in its top k' })
      .option('show', { type: 'number', default: 3, describe: 'top results printed for each miss' })
      .option('model', { type: 'string', describe: 'exported model folder (default: the one that built the index)' })
      .option('json', {
        type: 'boolean',
        default: false,
        describe: "print the figures, the misses and every query's results as JSON",
      }),
  async handler(args) {
    const cases = readQueries(String(args.queries));
    await initRuntime('auto', { quiet: true });
    const index = VectorIndex.open(String(args.index));
    const unmatchable = unmatchableQueries(
      cases,
      index.meta.images.flatMap((im) => im.captions),
    );
    if (unmatchable.length) {
      process.stderr.write(
        `warning: ${unmatchable.length} of ${cases.length} patterns match no caption in ${args.index} (these queries cannot hit): ${unmatchable.map((c) => `line ${c.line} ${JSON.stringify(c.query)}`).join(', ')}\n`,
      );
    }
    const model = await index.loadModel(args.model as string | undefined);
    try {
      const e = await evaluateQueries(
        cases,
        async (text, depth) =>
          (await index.search(model, { text }, depth, 'images')).results.map((h) => ({
            id: h.id,
            score: h.score,
            captions: h.captions ?? [],
          })),
        { k: Number(args.k), collection: index.meta.images.map((im) => im.captions) },
      );
      if (args.json) {
        const { outcomes, misses, ...figures } = e;
        process.stdout.write(
          JSON.stringify({
            index: String(args.index),
            model: index.meta.model.dir,
            queryFile: String(args.queries),
            ...figures,
            unmatchable: unmatchable.map((c) => c.query),
            misses,
            outcomes,
          }) + '\n',
        );
      } else process.stdout.write(formatQueryEvaluation(e, { show: Number(args.show) }));
    } finally {
      await model.dispose();
    }
  },
};

export const evalCommands: CliCommand[] = [evalEmbeddingsCommand, evalQueriesCommand];
