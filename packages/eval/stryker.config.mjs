// Mutation testing of @distill/eval (StrykerJS + vitest): `npm run test:mutation -- eval` from the repository root.
// See docs/testing.md for the scores and the surviving mutants judged equivalent.
import { strykerConfig } from '../../tools/stryker/config.mjs';

export default strykerConfig(['src/**/*.ts', '!src/**/*.test.ts', '!src/**/*.bench.ts']);
