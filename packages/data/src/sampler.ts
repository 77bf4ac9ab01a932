import { DistillError, Rng, type SplitData } from '@distill/base';

/**
 * Seeded, resumable batches of (image, caption) pairs. A sample is a caption row of the split
 * (its stable index, e.g. the row of cached teacher text features) together with that caption's image.
 * Epoch e visits the rows in `new Rng(seed).fork('epoch-' + e).permutation(n)` (or in order when
 * shuffle is off), so the order depends only on (seed, epoch) and the position is just {epoch, cursor}.
 */
export interface SamplerOptions {
  batchSize: number;
  seed?: number;
  /** Shuffle every epoch (default true). Off = rows in order, as the official DSMD loader. */
  shuffle?: boolean;
  /** Drop the last incomplete batch (default true, as the official loader). */
  dropLast?: boolean;
}

export interface SamplerState {
  epoch: number;
  /** Batches already taken in this epoch. */
  cursor: number;
}

export interface PairBatch {
  epoch: number;
  /** Batch number within the epoch. */
  step: number;
  /** Caption row indices into the split (stable: index cached teacher text features with them). */
  captions: Int32Array;
  /** Image index (into split.images) of each caption. */
  images: Int32Array;
}

export class PairSampler {
  readonly batchSize: number;
  readonly seed: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  private readonly n: number;
  private readonly imageOf: Int32Array;
  private epoch = 0;
  private cursor = 0;
  private order?: Int32Array;

  constructor(split: Pick<SplitData, 'captions'>, opts: SamplerOptions) {
    this.n = split.captions.length;
    this.imageOf = Int32Array.from(split.captions, (c) => c.image);
    this.batchSize = opts.batchSize;
    this.seed = opts.seed ?? 0;
    this.shuffle = opts.shuffle ?? true;
    this.dropLast = opts.dropLast ?? true;
    if (!Number.isInteger(this.batchSize) || this.batchSize <= 0)
      throw new DistillError(`Batch size must be a positive integer, got ${opts.batchSize}.`);
    if (this.batchesPerEpoch === 0) {
      throw new DistillError(
        `The split has ${this.n} captions, fewer than one batch of ${this.batchSize} (drop_last): lower --batch-size.`,
      );
    }
  }

  get batchesPerEpoch(): number {
    return this.dropLast ? Math.floor(this.n / this.batchSize) : Math.ceil(this.n / this.batchSize);
  }

  /** The order of caption rows in an epoch (deterministic in seed and epoch). */
  epochOrder(epoch: number): Int32Array {
    if (!this.shuffle) return Int32Array.from({ length: this.n }, (_, i) => i);
    return new Rng(this.seed).fork(`epoch-${epoch}`).permutation(this.n);
  }

  state(): SamplerState {
    return { epoch: this.epoch, cursor: this.cursor };
  }

  load(s: SamplerState): void {
    if (
      !Number.isInteger(s?.epoch) ||
      !Number.isInteger(s?.cursor) ||
      s.epoch < 0 ||
      s.cursor < 0 ||
      s.cursor > this.batchesPerEpoch
    ) {
      throw new DistillError(
        `Invalid sampler state ${JSON.stringify(s)} (batches per epoch: ${this.batchesPerEpoch}).`,
      );
    }
    this.epoch = s.epoch;
    this.cursor = s.cursor;
    this.order = undefined;
  }

  /** The next batch; rolls over to the next epoch after the last one. */
  next(): PairBatch {
    if (this.cursor >= this.batchesPerEpoch) {
      this.epoch++;
      this.cursor = 0;
      this.order = undefined;
    }
    this.order ??= this.epochOrder(this.epoch);
    const start = this.cursor * this.batchSize;
    const captions = this.order.slice(start, Math.min(this.n, start + this.batchSize));
    const images = captions.map((c) => this.imageOf[c]);
    return { epoch: this.epoch, step: this.cursor++, captions, images };
  }

  /** The remaining batches of the current epoch (then the state points at the next epoch's start). */
  *epochBatches(): Generator<PairBatch> {
    if (this.cursor >= this.batchesPerEpoch) {
      this.epoch++;
      this.cursor = 0;
      this.order = undefined;
    }
    const e = this.epoch;
    while (this.epoch === e && this.cursor < this.batchesPerEpoch) yield this.next();
  }
}
