import { resolve } from 'node:path';
import { DistillError, registryByKind } from '@distill/core';
import { buildGlyphs, datasetSummary, DATASETS, EMOJI_DEFAULT, EMOJI_XSTYLE, glyphsInfo, loadDataset, writeEmojiJsonl, type GlyphsManifest } from '@distill/data';
import type { CliCommand } from '../command.js';

export const dataBuildCommand: CliCommand = {
  group: 'data',
  command: 'build <dataset>',
  describe: 'Write an embedded dataset: emoji/emoji-xstyle as JSONL + images + manifest.json; glyphs (both variants) rasterised once into the distill cache',
  builder: (y) =>
    y
      .positional('dataset', { type: 'string', choices: ['emoji', 'emoji-xstyle', 'glyphs', 'glyphs-xstyle'], describe: 'embedded dataset' })
      .option('out', { type: 'string', describe: 'output folder (default: data/<dataset>; glyphs: $DISTILL_CACHE_DIR or .cache/distill, where --dataset glyphs finds it)' })
      .option('sample', { type: 'number', describe: 'glyphs only: a small build with the first N concepts of each style (with --eval-size)' })
      .option('eval-size', { type: 'number', describe: 'glyphs only: val/test concepts (default 1000)' }),
  async handler(args) {
    const name = String(args.dataset);
    if (name === 'glyphs' || name === 'glyphs-xstyle') {
      const t0 = performance.now();
      const sample = args.sample as number | undefined, evalSize = args.evalSize as number | undefined;
      const r = await buildGlyphs({ out: args.out as string | undefined, sample, evalSize });
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      process.stderr.write(r.built ? `built glyphs into ${r.dir} in ${secs} s (${(r.manifest.bytes / 1e6).toFixed(1)} MB)\n` : `glyphs already built in ${r.dir} (same inputs): nothing to do\n`);
      process.stdout.write(JSON.stringify(glyphsInfo(r.manifest, r.dir), null, 2) + '\n');
      return;
    }
    const cfg = name === 'emoji-xstyle' ? EMOJI_XSTYLE : name === 'emoji' ? EMOJI_DEFAULT : undefined;
    if (!cfg) throw new DistillError(`Only the embedded datasets can be built (emoji, emoji-xstyle, glyphs), not '${name}'.`, 2);
    const out = resolve(String(args.out ?? `data/${name}`));
    const t0 = performance.now();
    const manifest = writeEmojiJsonl(out, cfg);
    process.stderr.write(`wrote ${name} to ${out} in ${((performance.now() - t0) / 1000).toFixed(1)} s; load it with --dataset jsonl --annotations ${out}\n`);
    process.stdout.write(JSON.stringify(manifest, null, 2) + '\n');
  },
};

export const dataInfoCommand: CliCommand = {
  group: 'data',
  command: 'info [dataset]',
  describe: 'Load a dataset and print its splits (images, captions) as JSON; without a name, list the formats',
  builder: (y) =>
    y
      .positional('dataset', { type: 'string', describe: `one of: ${DATASETS.map((d) => d.name).join(', ')}` })
      .option('data-root', { type: 'string', describe: 'folder with the annotations (and images)' })
      .option('annotations', { type: 'string', describe: 'annotation file or folder' })
      .option('image-root', { type: 'string', describe: 'folder that relative image paths resolve against' }),
  async handler(args, ctx) {
    if (!args.dataset) {
      for (const d of registryByKind(ctx.container, 'dataset').list()) process.stdout.write(`${d.name.padEnd(14)} ${d.description}\n`);
      return;
    }
    const d = await loadDataset(
      String(args.dataset),
      {
        dataRoot: args.dataRoot as string | undefined,
        annotations: args.annotations as string | undefined,
        imageRoot: args.imageRoot as string | undefined,
      },
      ctx.container,
    );
    const glyphs = (d as { glyphs?: GlyphsManifest }).glyphs;
    const extra = glyphs ? { glyphs: glyphsInfo(glyphs, d.imageRoot) } : {};
    process.stdout.write(JSON.stringify({ name: d.name, imageRoot: d.imageRoot, manifestHash: d.manifestHash, splits: datasetSummary(d), ...extra }, null, 2) + '\n');
  },
};

export const dataCommands: CliCommand[] = [dataBuildCommand, dataInfoCommand];
