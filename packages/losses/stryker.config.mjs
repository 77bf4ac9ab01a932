// Mutation testing of @distill/losses (StrykerJS + vitest): `npm run test:mutation -- losses` from the repository root.
// See docs/testing.md for the scores and the surviving mutants judged equivalent.
// dcd.ts is included: its tests compute in a beforeAll hook, so its mutants are 'static' (every test runs
// for each one): the slowest part of this package's run. `--mutate src/dcd.ts` runs it alone.
import { strykerConfig } from '../../tools/stryker/config.mjs';

export default strykerConfig(['src/**/*.ts', '!src/**/*.test.ts', '!src/**/*.test-util.ts']);
