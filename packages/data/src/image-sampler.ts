import { DistillError, Rng, type SplitData } from '@distill/base';
import type { PairBatch, SamplerState } from './sampler.js';

/**
 * One pass over the IMAGES per epoch, each paired with one of its captions (drawn per epoch), as
 * CLIP-style training does on multi-caption data. For the emoji benchmark (two drawings and ~6
 * captions per emoji) this makes an epoch 6x shorter than a pass over every caption, for the same
 * coverage of images. Deterministic in (seed, epoch); the position is {epoch, cursor} like PairSampler's.
 */
export class ImagePairSampler {
  private readonly captionsOf: Int32Array[];
  private epoch = 0;
  private cursor = 0;
  private plan?: { images: Int32Array; captions: Int32Array };

  constructor(
    split: Pick<SplitData, 'images' | 'captions'>,
    readonly batchSize: number,
    readonly seed: number,
    readonly dropLast = true,
  ) {
    const lists: number[][] = split.images.map(() => []);
    split.captions.forEach((c, i) => lists[c.image].push(i));
    const empty = lists.findIndex((l) => l.length === 0);
    if (empty >= 0)
      throw new DistillError(
        `Image ${split.images[empty].id} has no caption: every training image needs at least one.`,
      );
    this.captionsOf = lists.map((l) => Int32Array.from(l));
    if (!Number.isInteger(batchSize) || batchSize <= 0)
      throw new DistillError(`Batch size must be a positive integer, got ${batchSize}.`);
    if (this.batchesPerEpoch === 0)
      throw new DistillError(
        `The split has ${split.images.length} images, fewer than one batch of ${batchSize}: lower --batch-size.`,
      );
  }

  get batchesPerEpoch(): number {
    const n = this.captionsOf.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  private planFor(epoch: number) {
    const root = new Rng(this.seed);
    const images = root.fork(`image-epoch-${epoch}`).permutation(this.captionsOf.length);
    const pick = root.fork(`caption-epoch-${epoch}`);
    const captions = Int32Array.from(images, (im) => this.captionsOf[im][pick.int(this.captionsOf[im].length)]);
    return { images, captions };
  }

  state(): SamplerState {
    return { epoch: this.epoch, cursor: this.cursor };
  }

  load(s: SamplerState): void {
    if (!Number.isInteger(s?.epoch) || !Number.isInteger(s?.cursor) || s.cursor > this.batchesPerEpoch)
      throw new DistillError(`Invalid sampler state ${JSON.stringify(s)}.`);
    this.epoch = s.epoch;
    this.cursor = s.cursor;
    this.plan = undefined;
  }

  next(): PairBatch {
    if (this.cursor >= this.batchesPerEpoch) {
      this.epoch++;
      this.cursor = 0;
      this.plan = undefined;
    }
    this.plan ??= this.planFor(this.epoch);
    const start = this.cursor * this.batchSize;
    const end = Math.min(this.captionsOf.length, start + this.batchSize);
    return {
      epoch: this.epoch,
      step: this.cursor++,
      images: this.plan.images.slice(start, end),
      captions: this.plan.captions.slice(start, end),
    };
  }
}
