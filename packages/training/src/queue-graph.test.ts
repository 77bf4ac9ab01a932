import { describe, expect, it } from 'vitest';
import { findIcds, findLibvulkan, probeWebGpuSession } from '@distill/core';
import { FeatureQueue } from '@distill/losses';
import { DeviceQueues, ringIndices } from './queue-graph.js';

// The feature queues' ring update as an ONNX graph (ScatterND) against FeatureQueue.enqueue in JS:
// the same rows at the same places, bit for bit (a copy, no arithmetic), wrapping around.
const K = 5;
const D = 3;
const rows = (b: number, k: number) =>
  Float32Array.from({ length: b * D }, (_, i) => Math.fround(Math.sin(i * 1.7 + k * 0.3)));
const bitsOf = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

const hasVulkan = !!findLibvulkan() && findIcds().icds.length > 0;
const probe = hasVulkan ? await probeWebGpuSession() : undefined;

it('ringIndices wraps the batch around the end of the queue', () => {
  expect(Array.from(ringIndices(3, 4, 5), Number)).toEqual([3, 4, 0, 1]);
  expect(Array.from(ringIndices(0, 2, 5), Number)).toEqual([0, 1]);
});

for (const ep of ['cpu', 'webgpu'] as const) {
  const skip = ep === 'webgpu' && !probe?.ok;
  describe.skipIf(skip)(
    `DeviceQueues on ${ep}${skip ? ' (skipped: no WebGPU session; lavapipe runs it on the CPU)' : ''}`,
    () => {
      it('enqueues as FeatureQueue does (batches of 3 and 2 into 5 rows: wrap-around), and flush brings rows and pointer to the host', async () => {
        const ref = { image: new FeatureQueue(K, D, 7), text: new FeatureQueue(K, D, 8) };
        const host = { image: new FeatureQueue(K, D, 7), text: new FeatureQueue(K, D, 8) };
        const q = new DeviceQueues(host, [ep]);
        try {
          const before = bitsOf(host.image.rows);
          const f0 = await q.feeds();
          expect([...f0.image_queue.dims]).toEqual([K, D]);
          for (const [k, b] of [
            [0, 3],
            [1, 2],
            [2, 3],
            [3, 3],
          ]) {
            ref.image.enqueue(rows(b, k), b);
            ref.text.enqueue(rows(b, k + 10), b);
            q.enqueue(rows(b, k), rows(b, k + 10), b);
            expect(q.ptr).toBe(ref.image.ptr);
          }
          // nothing crossed back yet: the host rows are the initial ones until a flush
          expect(q.hostCurrent).toBe(false);
          expect(bitsOf(host.image.rows)).toEqual(before);
          const f = await q.feeds();
          if (ep === 'webgpu')
            expect([f.image_queue.location, f.text_queue.location]).toEqual(['gpu-buffer', 'gpu-buffer']);
          await q.flush();
          expect(q.hostCurrent).toBe(true);
          expect(host.image.ptr).toBe(ref.image.ptr);
          expect(host.image.ptr).toBe(1); // 11 rows into 5
          expect(bitsOf(host.image.rows)).toEqual(bitsOf(ref.image.rows));
          expect(bitsOf(host.text.rows)).toEqual(bitsOf(ref.text.rows));
          // per step only rows and indices go up, after the queues' one upload
          expect(q.uploadedBytes).toBe(2 * K * D * 4 + 11 * (2 * D * 4 + 8));
        } finally {
          await q.release();
        }
      });

      it('loaded(): a checkpoint loaded into the host queues replaces the device ones and the pointer', async () => {
        const host = { image: new FeatureQueue(K, D, 1), text: new FeatureQueue(K, D, 2) };
        const q = new DeviceQueues(host, [ep]);
        try {
          q.enqueue(rows(2, 0), rows(2, 1), 2);
          await q.feeds();
          const saved = { image: new FeatureQueue(K, D, 3), text: new FeatureQueue(K, D, 4) };
          host.image.load({ ptr: 4, data: saved.image.rows });
          host.text.load({ ptr: 4, data: saved.text.rows });
          q.loaded();
          expect(q.ptr).toBe(4);
          q.enqueue(rows(2, 5), rows(2, 6), 2); // rows 4 and 0
          saved.image.ptr = 4;
          saved.image.enqueue(rows(2, 5), 2);
          await q.flush();
          expect(bitsOf(host.image.rows)).toEqual(bitsOf(saved.image.rows));
          expect(host.image.ptr).toBe(1);
        } finally {
          await q.release();
        }
      });
    },
  );
}

it('refuses a batch larger than the queue, and rows of the wrong size, with a one-line DistillError', () => {
  const q = new DeviceQueues({ image: new FeatureQueue(K, D), text: new FeatureQueue(K, D) }, ['cpu']);
  expect(() => q.enqueue(rows(6, 0), rows(6, 0), 6)).toThrow(/smaller than the batch 6/);
  expect(() => q.enqueue(rows(2, 0), rows(1, 0), 2)).toThrow(/for a batch of 2 x dim 3/);
});
