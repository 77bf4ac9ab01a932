import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DistillError } from '@distill/core';
import {
  DEFAULT_CONFIG,
  PRESETS,
  readConfigFile,
  resolveConfig,
  STUDENT_SIZES,
  trainConfigSchema,
  validateConfig,
} from './config.js';
import { createTrainingContainer as builtinsContainer } from './registries.js';

/** This test's own registries (the built-ins; there is no global container). */
const builtins = builtinsContainer();

/** The message of the DistillError that `f` throws (fails the test if it throws anything else). */
function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DistillError);
    expect((e as DistillError).exitCode).toBe(2);
    const msg = (e as Error).message;
    expect(msg).not.toContain('\n');
    return msg;
  }
  throw new Error('expected a DistillError, nothing was thrown');
}

function yamlConfig(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'distill-cfg-')), 'exp.yaml');
  writeFileSync(file, text);
  return file;
}

describe('experiment config', () => {
  it('layers defaults <- preset <- file <- flags', () => {
    const c = resolveConfig({
      container: builtins,
      preset: 'smoke',
      file: { batchSize: 16, lossOptions: { queueSize: 64 } },
      overrides: { seed: 7, student: { pair: 'deit-albert' } },
    });
    expect(c.batchSize).toBe(16);
    expect(c.lossOptions).toEqual({ ...DEFAULT_CONFIG.lossOptions, ...PRESETS.smoke.lossOptions, queueSize: 64 });
    expect(c.seed).toBe(7);
    expect(c.student.pair).toBe('deit-albert');
    expect(c.student.preset).toBe('tiny');
    expect(c.schedule.epochs).toBe(2);
  });

  it('the paper preset carries the paper defaults', () => {
    const c = resolveConfig({ container: builtins, preset: 'paper' });
    expect([
      c.optimizer.lr,
      c.optimizer.weightDecay,
      c.batchSize,
      c.schedule.epochs,
      c.schedule.decayEpoch,
      c.schedule.decayFactor,
    ]).toEqual([1e-4, 1e-4, 64, 20, 10, 0.1]);
    expect([c.lossOptions.queueSize, c.lossOptions.temperature, c.student.preset, c.teacher.name]).toEqual([
      8192,
      0.05,
      'base',
      'beit3',
    ]);
  });

  it('every preset and the defaults pass the schema', () => {
    for (const name of Object.keys(PRESETS))
      expect(() => resolveConfig({ container: builtins, preset: name })).not.toThrow();
    expect(trainConfigSchema(builtins).safeParse(DEFAULT_CONFIG).success).toBe(true);
  });

  it('rejects bad values and unknown keys with the key path, what was expected and what was found', () => {
    expect(errorOf(() => resolveConfig({ container: builtins, overrides: { batchSize: 0 } }))).toBe(
      'Invalid config: batchSize: expected an integer >= 1, got 0 (from the command line).',
    );
    expect(
      errorOf(() =>
        resolveConfig({ container: builtins, overrides: { batchSize: 128, lossOptions: { queueSize: 64 } } }),
      ),
    ).toMatch(/lossOptions\.queueSize: must be >= batchSize \(128\), got 64/);
    expect(errorOf(() => resolveConfig({ container: builtins, overrides: { lr: 1 } as never }))).toMatch(
      /^Invalid config: lr: unknown key \(known keys: seed, backend, .*fastKernels, plugins, pluginHashes\)/,
    );
    expect(errorOf(() => resolveConfig({ container: builtins, overrides: { threads: -1 } }))).toMatch(
      /threads: expected an integer >= 0, got -1/,
    );
    expect(
      errorOf(() => resolveConfig({ container: builtins, overrides: { schedule: { decayFactor: 1.5 } } })),
    ).toMatch(/schedule\.decayFactor: expected a number in \(0, 1\], got 1\.5/);
    expect(
      errorOf(() => resolveConfig({ container: builtins, overrides: { optimizer: { betas: [0.9] as never } } })),
    ).toMatch(/optimizer\.betas: expected two numbers in \[0, 1\).*got the list \[0\.9\]/);
    expect(errorOf(() => resolveConfig({ container: builtins, overrides: { student: null as never } }))).toMatch(
      /student: expected a mapping with keys pair, preset, .*got null/,
    );
  });

  it('unknown presets list the presets; a student size given as a preset points to --size', () => {
    expect(errorOf(() => resolveConfig({ container: builtins, preset: 'huge' }))).toBe(
      "Unknown preset 'huge'. Available: emoji, smoke, emoji-teacher, glyphs-teacher, glyphs, paper.",
    );
    expect(errorOf(() => resolveConfig({ container: builtins, preset: 'base' }))).toMatch(
      /'base' is a student size: use --size base/,
    );
    expect(errorOf(() => resolveConfig({ container: builtins, preset: 'toString' }))).toMatch(
      /Unknown preset 'toString'/,
    );
  });

  it('enums list their valid choices', () => {
    expect(errorOf(() => resolveConfig({ container: builtins, overrides: { backend: 'gpu' as never } }))).toMatch(
      /backend: expected one of auto, onnx, tensorflow, wasm, cpu, got the string "gpu"/,
    );
    expect(errorOf(() => resolveConfig({ container: builtins, overrides: { student: { pair: 'vit-gpt' } } }))).toMatch(
      /student\.pair: expected one of vit-bert, deit-albert, resnet-bert, vit-textcnn, resnet-textcnn, mobilenet-bert, mobilenet-glove, vit-glove, got the string "vit-gpt"/,
    );
    expect(
      errorOf(() => resolveConfig({ container: builtins, overrides: { student: { preset: 'huge' as never } } })),
    ).toMatch(/student\.preset: expected one of tiny, small, base, got the string "huge"/);
    expect(errorOf(() => resolveConfig({ container: builtins, overrides: { dataset: { name: 'flickr' } } }))).toMatch(
      /dataset\.name: expected one of emoji, .*flickr30k.*got the string "flickr"/,
    );
    expect(errorOf(() => resolveConfig({ container: builtins, overrides: { balancer: 'dwa' } }))).toMatch(
      /balancer: expected one of dsmd-paper, dsmd-official, static/,
    );
    expect(errorOf(() => resolveConfig({ container: builtins, overrides: { teacher: { name: 'clipp' } } }))).toMatch(
      /teacher\.name: expected one of clip, beit3, features, emoji, glyphs, glyphs-v2, glyphs-v3, student \(or any name with a saved-student teacher\.model\), got the string "clipp"/,
    );
    expect(errorOf(() => resolveConfig({ container: builtins, overrides: { losses: 'dsmd,kd' } }))).toMatch(
      /losses: expected a method \(dsmd, dsmd-official, dcd, kd, fitnet, rkd, clip-kd, none\) or a list of DSMD components \(cd, fd, sd, hnd\), got the string "dsmd,kd"/,
    );
    expect(STUDENT_SIZES).toEqual(['tiny', 'small', 'base']);
  });

  it("the issue's YAML inputs each get a one-line error naming the key and the file", () => {
    const err = (yaml: string) => {
      const file = yamlConfig(yaml);
      return errorOf(() => resolveConfig({ container: builtins, file: readConfigFile(file), fileName: file }));
    };
    const nested = err('schedule:\n  epoch: 3\n');
    expect(nested).toMatch(
      /^Invalid config: schedule\.epoch: unknown key \(did you mean 'epochs'\?\) \(schedule takes epochs, decayEpoch, decayFactor, warmupSteps\) \(from \/.*exp\.yaml\)\.$/,
    );
    expect(err('baseline: "false"\n')).toMatch(
      /^Invalid config: baseline: expected true or false, got the string "false" \(write it without quotes\)/,
    );
    expect(err('seed: abc\n')).toMatch(/^Invalid config: seed: expected an integer >= 0, got the string "abc" \(from/);
    expect(err('optimizer:\n  lr: .inf\n')).toMatch(
      /optimizer\.lr: expected a number > 0, got Infinity \(numbers must be finite\)/,
    );
    expect(err('lossOptions:\n  temperature: .nan\n')).toMatch(
      /lossOptions\.temperature: expected a number > 0, got NaN \(numbers must be finite\)/,
    );
    expect(err('lossOptions:\n  margin: -.inf\n')).toMatch(
      /lossOptions\.margin: expected a finite number, got -Infinity/,
    );
    expect(err('batchSize: "32"\n')).toMatch(
      /batchSize: expected an integer >= 1, got the string "32" \(write it without quotes\)/,
    );
    expect(err('losses: [dsmd, kd]\n')).toMatch(/losses: expected a method .* got the list \["dsmd","kd"\]/);
    // Several problems: all of them, still on one line.
    expect(err('seed: abc\nbaseline: "no"\nschedule: { epoch: 3 }\n').split('; ')).toHaveLength(3);
  });

  it('a YAML list of DSMD components is joined into the same comma list as --losses cd,fd', () => {
    const file = yamlConfig('losses: [cd, fd]\n');
    expect(resolveConfig({ container: builtins, file: readConfigFile(file) }).losses).toBe('cd,fd');
    expect(resolveConfig({ container: builtins, overrides: { losses: 'cd,fd' } }).losses).toBe('cd,fd');
  });

  it('flags win over the file, and the error names the layer that set the bad value', () => {
    expect(
      errorOf(() =>
        resolveConfig({ container: builtins, file: { seed: 1 }, fileName: 'exp.yaml', overrides: { seed: 1.5 } }),
      ),
    ).toMatch(/seed: expected an integer >= 0, got 1\.5 \(from the command line\)/);
    expect(
      errorOf(() => resolveConfig({ container: builtins, file: { seed: 1.5 }, fileName: 'exp.yaml', overrides: {} })),
    ).toMatch(/\(from exp\.yaml\)/);
  });

  it("encoder overrides must name settings of the pair's encoders, with the same kind of value", () => {
    expect(
      resolveConfig({
        container: builtins,
        overrides: { student: { overrides: { image: { hiddenSize: 32, numAttentionHeads: 2 } } } },
      }).student.overrides?.image,
    ).toEqual({ hiddenSize: 32, numAttentionHeads: 2 });
    const m = errorOf(() =>
      resolveConfig({
        container: builtins,
        overrides: {
          student: { pair: 'vit-textcnn', overrides: { image: { hiddenSize: '64' }, text: { numHiddenLayers: 2 } } },
        },
      }),
    );
    expect(m).toMatch(/student\.overrides\.image\.hiddenSize: expected a number like \d+, got the string "64"/);
    expect(m).toMatch(/student\.overrides\.text\.numHiddenLayers: unknown textcnn setting \(textcnn takes .*filters/);
  });

  it('validateConfig re-checks a config read back from a run folder', () => {
    const good = resolveConfig({ container: builtins, preset: 'smoke' });
    expect(validateConfig(structuredClone(good), builtins)).toEqual(good);
    expect(
      errorOf(() => validateConfig({ ...good, schedule: { ...good.schedule, epoch: 3 } } as never, builtins)),
    ).toMatch(/schedule\.epoch: unknown key/);
  });

  it('an unreadable or malformed config file is a DistillError naming the file', () => {
    expect(errorOf(() => readConfigFile('/nonexistent/exp.yaml'))).toBe('Config file not found: /nonexistent/exp.yaml');
    expect(errorOf(() => readConfigFile(yamlConfig('- a\n- b\n')))).toMatch(
      /Could not parse config .*exp\.yaml: the top level must be a mapping/,
    );
    expect(errorOf(() => readConfigFile(tmpdir()))).toMatch(/Cannot read config file .*EISDIR/);
  });
});
