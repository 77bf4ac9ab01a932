export * from './stats.js';
export * from './spec.js';
export * from './scheduler.js';
export * from './evaluate.js';
export * from './plots.js';
export * from './experiment.js';
export * from './plan.js';
export * from './executors/index.js';
