import { DistillError, initRuntime } from '@distill/core';
import { VectorIndex, type SearchResult } from '@distill/serve';
import type { CliCommand } from '../command.js';

/** Ranked results as a person reads them. */
export function formatResults(r: SearchResult, index?: VectorIndex): string {
  const q =
    r.query.text !== undefined
      ? JSON.stringify(r.query.text.length > 80 ? r.query.text.slice(0, 77) + '...' : r.query.text)
      : r.query.image;
  const head = `${r.results.length} ${r.target} for ${q} (embed ${r.ms.embed.toFixed(1)} ms, search ${r.ms.search.toFixed(2)} ms; score = cosine similarity)`;
  const rows = r.results.map((h) =>
    `${String(h.rank).padStart(3)}  ${h.score.toFixed(4)}  ${h.id}  ${h.name}  ${h.text ?? h.captions?.[0] ?? ''}  ${index?.image(h.id)?.path ?? ''}`.trimEnd(),
  );
  return [head, ...rows].join('\n') + '\n';
}

export const searchCommand: CliCommand = {
  command: 'search',
  describe: 'Query an index: --text finds images, --image <file> finds captions (or images with --to images)',
  builder: (y) =>
    y
      .option('index', { type: 'string', demandOption: true, describe: 'index folder (distill index build)' })
      .option('text', { type: 'string', describe: 'text query (text -> images)' })
      .option('image', { type: 'string', describe: 'image file query (image -> captions, or images with --to images)' })
      .option('to', {
        choices: ['images', 'texts'],
        describe: 'what to return (default: images for --text, texts for --image)',
      })
      .option('k', { type: 'number', default: 10, describe: 'results' })
      .option('model', {
        type: 'string',
        describe: 'exported model folder (default: the one that built the index; another model is refused)',
      })
      .option('json', {
        type: 'boolean',
        default: false,
        describe: 'print the results as JSON (as GET /api/search of distill serve)',
      }),
  async handler(args) {
    if (!args.text === !args.image) throw new DistillError('Give one query: --text "<words>" or --image <file>.', 2);
    await initRuntime('auto', { quiet: true });
    const index = VectorIndex.open(String(args.index));
    const model = await index.loadModel(args.model as string | undefined);
    try {
      const r = await index.search(
        model,
        { text: args.text as string | undefined, image: args.image as string | undefined },
        Number(args.k),
        args.to as 'images' | 'texts' | undefined,
      );
      process.stdout.write(args.json ? JSON.stringify(r) + '\n' : formatResults(r, index));
    } finally {
      await model.dispose();
    }
  },
};
