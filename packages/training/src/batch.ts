import { DistillError, tf, type SplitData } from '@distill/core';
import type { ImageLoader, PairBatch } from '@distill/data';
import type { TextTokenizer } from '@distill/student-architectures';
import { nonFiniteLossMessage } from './checkpoint.js';
import type { Method, MethodState } from './methods.js';
import type { StepBatch, StepHooks } from './step-engine.js';

/** One step's inputs: the engine's batch, plus what the losses read (same-group ids, teacher rows). */
export interface PreparedBatch {
  epoch: number;
  input: StepBatch;
  groups: Int32Array;
  teacherImage?: Float32Array;
  teacherText?: Float32Array;
}

/**
 * Turns the sampler's (image, caption) index batches into step inputs: pixels from the loader, token
 * ids cut to the batch's longest caption (the captions are tokenised once, up front), positive groups
 * and the teacher's rows.
 */
export class BatchMaker {
  private readonly enc: { ids: Int32Array; mask: Int32Array };
  private readonly captionLength: Int32Array;
  private readonly L: number;

  constructor(
    private readonly split: SplitData,
    tokenizer: Pick<TextTokenizer, 'encodeArrays'>,
    maxLength: number,
    private readonly loader: Pick<ImageLoader, 'load'>,
    private readonly teacher?: { images: Float32Array; texts: Float32Array; dim: number },
  ) {
    this.L = maxLength;
    this.enc = tokenizer.encodeArrays(split.captions.map((c) => c.text));
    this.captionLength = new Int32Array(split.captions.length);
    for (let c = 0; c < this.captionLength.length; c++) {
      let n = 0;
      for (let k = 0; k < maxLength; k++) n += this.enc.mask[c * maxLength + k];
      this.captionLength[c] = n;
    }
  }

  async make(batch: PairBatch, step: number): Promise<PreparedBatch> {
    const B = batch.captions.length;
    const L = this.L;
    const pixels = await this.loader.load(batch.images, 'train');
    // Dynamic padding: the batch is cut to its longest caption (padding positions are masked anyway).
    let Lb = 1;
    for (const c of batch.captions) Lb = Math.max(Lb, this.captionLength[c]);
    const ids = new Int32Array(B * Lb);
    const mask = new Int32Array(B * Lb);
    for (let i = 0; i < B; i++) {
      ids.set(this.enc.ids.subarray(batch.captions[i] * L, batch.captions[i] * L + Lb), i * Lb);
      mask.set(this.enc.mask.subarray(batch.captions[i] * L, batch.captions[i] * L + Lb), i * Lb);
    }
    const t = this.teacher;
    return {
      epoch: batch.epoch,
      input: { pixels, ids, mask, batch: B, length: Lb, step },
      groups: positiveGroups(batch.images, batch.captions, this.split),
      teacherImage: t ? gatherRows(t.images, batch.images, t.dim) : undefined,
      teacherText: t ? gatherRows(t.texts, batch.captions, t.dim) : undefined,
    };
  }
}

/**
 * The step's loss hooks for a method: the balancer (after the NaN check, which names the step) and the
 * losses in the form the engine runs, tfjs or graph. `components`/`weights` hold the last step's values.
 */
export function lossHooks(
  method: Pick<Method, 'loss'>,
  state: MethodState,
  b: PreparedBatch,
  where: { step: number; runDir: string },
): StepHooks & { components: Record<string, number>; weights: number[] } {
  const B = b.input.batch;
  const hooks = {
    components: {} as Record<string, number>,
    weights: [] as number[],
    balance(comps: Record<string, number>): number[] {
      hooks.components = comps;
      const names = Object.keys(comps);
      for (const n of names) {
        if (!Number.isFinite(comps[n]))
          throw new DistillError(
            nonFiniteLossMessage({
              loss: n,
              value: comps[n],
              step: where.step,
              epoch: b.epoch + 1,
              runDir: where.runDir,
            }),
          );
      }
      hooks.weights = state.balancer.weights(names.map((n) => comps[n]));
      return hooks.weights;
    },
    tfjsLoss(sI: tf.Tensor2D, sT: tf.Tensor2D): tf.Scalar {
      const dim = sI.shape[1];
      const teacherImage = b.teacherImage ? tf.tensor2d(b.teacherImage, [B, dim]) : undefined;
      const teacherText = b.teacherText ? tf.tensor2d(b.teacherText, [B, dim]) : undefined;
      const comps = method.loss(
        { studentImage: sI, studentText: sT, teacherImage, teacherText, imageIds: b.groups },
        state,
      );
      const names = Object.keys(comps);
      const w = hooks.balance(Object.fromEntries(names.map((n) => [n, comps[n].dataSync()[0]])));
      return names.map((n, i) => comps[n].mul(w[i])).reduce((x, y) => x.add(y)) as tf.Scalar;
    },
    graphFeeds: () =>
      state.graph.feeds({ batch: B, teacherImage: b.teacherImage, teacherText: b.teacherText, imageIds: b.groups }),
  };
  return hooks;
}

/**
 * Row i and row j of a batch are positives of each other when they show the same image or carry the
 * same caption text (the emoji benchmark's two drawings of one emoji share their captions): group id =
 * the first row of the batch they match.
 */
export function positiveGroups(
  images: Int32Array,
  captions: Int32Array,
  split: Pick<SplitData, 'captions'>,
): Int32Array {
  const byImage = new Map<number, number>();
  const byText = new Map<string, number>();
  const out = new Int32Array(images.length);
  for (let i = 0; i < images.length; i++) {
    const text = split.captions[captions[i]].text;
    const g = byImage.get(images[i]) ?? byText.get(text) ?? i;
    out[i] = g;
    if (!byImage.has(images[i])) byImage.set(images[i], g);
    if (!byText.has(text)) byText.set(text, g);
  }
  return out;
}

/** Rows `rows` of a row-major [n, dim] matrix, in order. */
export function gatherRows(src: Float32Array, rows: ArrayLike<number>, dim: number): Float32Array {
  const out = new Float32Array(rows.length * dim);
  for (let i = 0; i < rows.length; i++) out.set(src.subarray(rows[i] * dim, (rows[i] + 1) * dim), i * dim);
  return out;
}
