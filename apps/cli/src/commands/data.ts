import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { DistillError, registryByKind } from '@distill/core';
import { loadTokenizer, tokenizerReport, type TokenizerReport } from '@distill/student-architectures';
import { resolveConfig, trainStudentTokenizer } from '@distill/training';
import {
  buildGlyphs,
  datasetSummary,
  DATASETS,
  EMOJI_DEFAULT,
  EMOJI_XSTYLE,
  glyphsInfo,
  writeEmojiJsonl,
  type GlyphsManifest,
} from '@distill/data';
import type { CliCommand } from '../command.js';
import { datasetFromArgs, declareFlags, splitOf } from '../flags.js';

/** The table's flags that locate a file dataset's annotations and images. */
const DATASET_FILES = ['data-root', 'annotations', 'image-root'];

export const dataBuildCommand: CliCommand = {
  group: 'data',
  command: 'build <dataset>',
  describe:
    'Write an embedded dataset: emoji/emoji-xstyle as JSONL + images + manifest.json; glyphs (both variants) rasterised once into the distill cache',
  builder: (y) =>
    y
      .positional('dataset', {
        type: 'string',
        choices: ['emoji', 'emoji-xstyle', 'glyphs', 'glyphs-xstyle'],
        describe: 'embedded dataset',
      })
      .option('out', {
        type: 'string',
        describe:
          'output folder (default: data/<dataset>; glyphs: $DISTILL_CACHE_DIR or .cache/distill, where --dataset glyphs finds it)',
      })
      .option('sample', {
        type: 'number',
        describe: 'glyphs only: a small build with the first N concepts of each style (with --eval-size)',
      })
      .option('eval-size', { type: 'number', describe: 'glyphs only: val/test concepts (default 1000)' }),
  async handler(args) {
    const name = String(args.dataset);
    if (name === 'glyphs' || name === 'glyphs-xstyle') {
      const t0 = performance.now();
      const sample = args.sample as number | undefined,
        evalSize = args.evalSize as number | undefined;
      const r = await buildGlyphs({ out: args.out as string | undefined, sample, evalSize });
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      process.stderr.write(
        r.built
          ? `built glyphs into ${r.dir} in ${secs} s (${(r.manifest.bytes / 1e6).toFixed(1)} MB)\n`
          : `glyphs already built in ${r.dir} (same inputs): nothing to do\n`,
      );
      process.stdout.write(JSON.stringify(glyphsInfo(r.manifest, r.dir), null, 2) + '\n');
      return;
    }
    const cfg = name === 'emoji-xstyle' ? EMOJI_XSTYLE : name === 'emoji' ? EMOJI_DEFAULT : undefined;
    if (!cfg)
      throw new DistillError(
        `Only the embedded datasets can be built (emoji, emoji-xstyle, glyphs), not '${name}'.`,
        2,
      );
    const out = resolve(String(args.out ?? `data/${name}`));
    const t0 = performance.now();
    const manifest = writeEmojiJsonl(out, cfg);
    process.stderr.write(
      `wrote ${name} to ${out} in ${((performance.now() - t0) / 1000).toFixed(1)} s; load it with --dataset jsonl --annotations ${out}\n`,
    );
    process.stdout.write(JSON.stringify(manifest, null, 2) + '\n');
  },
};

export const dataInfoCommand: CliCommand = {
  group: 'data',
  command: 'info [dataset]',
  describe: 'Load a dataset and print its splits (images, captions) as JSON; without a name, list the formats',
  builder: (y, ctx) =>
    declareFlags(
      y.positional('dataset', { type: 'string', describe: `one of: ${DATASETS.map((d) => d.name).join(', ')}` }),
      ctx,
      DATASET_FILES,
    ),
  async handler(args, ctx) {
    if (!args.dataset) {
      for (const d of registryByKind(ctx.container, 'dataset').list())
        process.stdout.write(`${d.name.padEnd(14)} ${d.description}\n`);
      return;
    }
    const d = await datasetFromArgs(args, ctx.container);
    const glyphs = (d as { glyphs?: GlyphsManifest }).glyphs;
    const extra = glyphs ? { glyphs: glyphsInfo(glyphs, d.imageRoot) } : {};
    process.stdout.write(
      JSON.stringify(
        { name: d.name, imageRoot: d.imageRoot, manifestHash: d.manifestHash, splits: datasetSummary(d), ...extra },
        null,
        2,
      ) + '\n',
    );
  },
};

