export * from './tasks.js';
export * from './slurm.js';
export * from './k8s.js';
export * from './experiment.js';
