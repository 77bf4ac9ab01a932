import { describe, it, expect } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createContainer, registryOf, TOKENS, type Dataset } from '@distill/core';
import { imagePath, loadDataset, register, textToImage, type DatasetOptions } from './index.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'distill-data-'));

describe('Karpathy split JSON', () => {
  it('keeps every caption with its image, maps restval to train and resolves filepath', async () => {
    const root = tmp();
    const images = [
      { filename: 'a.jpg', filepath: 'val2014', split: 'test', sentences: [1, 2, 3, 4, 5, 6].map((k) => ({ raw: `a caption ${k} ` })) },
      { filename: 'b.jpg', filepath: 'train2014', split: 'restval', sentences: [{ raw: 'b one' }] },
      { filename: 'c.jpg', filepath: 'train2014', split: 'train', sentences: [{ raw: 'c one' }, { raw: 'c two' }] },
    ];
    writeFileSync(join(root, 'dataset_coco.json'), JSON.stringify({ dataset: 'coco', images }));
    const d = await loadDataset('coco', { dataRoot: root });
    expect(d.splits.test.images).toEqual([{ id: 'val2014/a.jpg', path: 'val2014/a.jpg' }]);
    expect(d.splits.test.captions).toHaveLength(6); // an image with 6 captions keeps all 6
    expect(d.splits.test.captions[5]).toEqual({ text: 'a caption 6', image: 0 });
    expect(d.splits.train.images.map((i) => i.path)).toEqual(['train2014/b.jpg', 'train2014/c.jpg']);
    expect(Array.from(textToImage(d.splits.train))).toEqual([0, 1, 1]);
    expect(imagePath(d, d.splits.train.images[1])).toBe(join(root, 'train2014/c.jpg'));
    expect(d.manifestHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('says which file is missing', async () => {
    const root = tmp();
    await expect(loadDataset('flickr30k', { dataRoot: root })).rejects.toThrow(`expected ${join(root, 'dataset_flickr30k.json')}`);
    await expect(loadDataset('karpathy', { dataRoot: root })).rejects.toThrow(/No Karpathy split file/);
    await expect(loadDataset('nope')).rejects.toThrow(/Unknown dataset 'nope'. Available: emoji/);
  });
});

describe('DSMD official list', () => {
  it('groups the consecutive captions of an image and finds flickr30k-images', async () => {
    const root = tmp();
    mkdirSync(join(root, 'flickr30k-images'));
    const list = (f: string, n: number) => Array.from({ length: n }, (_, k) => ({ filename: f, description: `${f} says ${k}` }));
    writeFileSync(join(root, 'train.json'), JSON.stringify([...list('1.jpg', 5), ...list('2.jpg', 5)]));
    writeFileSync(join(root, 'val.json'), JSON.stringify(list('3.jpg', 5)));
    const d = await loadDataset('dsmd-list', { dataRoot: root });
    expect(d.imageRoot).toBe(join(root, 'flickr30k-images'));
    expect(d.splits.train.images.map((i) => i.path)).toEqual(['1.jpg', '2.jpg']);
    expect(Array.from(textToImage(d.splits.train))).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    expect(d.splits.val.captions[4].text).toBe('3.jpg says 4');
    await expect(loadDataset('dsmd-list', { dataRoot: tmp() })).rejects.toThrow(/expected .*train\.json/);
  });
});

describe('JSONL', () => {
  it('reads a folder of <split>.jsonl and a single file with split fields', async () => {
    const root = tmp();
    writeFileSync(join(root, 'train.jsonl'), '{"image": "x.png", "captions": ["x", "ex"]}\n\n{"image": "y.png", "captions": ["y"]}\n');
    writeFileSync(join(root, 'test.jsonl'), '{"image": "z.png", "captions": ["z1", "z2", "z3"]}\n');
    const d = await loadDataset('jsonl', { annotations: root, imageRoot: '/imgs' });
    expect(d.splits.train.captions).toEqual([{ text: 'x', image: 0 }, { text: 'ex', image: 0 }, { text: 'y', image: 1 }]);
    expect(d.splits.test.images[0].path).toBe('z.png');
    expect(imagePath(d, d.splits.test.images[0])).toBe('/imgs/z.png');
    const one = join(root, 'all.txt');
    writeFileSync(one, '{"image": "a.png", "captions": ["a"], "split": "val"}\n{"image": "b.png", "captions": ["b"]}\n');
    const d2 = await loadDataset('jsonl', { annotations: one });
    expect(Object.keys(d2.splits).sort()).toEqual(['train', 'val']);
    expect(d2.imageRoot).toBe(root);
  });

  it('points at the bad line', async () => {
    const f = join(tmp(), 'train.jsonl');
    writeFileSync(f, '{"image": "a.png", "captions": ["a"]}\n{"image": 3}\n');
    await expect(loadDataset('jsonl', { annotations: f })).rejects.toThrow(`${f}:2: expected {"image"`);
  });
});

describe('registry', () => {
  it('binds every dataset by name under TOKENS.DatasetRegistry', () => {
    const c = createContainer();
    register(c);
    const reg = registryOf<DatasetOptions, Dataset>(c, TOKENS.DatasetRegistry, 'dataset');
    expect(reg.names().sort()).toEqual(['coco', 'dsmd-list', 'emoji', 'emoji-xstyle', 'flickr30k', 'jsonl', 'karpathy']);
  });
});
