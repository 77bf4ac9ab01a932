import { registryOf, TOKENS, type Container, type Evaluator } from '@distill/core';
import { RecallEvaluator, type RecallOptions } from './recall.js';

export * from './recall.js';
export * from './latency.js';
export { createOnnxGemm, gemmTransBModel, type SimilarityGemm } from './onnx-gemm.js';

/** Binds the evaluators under TOKENS.EvaluatorRegistry (idempotent: a second call keeps the entry). */
export function register(container: Container): void {
  const reg = registryOf<RecallOptions, Evaluator>(container, TOKENS.EvaluatorRegistry, 'evaluator');
  if (reg.has('recall')) return;
  reg.add({
    name: 'recall',
    description: 'Grouped Recall@1/5/10 both ways, RSUM, median/mean rank (pessimistic ties, float32 similarities)',
    defaults: { engine: 'auto', blockRows: 256 },
    create: (config) => new RecallEvaluator(config),
  });
}
export * from './queries.js';
