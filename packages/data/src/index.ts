import { createContainer, DistillError, registryOf, TOKENS, type Container, type Dataset } from '@distill/base';
import { loadDsmdList, loadJsonl, loadKarpathy, type DatasetOptions } from './datasets.js';
import { EMOJI_DEFAULT, EMOJI_XSTYLE, loadEmoji } from './emoji.js';
import { loadGlyphs } from './glyphs.js';

export * from './npy.js';
export * from './datasets.js';
export * from './emoji.js';
export * from './glyphs.js';
export * from './images.js';
export * from './image-hashes.js';
export * from './sampler.js';
export * from './image-sampler.js';

export type DatasetConfig = DatasetOptions;

interface DatasetEntry {
  name: string;
  description: string;
  load(opts: DatasetOptions): Dataset | Promise<Dataset>;
}

/**
 * The embedded emoji datasets read no files: a --data-root, --annotations or --image-root given with them
 * is a mistake (most likely a forgotten --dataset), refused rather than silently training on emoji.
 */
function builtIn<T>(name: string, o: DatasetOptions, cfg: T): T {
  const given = (['dataRoot', 'annotations', 'imageRoot'] as const).filter((k) => o[k] !== undefined);
  if (given.length > 0) {
    const flags = given.map((k) => '--' + k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())).join(', ');
    throw new DistillError(
      `The '${name}' dataset is built in and reads no files, but ${flags} ${given.length === 1 ? 'was' : 'were'} given: pass --dataset karpathy|flickr30k|coco|dsmd-list|jsonl to use your data (or drop ${flags}).`,
      2,
    );
  }
  return cfg;
}

/** Every dataset format distill reads, by name. */
export const DATASETS: DatasetEntry[] = [
  {
    name: 'emoji',
    description:
      'Embedded benchmark from npm: 1,911 emoji, Google+Twitter drawings for train, Google for val/test (default)',
    load: (o) => loadEmoji(builtIn('emoji', o, EMOJI_DEFAULT)),
  },
  {
    name: 'emoji-xstyle',
    description: 'Emoji, trained on Google drawings, validated/tested on Twitter drawings of held-out emoji',
    load: (o) => loadEmoji(builtIn('emoji-xstyle', o, EMOJI_XSTYLE)),
  },
  {
    name: 'glyphs',
    description:
      'Embedded benchmark from npm: ~11.7k emoji/icon concepts in 14 drawing styles (28.5k images), concept-disjoint 1,000 x 5 val/test; built once into the cache',
    load: (o) => loadGlyphs('glyphs', builtIn('glyphs', o, { cacheDir: o.cacheDir, log: o.log })),
  },
  {
    name: 'glyphs-xstyle',
    description: 'Glyphs whose val/test concepts are seen in training drawn in other styles (1,000 x 5 val/test)',
    load: (o) => loadGlyphs('glyphs-xstyle', builtIn('glyphs-xstyle', o, { cacheDir: o.cacheDir, log: o.log })),
  },
  {
    name: 'karpathy',
    description: 'Karpathy split JSON (dataset_*.json): images[].filename/filepath/split/sentences',
    load: (o) => loadKarpathy(o),
  },
  {
    name: 'flickr30k',
    description: 'Karpathy dataset_flickr30k.json; images in <data-root>/flickr30k-images',
    load: (o) =>
      loadKarpathy({
        name: 'flickr30k',
        ...o,
        annotations: o.annotations ?? `${o.dataRoot ?? '.'}/dataset_flickr30k.json`,
      }),
  },
  {
    name: 'coco',
    description: 'Karpathy dataset_coco.json (restval -> train); images under <data-root>/<filepath>',
    load: (o) =>
      loadKarpathy({ name: 'coco', ...o, annotations: o.annotations ?? `${o.dataRoot ?? '.'}/dataset_coco.json` }),
  },
  {
    name: 'dsmd-list',
    description: 'DSMD official list: <data-root>/{train,val,test}.json of {filename, description}',
    load: (o) => loadDsmdList(o),
  },
  {
    name: 'jsonl',
    description: 'JSONL {"image", "captions"} per line; a file or a folder of <split>.jsonl; --image-root',
    load: (o) => loadJsonl(o),
  },
];

let own: Container | undefined;

/** A container with this package's datasets only (loadDataset without the caller's registries). */
function ownDatasets(): Container {
  if (!own) register((own = createContainer()));
  return own;
}

/**
 * A dataset chosen by name in the dataset registry of `container` (the CLI's: plugins' datasets
 * included); without one, in a registry of this package's datasets only.
 */
export async function loadDataset(name: string, opts: DatasetOptions = {}, container?: Container): Promise<Dataset> {
  const c = container ?? ownDatasets();
  const reg = registryOf<DatasetOptions, Dataset>(c, TOKENS.DatasetRegistry, 'dataset');
  if (!reg.accepts(name, opts))
    throw new DistillError(`Unknown dataset '${name}'. Available: ${reg.names().join(', ')}.`, 2);
  return reg.create(name, opts, { container: c });
}

/** Binds every dataset under TOKENS.DatasetRegistry (idempotent: a second call keeps the entries). */
export function register(container: Container): void {
  const reg = registryOf<DatasetOptions, Dataset>(container, TOKENS.DatasetRegistry, 'dataset');
  for (const d of DATASETS)
    if (!reg.has(d.name))
      reg.add({ name: d.name, description: d.description, defaults: {}, create: (cfg) => d.load(cfg) });
}
