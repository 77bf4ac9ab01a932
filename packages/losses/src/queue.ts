import { DistillError, l2NormalizeRows, Rng, tf } from '@distill/core';

/**
 * A queue of K teacher keys (rows, unit norm), the negatives of contrastive distillation. Starts with
 * seeded random unit vectors; after each optimizer step the batch's normalised teacher features are
 * written at rows [ptr, ptr+B) (wrapping around, so any K >= B works) and ptr = (ptr + B) mod K.
 */
export class FeatureQueue {
  private data: Float32Array;
  /** tf copy of `data`, made when first asked for after a change (the onnx engine reads `rows` instead). */
  private keys?: tf.Tensor2D;
  ptr = 0;

  constructor(
    readonly size: number,
    readonly dim: number,
    seed = 0,
  ) {
    if (!Number.isInteger(size) || size <= 0)
      throw new DistillError(`Queue size must be a positive integer, got ${size}.`);
    const rng = new Rng(seed).fork('feature-queue');
    this.data = l2NormalizeRows(rng.normalArray(size * dim), dim);
  }

  /** [K, D] keys (owned by the queue: do not dispose; valid until the next enqueue or load). */
  get tensor(): tf.Tensor2D {
    this.keys ??= tf.keep(tf.tensor2d(this.data, [this.size, this.dim]));
    return this.keys;
  }

  /** [K, D] keys row-major, the queue's own array (read it, do not write it; changed in place by enqueue). */
  get rows(): Float32Array {
    return this.data;
  }

  private changed(): void {
    this.keys?.dispose();
    this.keys = undefined;
  }

  /** Enqueue B rows (row-major [B, D], already L2-normalised). */
  enqueue(rows: Float32Array, batch: number): void {
    if (rows.length !== batch * this.dim)
      throw new DistillError(`Queue enqueue: got ${rows.length} values for a batch of ${batch} x dim ${this.dim}.`);
    if (batch > this.size)
      throw new DistillError(
        `Queue size ${this.size} is smaller than the batch ${batch}: use a queue of at least the batch size.`,
      );
    for (let i = 0; i < batch; i++)
      this.data.set(rows.subarray(i * this.dim, (i + 1) * this.dim), ((this.ptr + i) % this.size) * this.dim);
    this.ptr = (this.ptr + batch) % this.size;
    this.changed();
  }

  state(): { ptr: number; data: Float32Array } {
    return { ptr: this.ptr, data: this.data.slice() };
  }

  load(s: { ptr: number; data: Float32Array }): void {
    if (s.data.length !== this.size * this.dim)
      throw new DistillError(`Queue state has ${s.data.length} values, expected ${this.size} x ${this.dim}.`);
    this.data = Float32Array.from(s.data);
    this.ptr = s.ptr;
    this.changed();
  }

  /** Start from given keys (e.g. a fixture's initial queue). */
  static fromKeys(keys: Float32Array, size: number, dim: number): FeatureQueue {
    const q = new FeatureQueue(size, dim);
    q.load({ ptr: 0, data: keys });
    return q;
  }

  dispose(): void {
    this.changed();
  }
}
