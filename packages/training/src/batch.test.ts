import { describe, expect, it } from 'vitest';
import type { Balancer } from '@distill/core';
import { BatchMaker, gatherRows, lossHooks, positiveGroups } from './batch.js';
import type { MethodState } from './methods.js';

const split = {
  images: Array.from({ length: 4 }, (_, i) => ({ id: `i${i}`, path: `${i}.png` })),
  captions: [
    { text: 'a b c', image: 0 },
    { text: 'a', image: 1 },
    { text: 'a b c d e', image: 2 },
    { text: 'a', image: 3 },
  ],
};

/** A tokenizer of one token per word (id = word length), maxLength 6, mask 1 on tokens. */
const tokenizer = {
  encodeArrays(texts: string[]) {
    const L = 6;
    const ids = new Int32Array(texts.length * L);
    const mask = new Int32Array(texts.length * L);
    texts.forEach((t, r) => t.split(' ').forEach((w, k) => ((ids[r * L + k] = 10 + k), (mask[r * L + k] = 1))));
    return { ids, mask };
  },
};
const loader = { load: async (idx: ArrayLike<number>) => Float32Array.from(idx, (i) => i + 0.5) };

describe('BatchMaker', () => {
  it("cuts token ids to the batch's longest caption, and gathers the teacher's rows of the batch", async () => {
    const teacher = {
      images: Float32Array.of(0, 0, 1, 1, 2, 2, 3, 3),
      texts: Float32Array.of(10, 10, 11, 11, 12, 12, 13, 13),
      dim: 2,
    };
    const m = new BatchMaker(split as never, tokenizer, 6, loader as never, teacher);
    const b = await m.make({ epoch: 2, step: 0, images: Int32Array.of(3, 0), captions: Int32Array.of(1, 0) }, 7);
    expect(b.input).toMatchObject({ batch: 2, length: 3, step: 7 });
    expect(Array.from(b.input.ids)).toEqual([10, 0, 0, 10, 11, 12]);
    expect(Array.from(b.input.mask)).toEqual([1, 0, 0, 1, 1, 1]);
    expect(Array.from(b.input.pixels)).toEqual([3.5, 0.5]);
    expect(Array.from(b.teacherImage!)).toEqual([3, 3, 0, 0]);
    expect(Array.from(b.teacherText!)).toEqual([11, 11, 10, 10]);
    expect(b.epoch).toBe(2);
    // two rows with the same caption text are positives of each other
    expect(
      Array.from(
        (await m.make({ epoch: 0, step: 0, images: Int32Array.of(1, 3), captions: Int32Array.of(1, 3) }, 0)).groups,
      ),
    ).toEqual([0, 0]);
  });
});

describe('lossHooks', () => {
  const state = {
    balancer: {
      name: 'x',
      weights: (l: number[]) => l.map((v) => 1 / v),
      state: () => null,
      load: () => {},
    } as Balancer,
    graph: { head: () => ({}), feeds: () => ({}) },
  } as unknown as MethodState;
  const b = { epoch: 0, input: { batch: 2 }, groups: Int32Array.of(0, 1) } as never;

  it('balances the components and keeps them and the weights for the step record', () => {
    const h = lossHooks({ loss: () => ({}) }, state, b, { step: 5, runDir: '/nowhere' });
    expect(h.balance({ a: 2, b: 4 })).toEqual([0.5, 0.25]);
    expect([h.components, h.weights]).toEqual([{ a: 2, b: 4 }, [0.5, 0.25]]);
  });

  it('a non-finite component stops the step with the loss, the step and the epoch named', () => {
    const h = lossHooks({ loss: () => ({}) }, state, b, { step: 5, runDir: '/nowhere' });
    expect(() => h.balance({ a: 2, hnd_loss: Number.NaN })).toThrow(
      /^Loss 'hnd_loss' is NaN at step 5 \(epoch 1\)\. The run stopped before its first good checkpoint/,
    );
  });
});

describe('positiveGroups', () => {
  it('groups rows of the same image or the same caption text', () => {
    const g = positiveGroups(Int32Array.from([0, 1, 0, 2]), Int32Array.from([0, 10, 20, 1]), {
      captions: [
        { text: 'a', image: 0 },
        { text: 'a', image: 2 },
        ...Array(8).fill({ text: 'x', image: 1 }),
        { text: 'b', image: 1 },
        ...Array(9).fill({ text: 'y', image: 0 }),
        { text: 'c', image: 0 },
      ],
    });
    expect(Array.from(g)).toEqual([0, 1, 0, 0]);
  });

  it('gatherRows takes rows in the order given', () => {
    expect(Array.from(gatherRows(Float32Array.of(1, 2, 3, 4, 5, 6), [2, 0, 2], 2))).toEqual([5, 6, 1, 2, 5, 6]);
  });
});
