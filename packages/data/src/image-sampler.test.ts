import { describe, expect, it } from 'vitest';
import { ImagePairSampler } from './image-sampler.js';

const split = {
  images: Array.from({ length: 10 }, (_, i) => ({ id: `e${i >> 1}/v${i & 1}`, path: `${i}.png` })),
  captions: Array.from({ length: 30 }, (_, c) => ({
    text: `caption ${(c % 10) >> 1} #${c >> 1 >= 0 ? Math.floor(c / 10) : 0}`,
    image: c % 10,
  })),
};

describe('ImagePairSampler', () => {
  it('visits every image once per epoch with one of its captions, reproducibly', () => {
    const s = new ImagePairSampler(split, 5, 3);
    const seen = [...s.next().images, ...s.next().images].sort((a, b) => a - b);
    expect(seen).toEqual([...Array(10).keys()]);
    const again = new ImagePairSampler(split, 5, 3);
    const b1 = again.next();
    expect(split.captions[b1.captions[0]].image).toBe(b1.images[0]);
    expect(Array.from(b1.images)).toEqual(Array.from(new ImagePairSampler(split, 5, 3).next().images));
  });

  it('resumes from its state', () => {
    const a = new ImagePairSampler(split, 4, 1);
    a.next();
    a.next();
    a.next();
    const st = a.state();
    const b = new ImagePairSampler(split, 4, 1);
    b.load(st);
    expect(Array.from(b.next().captions)).toEqual(Array.from(a.next().captions));
    expect(() => new ImagePairSampler(split, 11, 0)).toThrow(/fewer than one batch/);
  });
});
