import { resolve } from 'node:path';
import { DistillError, initRuntime } from '@distill/core';
import { loadDataset } from '@distill/data';
import { folderCollection, OnnxModel, VectorIndex, type Collection } from '@distill/serve';
import type { CliCommand } from '../command.js';

export const indexBuildCommand: CliCommand = {
  group: 'index',
  command: 'build',
  describe: 'Embed a dataset split or a folder of images with an exported model into an on-disk vector index (adds to an existing one)',
  builder: (y) =>
    y
      .option('model', { type: 'string', describe: 'exported model folder (distill export); default: the one that built --out' })
      .option('dataset', { type: 'string', describe: 'dataset name (see distill data list), e.g. emoji' })
      .option('split', { type: 'string', default: 'test', describe: 'split of --dataset' })
      .option('data-root', { type: 'string', describe: 'dataset root (file datasets)' })
      .option('annotations', { type: 'string', describe: 'annotation file (file datasets)' })
      .option('image-root', { type: 'string', describe: 'image folder (file datasets)' })
      .option('images', { type: 'string', describe: 'a folder of images (recursively); <name>.txt beside an image holds its captions' })
      .option('out', { type: 'string', demandOption: true, describe: 'index folder (created, or added to)' })
      .option('batch', { type: 'number', default: 64, describe: 'images per encoder run' }),
  async handler(args, ctx) {
    if (!args.dataset === !args.images) throw new DistillError('Give one source: --dataset <name> [--split test] or --images <folder>.', 2);
    let c: Collection;
    if (args.images) c = folderCollection(String(args.images));
    else {
      const ds = await loadDataset(
        String(args.dataset),
        {
          dataRoot: args.dataRoot as string | undefined,
          annotations: args.annotations as string | undefined,
          imageRoot: args.imageRoot as string | undefined,
        },
        ctx.container,
      );
      const split = ds.splits[String(args.split)];
      if (!split) throw new DistillError(`Dataset ${ds.name} has no split '${args.split}' (has: ${Object.keys(ds.splits).join(', ')}).`, 2);
      c = { source: `${ds.name}:${args.split}`, images: split.images.map((im) => ({ id: im.id, path: resolve(ds.imageRoot, im.path) })), captions: split.captions };
    }
    await initRuntime('auto', { quiet: true });
    const out = String(args.out);
    const existing = VectorIndex.exists(out) ? VectorIndex.open(out) : undefined;
    if (!existing && !args.model) throw new DistillError(`--model <exported model folder> is needed to create the index ${out}.`, 2);
    const model = existing ? await existing.loadModel(args.model as string | undefined) : await OnnxModel.load(String(args.model));
    const index = existing ?? VectorIndex.create(out, model);
    const t0 = performance.now();
    const added = await index.add(model, c, { batch: Number(args.batch) });
    index.save();
    await model.dispose();
    const s = (performance.now() - t0) / 1000;
    process.stdout.write(
      `${existing ? 'added to' : 'built'} ${out}: +${added.images} images, +${added.texts} captions from ${c.source} in ${s.toFixed(1)} s ` +
        `(now ${index.meta.images.length} images, ${index.meta.texts.length} captions; model ${index.meta.model.dir}, sha256 ${index.meta.model.hash.slice(0, 12)})\n`,
    );
  },
};

export const indexCommands: CliCommand[] = [indexBuildCommand];
