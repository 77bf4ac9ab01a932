#!/usr/bin/env node
// The `distill` command. In the workspace it runs the TypeScript sources (through tsx, resolving
// @distill/* packages to their src/ via the "@distill/source" condition); a published install runs dist/.
import { existsSync } from 'node:fs';
import { register } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const src = `${here}../src/main.ts`;
if (existsSync(src) && process.env.DISTILL_USE_DIST !== '1') {
  register('./source-condition.js', import.meta.url);
  const { register: registerTsx } = await import('tsx/esm/api');
  registerTsx();
  await (await import(pathToFileURL(src).href)).main();
} else {
  await (await import(pathToFileURL(`${here}../dist/main.js`).href)).main();
}
