// Mutation testing of the graph builder's ops and their gradient rules (autodiff), StrykerJS + vitest:
// `npm run test:mutation -- autodiff` from the repository root (not in the default list: it is the slowest).
import { strykerConfig } from '../../tools/stryker/config.mjs';

export default strykerConfig(['src/ops.ts', 'src/gradients.ts', 'src/graph.ts']);
