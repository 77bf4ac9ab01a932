// The graph builder moved to @distill/autodiff; this keeps session.ts's import line working until it imports from there.
export type { TrainingGraphs } from '@distill/autodiff';
