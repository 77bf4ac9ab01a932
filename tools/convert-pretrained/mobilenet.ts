/**
 * MobileNetV2 (alpha 1.0) from nsfwjs@4.4.0 (a Keras 2.2.4 model as a tfjs layers model, uint8-quantised
 * weights, base64 JS modules) into @distill/pretrained's assets:
 *  - assets/mobilenet-v2.safetensors: every weight as it ships (U8, Keras names), the per-tensor
 *    dequantisation (float = min + scale * q) in the metadata; @distill/pretrained's loader dequantises
 *    and folds the batch norms into the convolutions (float32), so nothing is lost and the file stays
 *    the size of the original (2.6 MB);
 *  - the parity fixture of packages/student-architectures (real images, tfjs's own outputs of the same
 *    model), which the tower test checks distill's forward against.
 * tf.loadLayersModel reads the files through a custom IOHandler (nsfwjs itself is not run).
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import sharp from 'sharp';
import { rawSafetensors } from './glove.js';

const require = createRequire(import.meta.url);

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { min: number; scale: number; dtype: string };
}

export function readNsfwjsMobileNet() {
  const pkgDir = fileURLToPath(new URL('./node_modules/nsfwjs/', import.meta.url)); // its exports hide package.json
  const version = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).version as string;
  const dir = join(pkgDir, 'dist/models/mobilenet_v2');
  const modelFile = join(dir, 'model.min.js');
  const shardFile = join(dir, 'group1-shard1of1.min.js');
  const model = require(modelFile) as {
    modelTopology: object;
    weightsManifest: { paths: string[]; weights: WeightSpec[] }[];
  };
  const shard = require(shardFile) as string;
  const weightData = Buffer.from(shard, 'base64');
  const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
  const specs = model.weightsManifest.flatMap((m) => m.weights);
  return {
    version,
    model,
    specs,
    weightData,
    files: {
      'dist/models/mobilenet_v2/model.min.js': sha(modelFile),
      'dist/models/mobilenet_v2/group1-shard1of1.min.js': sha(shardFile),
    },
  };
}

/** Real images for the parity fixture: two emoji drawings (Google, Apache-2.0) and one glyph-like icon (lucide, ISC). */
async function fixtureImages(size: number, which: string[]): Promise<Uint8Array> {
  const root = fileURLToPath(new URL('../../node_modules/', import.meta.url));
  const out = new Uint8Array(which.length * size * size * 3);
  for (const [i, f] of which.entries()) {
    const px = await sharp(join(root, f), { density: 300 })
      .flatten({ background: '#ffffff' })
      .resize(size, size, { fit: 'fill' })
      .removeAlpha()
      .raw()
      .toBuffer();
    out.set(px, i * size * size * 3);
  }
  return out;
}

/** Values to 7 significant digits (float32 has about 7): a smaller fixture, 1e-7 relative off. */
const r7 = (a: ArrayLike<number>) => Array.from(a, (v) => Number(v.toPrecision(7)));

const TAPS = [
  'block_2_add',
  'block_5_add',
  'block_9_add',
  'block_12_add',
  'block_15_add',
  'block_16_project_BN',
  'out_relu',
];

