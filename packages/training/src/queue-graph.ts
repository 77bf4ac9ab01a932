/**
 * The feature queues of contrastive distillation on the device, for the resident (WebGPU) step.
 * The two [K, D] queues live in onnxruntime tensors (`gpu-buffer` outputs fed back as inputs); the
 * enqueue of a batch's teacher rows is an ONNX graph, a ring update
 *   queue'[(ptr + i) mod K] = rows[i]  (i < B)
 * as one `ScatterND` per queue (no reduction; WebGPU runs it), with the B row indices an int64 input
 * computed on the host from the pointer: per step B x 8 bytes of indices and the B x D teacher rows
 * go up, not the 2 x K x D queues. The host keeps the pointer; the queues' values come to the host
 * (`flush`, `readToHost`) at checkpoint time only, into the method's `FeatureQueue`s, so checkpoints
 * keep today's format (`queue/image`, `queue/text`, `queuePtr`).
 *
 * The enqueue of step t runs lazily, before the queues are next read (the next step's `feeds()` or a
 * `flush()`): the trainer's `afterStep` is synchronous, and the order of the updates is what counts.
 */
import { DistillError, disposeDeviceTensor, OnnxRunner, readToHost, type OrtTensor } from '@distill/core';
import { encodeModel } from '@distill/autodiff';
import type { FeatureQueue } from '@distill/losses';

/** The enqueue graph of two [K, D] queues and a batch of B rows: inputs image_queue, text_queue, image_rows, text_rows, indices [B, 1] int64. */
export function buildEnqueueGraph(K: number, D: number, B: number): Uint8Array {
  const f = (name: string, shape: number[]) => ({ name, dtype: 'float32' as const, shape });
  return encodeModel({
    nodes: [
      {
        op: 'ScatterND',
        name: 'enqueue_image',
        inputs: ['image_queue', 'indices', 'image_rows'],
        outputs: ['image_queue_out'],
      },
      {
        op: 'ScatterND',
        name: 'enqueue_text',
        inputs: ['text_queue', 'indices', 'text_rows'],
        outputs: ['text_queue_out'],
      },
    ],
    initializers: [],
    inputs: [
      f('image_queue', [K, D]),
      f('text_queue', [K, D]),
      f('image_rows', [B, D]),
      f('text_rows', [B, D]),
      { name: 'indices', dtype: 'int64', shape: [B, 1] },
    ],
    outputs: [f('image_queue_out', [K, D]), f('text_queue_out', [K, D])],
    opset: 20,
  });
}

/** The row indices (ptr + i) mod K, i < B, as ScatterND's [B, 1] int64 indices. */
export function ringIndices(ptr: number, batch: number, K: number): BigInt64Array {
  return BigInt64Array.from({ length: batch }, (_, i) => BigInt((ptr + i) % K));
}

/** A method's image and text queues on the device (see the file's comment); `host` holds them between checkpoints. */
export class DeviceQueues {
  /** The queues' rows on the device (made from the host queues on first use). */
  private device?: { image: OrtTensor; text: OrtTensor };
  /** Enqueues not yet run (the last step's teacher rows). */
  private pending: { image: Float32Array; text: Float32Array; batch: number }[] = [];
  private readonly runners = new Map<number, Promise<OnnxRunner>>();
  /** The ring pointer (the host queues' own `ptr` is current after a flush). */
  private pointer: number;
  private hostIsCurrent = true;
  /** Bytes sent to the device by the queue updates and feeds (rows, indices, the initial queues). */
  uploadedBytes = 0;

  constructor(
    readonly host: { image: FeatureQueue; text: FeatureQueue },
    private readonly executionProviders: string[],
  ) {
    if (host.image.size !== host.text.size || host.image.dim !== host.text.dim)
      throw new Error('DeviceQueues: the image and text queues differ in shape');
    this.pointer = host.image.ptr;
  }

  get size(): number {
    return this.host.image.size;
  }
  get dim(): number {
    return this.host.image.dim;
  }
  get ptr(): number {
    return this.pointer;
  }
  /** The host queues are as new as the device ones (no enqueue since the last flush or load). */
  get hostCurrent(): boolean {
    return this.hostIsCurrent;
  }

