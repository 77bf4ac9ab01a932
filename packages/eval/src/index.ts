import { registryOf, TOKENS, type Container, type Evaluator } from '@distill/core';
import { RecallEvaluator, type RecallOptions } from './recall.js';

export * from './recall.js';
export * from './latency.js';
export { createOnnxGemm, gemmTransBModel, type SimilarityGemm } from './onnx-gemm.js';

/** Binds this package's registry entries into the composition root's container. */
export function register(container: Container): void {
  registryOf<RecallOptions, Evaluator>(container, TOKENS.EvaluatorRegistry, 'evaluator').add({
    name: 'recall',
    description: 'Grouped Recall@1/5/10 both ways, RSUM, median/mean rank (pessimistic ties, float32 similarities)',
    defaults: { engine: 'auto', blockRows: 256 },
    create: (config) => new RecallEvaluator(config),
  });
}
