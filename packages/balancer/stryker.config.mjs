// Mutation testing of @distill/balancer (StrykerJS + vitest): `npm run test:mutation -- balancer` from the repository root.
// See docs/testing.md for the scores and the surviving mutants judged equivalent.
import { strykerConfig } from '../../tools/stryker/config.mjs';

export default strykerConfig(['src/**/*.ts', '!src/**/*.test.ts']);
