import { initRuntime } from '@distill/core';
import { VectorIndex, writeSite } from '@distill/serve';
import type { CliCommand } from '../command.js';

export const siteCommand: CliCommand = {
  command: 'site',
  describe:
    'Write a static search site of an index: the page, the student (onnxruntime-web), the vectors and thumbnails; it searches in the browser, no server process',
  builder: (y) =>
    y
      .option('index', { type: 'string', demandOption: true, describe: 'index folder (distill index build)' })
      .option('out', {
        type: 'string',
        demandOption: true,
        describe: 'output folder (new or empty): serve it with any static file server',
      })
      .option('force', { type: 'boolean', default: false, describe: 'write into a non-empty folder' })
      .option('model', { type: 'string', describe: 'exported model folder (default: the one that built the index)' }),
  async handler(args) {
    await initRuntime('auto', { quiet: true });
    const index = VectorIndex.open(String(args.index));
    const model = await index.loadModel(args.model as string | undefined);
    try {
      const r = await writeSite(index, model, String(args.out), { force: Boolean(args.force) });
      process.stdout.write(
        `wrote ${r.out}: ${r.images} images, ${(r.bytes / 2 ** 20).toFixed(1)} MiB (the page, onnxruntime-web, the student's encoders, vectors, thumbnails). ` +
          `Serve the folder with any static file server, e.g. \`python3 -m http.server -d ${r.out} 8000\`, and open http://127.0.0.1:8000/\n`,
      );
    } finally {
      await model.dispose();
    }
  },
};