export async function convertMobileNet(outDir: string): Promise<Record<string, unknown>> {
  const { version, model, specs, weightData, files } = readNsfwjsMobileNet();
  // 1. the weights as they ship
  const tensors: Record<string, { dtype: string; shape: number[]; bytes: Uint8Array }> = {};
  const quant: Record<string, [number, number]> = {};
  let off = 0;
  for (const s of specs) {
    if (s.quantization?.dtype !== 'uint8')
      throw new Error(`${s.name}: expected uint8 quantisation, got ${JSON.stringify(s.quantization)}`);
    const n = s.shape.reduce((a, b) => a * b, 1);
    tensors[s.name] = { dtype: 'U8', shape: s.shape, bytes: new Uint8Array(weightData.subarray(off, off + n)) };
    quant[s.name] = [s.quantization.min, s.quantization.scale];
    off += n;
  }
  if (off !== weightData.length) throw new Error(`weights: ${off} bytes described, ${weightData.length} in the shard`);
  const st = rawSafetensors(tensors, {
    source: `nsfwjs@${version}`,
    files: JSON.stringify(files),
    quantization: JSON.stringify(quant),
  });
  writeFileSync(join(outDir, 'mobilenet-v2.safetensors'), st);

  // 2. tfjs's own outputs of the same model on real images (the parity fixture)
  setWasmPaths(fileURLToPath(new URL('./node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url)));
  await tf.setBackend('wasm');
  const buffer = weightData.buffer.slice(weightData.byteOffset, weightData.byteOffset + weightData.byteLength);
  /** The model at another input size: the topology up to out_relu with that input shape (the 7x7 pool and the head need 224). */
  const load = async (size: number) => {
    const topo = structuredClone(model.modelTopology) as {
      model_config: {
        config: { layers: { name: string; config: Record<string, unknown> }[]; output_layers: unknown[] };
      };
    };
    const cfg = topo.model_config.config;
    if (size !== 224) {
      cfg.layers = cfg.layers.slice(0, cfg.layers.findIndex((l) => l.name === 'out_relu') + 1);
      cfg.output_layers = [['out_relu', 0, 0]];
    }
    cfg.layers[0].config.batch_input_shape = [null, size, size, 3];
    const m = await tf.loadLayersModel(
      { load: async () => ({ modelTopology: topo, weightSpecs: specs as never, weightData: buffer }) },
      { strict: false },
    );
    const outs = [
      ...TAPS.map((t) => m.getLayer(t).output as tf.SymbolicTensor),
      ...(size === 224 ? [m.getLayer('dense_1').output as tf.SymbolicTensor, m.outputs[0]] : []),
    ];
    return tf.model({ inputs: m.inputs, outputs: outs });
  };
  const runs: Record<string, unknown>[] = [];
  const images = [
    'emoji-datasource-google/img/google/64/2764-fe0f.png',
    'emoji-datasource-google/img/google/64/1f431.png',
    'lucide-static/icons/house.svg',
  ];
  for (const [size, which] of [
    [224, images.slice(0, 2)],
    [96, images.slice(1)],
  ] as const) {
    const px = await fixtureImages(size, which);
    const x = tf.div(tf.tensor4d(Float32Array.from(px), [which.length, size, size, 3]), 255);
    // Flatten after the 7x7 pool needs 224 px; at other sizes only the taps run
    const outs = (await load(size)).predict(x) as tf.Tensor[];
    const pooled: Record<string, number[]> = {};
    TAPS.forEach((t, i) => (pooled[t] = r7(tf.mean(outs[i], [1, 2]).dataSync())));
    const run: Record<string, unknown> = {
      size,
      images: which,
      pixelsUint8NHWC: Buffer.from(px).toString('base64'),
      pooled,
    };
    // one whole map (NHWC) checks the spatial positions, not only their means
    if (size !== 224)
      run.block_12_add_map_image0 = r7(
        outs[TAPS.indexOf('block_12_add')].slice([0, 0, 0, 0], [1, -1, -1, -1]).dataSync(),
      );
    if (size === 224) {
      run.dense_1 = r7(outs[TAPS.length].dataSync());
      run.probabilities = r7(outs[TAPS.length + 1].dataSync());
    }
    runs.push(run);
  }
  const fixture = {
    source: `nsfwjs@${version} MobileNetV2 via @tensorflow/tfjs ${tf.version.tfjs} (${tf.getBackend()}), pixels / 255`,
    runs,
  };
  const fixtureFile = fileURLToPath(
    new URL('../../packages/student-architectures/src/fixtures/mobilenet-v2-tfjs.json', import.meta.url),
  );
  writeFileSync(fixtureFile, JSON.stringify(fixture));
  return {
    package: 'nsfwjs',
    version,
    files,
    tensors: specs.length,
    parameters: specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0),
    bytes: st.length,
    fixture: fixtureFile,
  };
}
