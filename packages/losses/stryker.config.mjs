// Mutation testing of @distill/losses (StrykerJS + vitest): `npm run test:mutation -- losses` from the repository root.
// See docs/testing.md for the scores and the surviving mutants judged equivalent.
// dcd.ts is left out (its tests compute in a beforeAll hook, which makes
// every dcd mutant 'static': all tests for each); run it with --mutate src/dcd.ts.
import { strykerConfig } from '../../tools/stryker/config.mjs';

export default strykerConfig(['src/**/*.ts', '!src/**/*.test.ts', '!src/dcd.ts']);
