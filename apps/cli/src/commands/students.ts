import { existsSync } from 'node:fs';
import { DistillError, initRuntime } from '@distill/core';
import { tfjsBackendFor, type TrainBackend } from '@distill/training';
import { countStudentParams, PAIRS, PRESETS, resolveStudentConfig, runHfParity } from '@distill/student-architectures';
import type { CliCommand } from '../command.js';
import { declareFlags } from '../flags.js';

const fmt = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(1)}K`);

/** `distill models`: every student pair, its presets and parameter counts (computed from shapes). */
export const modelsCommand: CliCommand = {
  command: 'models',
  describe: 'List student pairs, size presets and their parameter counts',
  builder: (y) =>
    y
      .option('embed-dim', { type: 'number', default: 768, describe: "projection dim (the teacher's dim)" })
      .option('vocab-size', { type: 'number', describe: "text vocabulary size (default: each preset's)" })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON object' }),
  handler(args) {
    const embedDim = args.embedDim as number;
    const vocabSize = args.vocabSize as number | undefined;
    const pairs = PAIRS.map((p) => ({
      name: p.name,
      description: p.description,
      image: p.image,
      text: p.text,
      presets: Object.fromEntries(
        PRESETS.map((preset) => {
          const cfg = resolveStudentConfig(p.name, { preset, embedDim, vocabSize });
          return [
            preset,
            {
              parameters: countStudentParams(cfg),
              imageSize: cfg.image.config.imageSize,
              maxLength: cfg.maxLength,
              vocabSize: (cfg.text.config as { vocabSize: number }).vocabSize,
            },
          ];
        }),
      ),
    }));
    if (args.json) {
      process.stdout.write(JSON.stringify({ embedDim, pairs }, null, 2) + '\n');
      return;
    }
    const lines = [
      `embedDim ${embedDim}`,
      `${'pair'.padEnd(16)}${PRESETS.map((p) => p.padStart(10)).join('')}  description`,
    ];
    for (const p of pairs)
      lines.push(
        `${p.name.padEnd(16)}${PRESETS.map((pr) => fmt(p.presets[pr].parameters.total).padStart(10)).join('')}  ${p.description}`,
      );
    process.stdout.write(lines.join('\n') + '\n');
  },
};

/** `distill parity hf <dir>`: run a Hugging Face encoder folder against its reference.json. */
export const parityHfCommand: CliCommand = {
  group: 'parity',
  command: 'hf <dir>',
  describe:
    'Load an HF ViT/DeiT/BERT/ALBERT save_pretrained folder, run reference.json inputs, print max abs diffs as JSON',
  builder: (y, ctx) =>
    declareFlags(
      y.positional('dir', { type: 'string', describe: 'folder with config.json, model.safetensors, reference.json' }),
      ctx,
      ['backend'],
      { defaults: { backend: 'auto' }, notes: { backend: 'the tfjs backend the encoders run on' } },
    ),
  async handler(args) {
    const dir = args.dir as string;
    if (!existsSync(dir)) throw new DistillError(`Folder not found: ${dir}`, 2);
    await initRuntime(tfjsBackendFor(args.backend as TrainBackend), { quiet: true });
    process.stdout.write(JSON.stringify(runHfParity(dir)) + '\n');
  },
};

export const studentCommands: CliCommand[] = [modelsCommand, parityHfCommand];