/** maxLength recorded beside a tokenizer.json (a saved student's student.json), if any. */
function savedMaxLength(tokenizer: string): number | undefined {
  const dir = existsSync(tokenizer) && statSync(tokenizer).isDirectory() ? tokenizer : dirname(tokenizer);
  const meta = join(dir, 'student.json');
  if (!existsSync(meta)) return undefined;
  const v = (JSON.parse(readFileSync(meta, 'utf8')) as { config?: { maxLength?: unknown } }).config?.maxLength;
  return typeof v === 'number' ? v : undefined;
}

/** The report as a person reads it. */
export function formatTokenizerReport(r: TokenizerReport, what: string): string {
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  return (
    [
      `${what}: ${r.vocabSize} entries, maxLength ${r.maxLength}`,
      `  ${r.captions} captions, ${r.words} word occurrences (${r.distinctWords} distinct words)`,
      `  one token: ${pct(r.wholeWordShare)} of word occurrences, ${pct(r.wholeDistinctShare)} of distinct words; [UNK] in ${pct(r.unknownShare)}`,
      `  tokens per caption ([CLS] and [SEP] included): mean ${r.meanTokens.toFixed(2)}, p99 ${r.p99Tokens}, max ${r.maxTokens}; truncated at ${r.maxLength}: ${pct(r.truncatedShare)}`,
      `  common words split: ${r.commonSplit.length ? r.commonSplit.map((x) => `${x.word} = ${x.tokens.join(' ')}`).join(', ') : 'none'}`,
      `  most frequent split words: ${r.topSplit.map((x) => `${x.word} (${x.count}) = ${x.tokens.join(' ')}`).join(', ') || 'none'}`,
    ].join('\n') + '\n'
  );
}

export const dataTokenizerReportCommand: CliCommand = {
  group: 'data',
  command: 'tokenizer-report <dataset>',
  describe:
    "How a tokenizer spells a dataset's captions: share of words that are one token, tokens per caption, share truncated (default: the tokenizer `distill train` would train)",
  builder: (y, ctx) =>
    declareFlags(
      y
        .positional('dataset', { type: 'string', describe: 'dataset name (emoji, glyphs, jsonl, ...)' })
        .option('tokenizer', {
          type: 'string',
          describe:
            'a tokenizer.json or a folder holding one (a saved student, a teacher, an export); default: train the student tokenizer on the train split',
        })
        .option('split', { type: 'string', default: 'train', describe: 'split whose captions are measured' })
        .option('vocab-size', {
          type: 'number',
          describe: "vocabulary budget when training (default: the training config's student.vocabSize)",
        })
        .option('max-length', {
          type: 'number',
          describe:
            "length captions are cut to (default: the folder's student.json, else the training config's student.maxLength)",
        })
        .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON' }),
      ctx,
      DATASET_FILES,
    ),
  async handler(args, ctx) {
    const d = await datasetFromArgs(args, ctx.container);
    const split = splitOf(d, String(args.split));
    const defaults = resolveConfig({ container: ctx.container }).student;
    const file = args.tokenizer as string | undefined;
    let what: string;
    let tok;
    if (file) {
      tok = loadTokenizer(file, {
        maxLength: (args.maxLength as number | undefined) ?? savedMaxLength(file) ?? defaults.maxLength,
      });
      what = file;
    } else {
      const train = d.splits.train;
      if (!train)
        throw new DistillError(
          `Dataset ${d.name} has no train split to train a tokenizer on: pass --tokenizer <tokenizer.json>.`,
          2,
        );
      const vocabSize = (args.vocabSize as number | undefined) ?? defaults.vocabSize;
      tok = loadTokenizer(
        trainStudentTokenizer(
          train.captions.map((c) => c.text),
          { vocabSize },
        ),
        { maxLength: (args.maxLength as number | undefined) ?? defaults.maxLength },
      );
      what = `student tokenizer trained on ${d.name} train (vocabSize ${vocabSize})`;
    }
    const r = tokenizerReport(
      tok,
      split.captions.map((c) => c.text),
    );
    process.stdout.write(
      args.json
        ? JSON.stringify({ dataset: d.name, split: String(args.split), tokenizer: file ?? null, ...r }) + '\n'
        : formatTokenizerReport(r, `${what} on ${d.name} ${args.split}`),
    );
  },
};

export const dataCommands: CliCommand[] = [dataBuildCommand, dataInfoCommand, dataTokenizerReportCommand];
