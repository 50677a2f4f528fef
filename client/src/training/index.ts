export * from './dataset.js';
export * from './evaluate.js';
export * from './train-locally.js';
export * from './validation-gate.js';
export * from './data-fit.js';
export * from './synthetic-clusters.js';
