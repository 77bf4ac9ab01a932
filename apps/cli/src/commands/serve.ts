import { initRuntime } from '@distill/core';
import { checkPort, startSearchServer, VectorIndex } from '@distill/serve';
import type { CliCommand } from '../command.js';

export const serveCommand: CliCommand = {
  command: 'serve',
  describe: 'A search page and JSON API (GET /api/search?q=...&k=...) over an index',
  builder: (y) =>
    y
      .option('index', { type: 'string', demandOption: true, describe: 'index folder (distill index build)' })
      .option('port', { type: 'number', default: 8080, describe: 'port (0: any free one)' })
      .option('host', {
        type: 'string',
        default: '127.0.0.1',
        describe: 'address to listen on (0.0.0.0: every interface)',
      })
      .option('model', { type: 'string', describe: 'exported model folder (default: the one that built the index)' }),
  async handler(args) {
    checkPort(Number(args.port));
    await initRuntime('auto', { quiet: true });
    const index = VectorIndex.open(String(args.index));
    const model = await index.loadModel(args.model as string | undefined);
    let s;
    try {
      s = await startSearchServer(index, model, Number(args.port), String(args.host));
    } catch (e) {
      await model.dispose();
      throw e;
    }
    process.stdout.write(
      `serving ${index.meta.images.length} images, ${index.meta.texts.length} captions of ${args.index} at ${s.url} (API: ${s.url}api/search?q=red%20heart&k=10); Ctrl-C stops\n`,
    );
    await new Promise<void>((done) => {
      const stop = () => void s.close().then(done);
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await model.dispose();
  },
};