  /** Records the enqueue of a batch's teacher rows ([B, D] each); it runs on the device before the queues are next read. */
  enqueue(image: Float32Array, text: Float32Array, batch: number): void {
    const D = this.dim;
    if (image.length !== batch * D || text.length !== batch * D)
      throw new DistillError(
        `Queue enqueue: got ${image.length} and ${text.length} values for a batch of ${batch} x dim ${D}.`,
      );
    if (batch > this.size)
      throw new DistillError(
        `Queue size ${this.size} is smaller than the batch ${batch}: use a queue of at least the batch size.`,
      );
    this.pending.push({ image, text, batch });
    this.pointer = (this.pointer + batch) % this.size;
    this.hostIsCurrent = false;
  }

  private runner(batch: number): Promise<OnnxRunner> {
    let r = this.runners.get(batch);
    if (!r) {
      r = OnnxRunner.create(buildEnqueueGraph(this.size, this.dim, batch), {
        executionProviders: this.executionProviders,
        threads: 1,
        outputLocation: 'gpu-buffer',
      });
      this.runners.set(batch, r);
    }
    return r;
  }

  /** Runs the pending enqueues; returns the current queue tensors. */
  private async settle(): Promise<{ image: OrtTensor; text: OrtTensor }> {
    let cur = this.device;
    let ptr = (this.pointer - this.pending.reduce((a, p) => a + p.batch, 0)) % this.size;
    if (ptr < 0) ptr += this.size;
    while (this.pending.length) {
      const p = this.pending[0];
      const r = await this.runner(p.batch);
      if (!cur) cur = this.upload(r);
      const idx = ringIndices(ptr, p.batch, this.size);
      this.uploadedBytes += p.image.byteLength + p.text.byteLength + idx.byteLength;
      const out = await r.runTensors(
        {
          image_queue: cur.image,
          text_queue: cur.text,
          image_rows: r.tensor(p.image, [p.batch, this.dim]),
          text_rows: r.tensor(p.text, [p.batch, this.dim]),
          indices: r.tensor(idx, [p.batch, 1]),
        },
        ['image_queue_out', 'text_queue_out'],
      );
      disposeDeviceTensor(cur.image);
      disposeDeviceTensor(cur.text);
      cur = { image: out.image_queue_out, text: out.text_queue_out };
      this.device = cur;
      ptr = (ptr + p.batch) % this.size;
      this.pending.shift();
    }
    if (!cur) cur = this.upload(await this.runner(1));
    this.device = cur;
    return cur;
  }

  /** The host queues as tensors (CPU tensors over copies: fed once, they stay where the next enqueue puts them). */
  private upload(r: OnnxRunner): { image: OrtTensor; text: OrtTensor } {
    const K = this.size;
    const D = this.dim;
    this.uploadedBytes += 2 * K * D * 4;
    return {
      image: r.tensor(Float32Array.from(this.host.image.rows), [K, D]),
      text: r.tensor(Float32Array.from(this.host.text.rows), [K, D]),
    };
  }

  /** The loss head's queue feeds (`image_queue`, `text_queue`) as the current device tensors. */
  async feeds(): Promise<{ image_queue: OrtTensor; text_queue: OrtTensor }> {
    const q = await this.settle();
    return { image_queue: q.image, text_queue: q.text };
  }

  /** Brings the queues and the pointer to the host queues (checkpoints): a read-back, not every step. */
  async flush(): Promise<void> {
    if (this.hostIsCurrent) return;
    const q = await this.settle();
    const [image, text] = await readToHost([q.image, q.text], this.executionProviders);
    this.host.image.load({ ptr: this.pointer, data: image });
    this.host.text.load({ ptr: this.pointer, data: text });
    this.hostIsCurrent = true;
  }

  /** The host queues were loaded (a checkpoint): the device copies are dropped and made from them again. */
  loaded(): void {
    this.drop();
    this.pending = [];
    this.pointer = this.host.image.ptr;
    this.hostIsCurrent = true;
  }

  private drop(): void {
    disposeDeviceTensor(this.device?.image);
    disposeDeviceTensor(this.device?.text);
    this.device = undefined;
  }

  async release(): Promise<void> {
    this.drop();
    this.pending = [];
    const rs = await Promise.all(this.runners.values());
    this.runners.clear();
    await Promise.all(rs.map((r) => r.release()));
  }
}
