import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DistillError, initRuntime } from '@distill/core';
import { folderCollection, OnnxModel, VectorIndex, type Collection } from '@distill/serve';
import type { CliCommand } from '../command.js';
import { datasetFromArgs, declareFlags, splitOf } from '../flags.js';

export const indexBuildCommand: CliCommand = {
  group: 'index',
  command: 'build',
  describe:
    'Embed a dataset split or a folder of images with an exported model into an on-disk vector index (adds to an existing one; a rerun continues a stopped build)',
  builder: (y, ctx) =>
    declareFlags(
      y
        .option('model', {
          type: 'string',
          describe: 'exported model folder (distill export); default: the one that built --out',
        })
        .option('split', { type: 'string', default: 'test', describe: 'split of --dataset' })
        .option('images', {
          type: 'string',
          describe:
            'a folder of images, searched recursively (JPEG, PNG, WebP, GIF, SVG, AVIF, TIFF); <name>.txt beside an image holds its captions (optional)',
        })
        .option('out', { type: 'string', demandOption: true, describe: 'index folder (created, or added to)' })
        .option('batch', { type: 'number', default: 64, describe: 'images per encoder run' })
        .option('commit-every', {
          type: 'number',
          default: 2048,
          describe: 'save to disk after this many images (and at least every 30 s): a killed build reruns from there',
        })
        .option('thumbnails', {
          type: 'boolean',
          default: true,
          describe:
            'write 256 px WebP thumbnails for distill serve and distill site (--no-thumbnails: made on first request)',
        }),
      ctx,
      ['dataset', 'data-root', 'annotations', 'image-root', 'skip-bad-images'],
      {
        defaults: { 'skip-bad-images': false },
        notes: {
          dataset: 'see distill list dataset; or --images',
          'skip-bad-images': 'listed in <out>/skipped-images.txt',
        },
      },
    ),
  async handler(args, ctx) {
    if (!args.dataset === !args.images)
      throw new DistillError('Give one source: --dataset <name> [--split test] or --images <folder>.', 2);
    for (const k of ['batch', 'commitEvery'] as const) {
      const v = Number(args[k]);
      if (!Number.isInteger(v) || v < 1)
        throw new DistillError(
          `--${k === 'batch' ? 'batch' : 'commit-every'} must be a positive integer, got ${String(args[k])}.`,
          2,
        );
    }
    let c: Collection;
    if (args.images) c = folderCollection(String(args.images));
    else {
      const ds = await datasetFromArgs(args, ctx.container);
      const split = splitOf(ds, String(args.split));
      c = {
        source: `${ds.name}:${args.split}`,
        images: split.images.map((im) => ({ id: im.id, path: resolve(ds.imageRoot, im.path) })),
        captions: split.captions,
      };
    }
    await initRuntime('auto', { quiet: true });
    const out = String(args.out);
    const existing = VectorIndex.exists(out) ? VectorIndex.open(out) : undefined;
    if (!existing && !args.model)
      throw new DistillError(`--model <exported model folder> is needed to create the index ${out}.`, 2);
    const model = existing
      ? await existing.loadModel(args.model as string | undefined)
      : await OnnxModel.load(String(args.model));
    const index = existing ?? VectorIndex.create(out, model);
    const t0 = performance.now();
    let stop = false;
    const onSignal = () => {
      if (stop) return;
      stop = true;
      process.stderr.write('\nstopping: saving what is embedded (a rerun continues from there)\n');
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      const r = await index.add(model, c, {
        batch: Number(args.batch),
        skipBadImages: Boolean(args.skipBadImages),
        commitEvery: Number(args.commitEvery),
        thumbnails: args.thumbnails !== false,
        stop: () => stop,
      });
      index.save();
      const s = (performance.now() - t0) / 1000;
      const notes: string[] = [];
      if (r.done) notes.push(`${r.done} already done`);
      if (r.duplicates.length)
        notes.push(
          `${r.duplicates.length} identical to an indexed picture (${r.duplicates
            .slice(0, 3)
            .map((d) => `${d.name} = ${d.of}`)
            .join(', ')}${r.duplicates.length > 3 ? ', ...' : ''}): indexed once`,
        );
      if (r.collisions.length)
        notes.push(
          `${r.collisions.length} name(s) also in another source with a different picture (${r.collisions
            .slice(0, 3)
            .map((x) => `${x.name} in ${x.other}`)
            .join(', ')}${r.collisions.length > 3 ? ', ...' : ''}): both kept, under different ids`,
        );
      const report = join(out, 'skipped-images.txt');
      if (r.skipped.length) {
        writeFileSync(report, r.skipped.map((x) => `${x.path}\t${x.why}`).join('\n') + '\n');
        notes.push(`${r.skipped.length} unreadable image(s) skipped: listed in ${report}`);
      }
      process.stdout.write(
        `${existing ? 'added to' : 'built'} ${out}: +${r.images} images, +${r.texts} captions from ${c.source} in ${s.toFixed(1)} s${notes.length ? ` (${notes.join('; ')})` : ''} ` +
          `(now ${index.meta.images.length} images, ${index.meta.texts.length} captions; model ${index.meta.model.dir}, sha256 ${index.meta.model.hash.slice(0, 12)})\n`,
      );
      if (r.stopped) {
        process.stderr.write(`stopped before the end: rerun the same command to continue.\n`);
        return 130;
      }
    } finally {
      index.release();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await model.dispose();
    }
  },
};

export const indexCommands: CliCommand[] = [indexBuildCommand];
