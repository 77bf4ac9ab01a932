import { describe, it, expect } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createContainer, createLogger, registryOf, TOKENS, type Dataset, type Logger } from '@distill/base';
import { imagePath, loadDataset, register, textToImage, type DatasetOptions } from './index.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'distill-data-'));
/** A logger that keeps its lines (warnings are part of what a loader returns to the user). */
function capture(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger({ format: 'text', level: 'debug', sink: { write: (l) => lines.push(l) } }), lines };
}
const quiet = capture().log;

describe('Karpathy split JSON', () => {
  it('keeps every caption with its image, maps restval to train and resolves filepath', async () => {
    const root = tmp();
    const images = [
      {
        filename: 'a.jpg',
        filepath: 'val2014',
        split: 'test',
        sentences: [1, 2, 3, 4, 5, 6].map((k) => ({ raw: `a caption ${k} ` })),
      },
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
    await expect(loadDataset('flickr30k', { dataRoot: root })).rejects.toThrow(
      `expected ${join(root, 'dataset_flickr30k.json')}`,
    );
    await expect(loadDataset('karpathy', { dataRoot: root })).rejects.toThrow(/No Karpathy split file/);
    await expect(loadDataset('nope')).rejects.toThrow(/Unknown dataset 'nope'. Available: emoji/);
  });
});

describe('DSMD official list', () => {
  it('groups the consecutive captions of an image and finds flickr30k-images', async () => {
    const root = tmp();
    mkdirSync(join(root, 'flickr30k-images'));
    const list = (f: string, n: number) =>
      Array.from({ length: n }, (_, k) => ({ filename: f, description: `${f} says ${k}` }));
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
    writeFileSync(
      join(root, 'train.jsonl'),
      '{"image": "x.png", "captions": ["x", "ex"]}\n\n{"image": "y.png", "captions": ["y"]}\n',
    );
    writeFileSync(join(root, 'test.jsonl'), '{"image": "z.png", "captions": ["z1", "z2", "z3"]}\n');
    const imgs = tmp();
    const d = await loadDataset('jsonl', { annotations: root, imageRoot: imgs, log: quiet });
    expect(d.splits.train.captions).toEqual([
      { text: 'x', image: 0 },
      { text: 'ex', image: 0 },
      { text: 'y', image: 1 },
    ]);
    expect(d.splits.test.images[0].path).toBe('z.png');
    expect(imagePath(d, d.splits.test.images[0])).toBe(join(imgs, 'z.png'));
    const one = join(root, 'all.txt');
    writeFileSync(
      one,
      '{"image": "a.png", "captions": ["a"], "split": "val"}\n{"image": "b.png", "captions": ["b"]}\n',
    );
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
    expect(reg.names().sort()).toEqual([
      'coco',
      'dsmd-list',
      'emoji',
      'emoji-xstyle',
      'flickr30k',
      'glyphs',
      'glyphs-xstyle',
      'jsonl',
      'karpathy',
    ]);
  });
});

// ------------------------------------------------------------------ user data that is wrong
/** A Karpathy file in a new folder; `images` are written as given (malformed entries included). */
function karpathy(images: unknown[], dataset = 'coco'): { root: string; file: string } {
  const root = tmp();
  const file = join(root, `dataset_${dataset}.json`);
  writeFileSync(file, JSON.stringify({ dataset, images }));
  return { root, file };
}
const five = (p: string) => [1, 2, 3, 4, 5].map((k) => ({ raw: `${p} caption ${k}` }));
const good = (filename: string, split: string) => ({ filename, filepath: 'imgs', split, sentences: five(filename) });

describe('malformed Karpathy entries', () => {
  it('names the file, the entry index and the field that is wrong', async () => {
    const cases: [unknown, RegExp][] = [
      [
        { ...good('b.jpg', 'train'), sentences: [{ raw: 'ok' }, { raw: null }] },
        /images\[1\]\.sentences\[1\]\.raw is null, not a caption string/,
      ],
      [
        { ...good('b.jpg', 'train'), sentences: ['a plain string'] },
        /images\[1\]\.sentences\[0\] is string "a plain string", not a caption string/,
      ],
      [{ ...good('b.jpg', 'train'), sentences: 'a b c' }, /images\[1\]\.sentences is string "a b c", not a list/],
      [
        { filename: 'b.jpg', sentences: five('b') },
        /images\[1\]\.split is missing, not one of train\/val\/test\/restval/,
      ],
      [{ filename: 7, split: 'train', sentences: five('b') }, /images\[1\]\.filename is number 7, not a file name/],
      [null, /images\[1\] is null, not an object/],
    ];
    for (const [bad, msg] of cases) {
      const { root, file } = karpathy([good('a.jpg', 'test'), bad]);
      const err = await loadDataset('coco', { dataRoot: root, log: quiet }).catch((e) => e);
      expect(err.name).toBe('DistillError');
      expect(err.message).toContain(`${file}: images[1]`);
      expect(err.message).toMatch(msg);
      expect(err.message).toMatch(/Fix or remove that entry/);
    }
  });

  it('dsmd-list and jsonl name the entry / line and the field', async () => {
    const root = tmp();
    writeFileSync(
      join(root, 'train.json'),
      JSON.stringify([
        { filename: 'a.jpg', description: 'a' },
        { filename: 'a.jpg', description: 3 },
      ]),
    );
    await expect(loadDataset('dsmd-list', { dataRoot: root, log: quiet })).rejects.toThrow(
      `${join(root, 'train.json')}: entry 1 has no string "description" (got number 3)`,
    );
  });
});

describe('--data-root, --annotations and --image-root compose', () => {
  it('images resolve under the data root when the annotations live elsewhere (karpathy, jsonl, dsmd-list)', async () => {
    const data = tmp();
    mkdirSync(join(data, 'flickr30k-images'));
    const { file } = karpathy([good('a.jpg', 'test'), good('b.jpg', 'train')], 'flickr30k');
    const f = await loadDataset('flickr30k', { dataRoot: data, annotations: file, log: quiet });
    expect(f.splits.test.captions).toHaveLength(5);
    expect(f.imageRoot).toBe(join(data, 'flickr30k-images'));
    const coco = karpathy([good('b.jpg', 'train')], 'coco').file;
    const c = await loadDataset('coco', { dataRoot: data, annotations: coco, log: quiet });
    expect(imagePath(c, c.splits.train.images[0])).toBe(join(data, 'imgs/b.jpg'));

    const ann = join(tmp(), 'all.jsonl');
    writeFileSync(ann, '{"image": "x.png", "captions": ["x"], "split": "test"}\n');
    const j = await loadDataset('jsonl', { dataRoot: data, annotations: ann, log: quiet });
    expect(imagePath(j, j.splits.test.images[0])).toBe(join(data, 'x.png'));
    expect((await loadDataset('jsonl', { annotations: ann, log: quiet })).imageRoot).toBe(dirname(ann)); // alone: beside the file

    const lists = tmp();
    writeFileSync(join(lists, 'train.json'), JSON.stringify([{ filename: '1.jpg', description: 'one' }]));
    const l = await loadDataset('dsmd-list', { dataRoot: data, annotations: lists, log: quiet });
    expect(l.imageRoot).toBe(join(data, 'flickr30k-images'));
  });

  it('a relative --annotations is looked up under --data-root when the cwd does not have it', async () => {
    const data = tmp();
    mkdirSync(join(data, 'ann'));
    writeFileSync(join(data, 'ann', 'test.jsonl'), '{"image": "x.png", "captions": ["x"]}\n');
    const d = await loadDataset('jsonl', { dataRoot: data, annotations: 'ann/test.jsonl', log: quiet });
    expect(d.splits.test.captions).toEqual([{ text: 'x', image: 0 }]);
    expect(d.imageRoot).toBe(data);
  });

  it('--image-root wins in every format, must exist, and is refused by the built-in emoji datasets', async () => {
    const imgs = tmp();
    const { root } = karpathy([good('a.jpg', 'test')], 'flickr30k');
    mkdirSync(join(root, 'flickr30k-images'));
    expect((await loadDataset('flickr30k', { dataRoot: root, imageRoot: imgs, log: quiet })).imageRoot).toBe(imgs);
    writeFileSync(join(root, 'train.json'), JSON.stringify([{ filename: '1.jpg', description: 'one' }]));
    expect((await loadDataset('dsmd-list', { dataRoot: root, imageRoot: imgs, log: quiet })).imageRoot).toBe(imgs);
    writeFileSync(join(root, 'test.jsonl'), '{"image": "x.png", "captions": ["x"]}\n');
    expect(
      (
        await loadDataset('jsonl', {
          annotations: join(root, 'test.jsonl'),
          dataRoot: root,
          imageRoot: imgs,
          log: quiet,
        })
      ).imageRoot,
    ).toBe(imgs);

    await expect(
      loadDataset('flickr30k', { dataRoot: root, imageRoot: join(imgs, 'nope'), log: quiet }),
    ).rejects.toThrow(`Image root not found: ${join(imgs, 'nope')} is not a folder`);
    await expect(loadDataset('emoji', { dataRoot: root })).rejects.toThrow(
      /'emoji' dataset is built in and reads no files, but --data-root was given: pass --dataset/,
    );
    await expect(loadDataset('emoji-xstyle', { imageRoot: imgs, annotations: 'a' })).rejects.toThrow(
      /--annotations, --image-root were given/,
    );
  });

  it('warns when none of the first images exist under the image root', async () => {
    const { root } = karpathy([good('a.jpg', 'test')]);
    const { log, lines } = capture();
    await loadDataset('coco', { dataRoot: root, log });
    expect(lines).toEqual([
      expect.stringMatching(/^WARN .*none of the first 1 test images exist under .*imgs\/a\.jpg.*--image-root/),
    ]);
    mkdirSync(join(root, 'imgs'));
    writeFileSync(join(root, 'imgs', 'a.jpg'), 'x');
    const ok = capture();
    await loadDataset('coco', { dataRoot: root, log: ok.log });
    expect(ok.lines).toEqual([]);
  });
});

describe('datasets warn about themselves', () => {
  it('a repeated image row is merged without doubling its captions, with a warning that counts both', async () => {
    const a = good('a.jpg', 'test');
    const { root } = karpathy([
      a,
      good('b.jpg', 'test'),
      a,
      { ...a, sentences: [...five('a.jpg'), { raw: 'a sixth caption' }] },
    ]);
    const { log, lines } = capture();
    const d = await loadDataset('coco', { dataRoot: root, log });
    expect(d.splits.test.images).toHaveLength(2);
    expect(d.splits.test.captions.filter((c) => c.image === 0).map((c) => c.text)).toEqual([
      ...five('a.jpg').map((s) => s.raw),
      'a sixth caption',
    ]);
    expect(d.splits.test.captions).toHaveLength(11); // was 5 + 5 + 5 + 6 = 21 (every caption of a.jpg tripled)
    expect(lines.filter((l) => l.startsWith('WARN') && /repeat an earlier row/.test(l))).toEqual([
      expect.stringMatching(
        /2 image rows of split test repeat an earlier row of the same image: merged, 10 repeated captions dropped .*repeatedRows=2 repeatedCaptions=10/,
      ),
    ]);
  });

  it('repeated captions inside one row are kept (the data as given: COCO has some)', async () => {
    const { root } = karpathy([{ ...good('a.jpg', 'test'), sentences: [{ raw: 'same' }, { raw: 'same' }] }]);
    const { log, lines } = capture();
    const d = await loadDataset('coco', { dataRoot: root, log });
    expect(d.splits.test.captions).toHaveLength(2);
    expect(lines.filter((l) => /repeat|empty/.test(l))).toEqual([]);
  });

  it('a jsonl id that names two different images is refused', async () => {
    const f = join(tmp(), 'test.jsonl');
    writeFileSync(
      f,
      '{"id": "1", "image": "a.png", "captions": ["a"]}\n{"id": "1", "image": "b.png", "captions": ["b"]}\n',
    );
    await expect(loadDataset('jsonl', { annotations: f, log: quiet })).rejects.toThrow(
      `${f}:2: id '1' names two images (a.png and b.png)`,
    );
  });

  it('empty captions are dropped and counted; images left without one are counted too', async () => {
    const { root } = karpathy([
      { ...good('a.jpg', 'test'), sentences: [{ raw: 'fine' }, { raw: '   ' }, { raw: '' }] },
      { ...good('b.jpg', 'test'), sentences: [{ raw: '' }] },
    ]);
    const { log, lines } = capture();
    const d = await loadDataset('coco', { dataRoot: root, log });
    expect(d.splits.test.captions).toEqual([{ text: 'fine', image: 0 }]);
    expect(d.splits.test.images).toHaveLength(2);
    expect(lines).toContainEqual(expect.stringMatching(/3 empty captions in split test dropped .*emptyCaptions=3/));
    expect(lines).toContainEqual(
      expect.stringMatching(/1 image of split test left without a caption \(kept: they only act as distractors/),
    );

    const lists = tmp();
    writeFileSync(
      join(lists, 'val.json'),
      JSON.stringify([
        { filename: '1.jpg', description: ' ' },
        { filename: '1.jpg', description: 'one' },
      ]),
    );
    const dl = capture();
    const l = await loadDataset('dsmd-list', { dataRoot: lists, log: dl.log });
    expect(l.splits.val.captions).toEqual([{ text: 'one', image: 0 }]);
    expect(dl.lines).toContainEqual(expect.stringMatching(/1 empty caption in split val dropped/));
  });

  it('test images that also appear in train are refused; val images in train are warned about', async () => {
    const leak = karpathy([
      good('a.jpg', 'test'),
      good('b.jpg', 'test'),
      good('a.jpg', 'train'),
      good('b.jpg', 'restval'),
      good('c.jpg', 'train'),
    ]);
    await expect(loadDataset('coco', { dataRoot: leak.root, log: quiet })).rejects.toThrow(
      /Dataset 'coco': 2 test images also in train \(imgs\/a\.jpg, imgs\/b\.jpg\): test results would be inflated\. Remove them/,
    );
    const f = join(tmp(), 'all.jsonl');
    writeFileSync(
      f,
      '{"image": "./x.png", "captions": ["x"], "split": "test"}\n{"image": "x.png", "captions": ["x2"], "split": "train"}\n',
    );
    await expect(loadDataset('jsonl', { annotations: f, log: quiet })).rejects.toThrow(
      /1 test image also in train \(x\.png\)/,
    );

    const val = karpathy([good('a.jpg', 'val'), good('a.jpg', 'train'), good('t.jpg', 'test')]);
    const { log, lines } = capture();
    await loadDataset('coco', { dataRoot: val.root, log });
    expect(lines).toContainEqual(expect.stringMatching(/^WARN .*1 val image also in train \(imgs\/a\.jpg\).* count=1/));
  });

  it('the emoji benchmarks have no overlap between their splits', async () => {
    const { log, lines } = capture();
    for (const name of ['emoji', 'emoji-xstyle']) await loadDataset(name, { log });
    expect(lines).toEqual([]);
  });

  it('text that is not UTF-8 is refused with the file, line and byte; a UTF-8 BOM is fine', async () => {
    const root = tmp();
    const f = join(root, 'test.jsonl');
    const first = Buffer.from('{"image": "b.png", "captions": ["ok"]}\n');
    const latin1 = Buffer.from('{"image": "a.png", "captions": ["caf\xe9 au lait"]}\n', 'latin1');
    writeFileSync(f, Buffer.concat([first, latin1, latin1]));
    await expect(loadDataset('jsonl', { annotations: f, log: quiet })).rejects.toThrow(
      `${f} is not UTF-8 text: 2 lines hold invalid bytes (first at line 2, byte ${first.length + latin1.indexOf(0xe9)}). Re-encode it as UTF-8`,
    );
    const { file } = karpathy([]);
    writeFileSync(
      file,
      Buffer.from(
        JSON.stringify({ dataset: 'coco', images: [{ ...good('a.jpg', 'test'), sentences: [{ raw: 'na\xefve' }] }] }),
        'latin1',
      ),
    );
    await expect(loadDataset('coco', { annotations: file, log: quiet })).rejects.toThrow(
      /is not UTF-8 text: 1 line hold/,
    );
    writeFileSync(
      file,
      Buffer.concat([
        Buffer.from([0xef, 0xbb, 0xbf]),
        Buffer.from(
          JSON.stringify({ dataset: 'coco', images: [{ ...good('a.jpg', 'test'), sentences: [{ raw: 'café' }] }] }),
        ),
      ]),
    );
    const d = await loadDataset('coco', { annotations: file, log: quiet });
    expect(d.splits.test.captions[0].text).toBe('café');
  });
});
