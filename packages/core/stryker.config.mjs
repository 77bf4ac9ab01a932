// Mutation testing of the onnx engine's graph ops and their backward rules (autodiff), StrykerJS + vitest:
// `npm run test:mutation -- core` from the repository root (not in the default list: it is the slowest).
import { strykerConfig } from '../../tools/stryker/config.mjs';

export default strykerConfig(['src/engine/onnx/ops.ts']);
